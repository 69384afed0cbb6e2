"""Linear layer and cross-entropy together, without the ``(N, V)`` logits.

A classifier head computes ``logits = x @ linear_weight.T + linear_bias``
and then the cross-entropy of those logits.  With many classes the logits
and their gradient are the largest arrays of the whole step.  Here they
exist only a chunk of rows at a time, in one reused buffer:

1. ``logits = x[chunk] @ linear_weight.T``: one BLAS product into the
   buffer;
2. one pass of the head loop (``_loops.cross_entropy_head``) over the
   chunk, a few rows at a time while they are in cache: the bias is added,
   the one-pass cross-entropy kernel writes the gradient ``G`` over the
   logits, already divided by the whole batch's normaliser (so that no
   chunk needs a second pass), and the rows of ``G`` are added to each
   thread's column sums (``grad_bias``);
3. ``grad_weight += G.T @ x[chunk]``, a block of classes at a time, and
   ``grad_x[chunk] = G @ linear_weight``.

Three matrix products in all, as with the whole logits, and nothing is
recomputed; besides the products each chunk is read and written once.  The
products are NumPy's ``matmul``: the BLAS NumPy was built with, on its own
threads; ``num_threads`` goes to the head loop.
"""

import math

import numpy as np

from . import _cross_entropy, _runtime
from ._layout import aligned_empty
from ._validation import check_linear_cross_entropy

__all__ = ["linear_cross_entropy", "chunk_rows"]

# Default chunk: at most CHUNK_ROWS rows and CHUNK_BYTES of logits.  Each
# chunk packs W for BLAS twice and adds its G.T @ x into grad_weight, so
# fewer, larger chunks cost less: at N=8192, H=1024, V=32000 float32, 3
# chunks took 1.04x the three products where 4 of 2048 rows took 1.08x
# (interleaved in one run, AMD EPYC Zen 5, 2 threads), for 0.08 GiB more
# memory; 384 MiB bounds the buffer for huge vocabularies.
CHUNK_ROWS = 3072
CHUNK_BYTES = 384 << 20
# Chunks of several take a whole number of ROW_MULTIPLE rows: BLAS runs
# its full-width blocks on them.  3 chunks of 2736 rows took 1.02x the three
# products where 2731 rows (8192 / 3) took 1.05x and 2729 1.06x, interleaved
# in one run on the machine above.
ROW_MULTIPLE = 16
# Classes per block of the grad_weight sums after the first chunk: 8 MiB of
# G.T @ x, which is still in the 32 MiB L3 when it is added.
PRODUCT_BYTES = 8 << 20

_loops = _runtime.kernels


def chunk_rows(n_rows, n_classes, itemsize):
    """The default rows per chunk for ``n_rows`` rows of ``n_classes`` logits.

    At most ``CHUNK_ROWS`` rows and ``CHUNK_BYTES`` of logits per chunk,
    the rows shared evenly between the chunks, so that the last one is not
    a sliver (3073 rows go as 1552 + 1521, not 3072 + 1), and, with more
    than one chunk, a multiple of ``ROW_MULTIPLE`` rows.
    """
    cap = max(1, min(CHUNK_ROWS, CHUNK_BYTES // max(1, n_classes * itemsize)))
    if cap >= ROW_MULTIPLE:
        cap -= cap % ROW_MULTIPLE
    n_chunks = max(1, math.ceil(n_rows / cap))
    rows = max(1, math.ceil(n_rows / n_chunks))
    if n_chunks > 1:  # rounded up, still at most cap: the same number of chunks
        rows = min(cap, -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE)
    return rows


def linear_cross_entropy(x, linear_weight, target, *, linear_bias=None, weight=None,
                         sample_weight=None, ignore_index=-100, reduction="mean",
                         label_smoothing=0.0, return_grad=False, chunk_size=None, out=None,
                         num_threads=None):
    """Cross-entropy of ``x @ linear_weight.T + linear_bias`` against ``target``,
    and the gradients, without making the logits.

    Follows :func:`torch.nn.functional.linear_cross_entropy` (argument names
    and results), with every option of :func:`fastsoftmax.cross_entropy`.
    The rows of ``x`` are taken ``chunk_size`` at a time: each chunk's
    logits are made in one buffer, the fused cross-entropy kernel writes
    their gradient over them, and that gradient goes straight into the
    products of the backward pass.  Peak memory above the inputs and the
    gradients is that buffer (``chunk_size x V``), an 8 MiB block of
    ``grad_weight``'s sums and ``V`` column sums per thread.

    Parameters
    ----------
    x : array_like
        Input of shape ``(N, H)``, or ``(H,)`` for one sample.
    linear_weight : array_like
        Weight of the linear layer, shape ``(V, H)`` (one row per class).
    target : array_like
        Class indices (integer dtype, shape ``(N,)``, or a scalar for 1-D
        ``x``) or class probabilities (float dtype, shape ``(N, V)``).
    linear_bias : array_like, optional
        Bias of the linear layer, shape ``(V,)``.
    weight, sample_weight, ignore_index, reduction, label_smoothing
        As for :func:`fastsoftmax.cross_entropy` on the logits ``(N, V)``.
        ``"mean"`` is divided by the whole batch's normaliser (the target
        classes' weights over the samples not ignored), worked out once
        before the chunks run.
    return_grad : bool, optional
        Also return the gradients with respect to ``x``, ``linear_weight``
        and ``linear_bias``.  For ``reduction="none"`` they are the
        gradients of the sum of the per-sample losses, what PyTorch's
        ``loss.sum().backward()`` (or ``loss.backward(ones)``) gives.
    chunk_size : int, optional
        Rows per chunk.  By default at most 3072 rows and 384 MiB of logits,
        the rows shared evenly between the chunks.
    out : tuple of ndarray, optional
        ``(grad_x, grad_weight, grad_bias)``: buffers for the gradients
        (with ``return_grad=True``), each of the shape and result dtype of
        what it receives, or None to allocate it.  They must not share
        memory with the inputs or each other.  They are what the call
        returns.
    num_threads : int, optional
        Threads of the cross-entropy kernel (with the bias and its
        gradient).  The matrix products run on NumPy's BLAS, with its own
        thread count.

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`fastsoftmax.cross_entropy` returns it.
    grads : tuple
        Only with ``return_grad=True``: ``(grad_x, grad_weight, grad_bias)``,
        shaped like ``x``, ``linear_weight`` and ``linear_bias``;
        ``grad_bias`` is None without a bias.

    Notes
    -----
    float32 and float64 are computed natively, the products in that dtype.
    float16 inputs are converted to float32 once (the products and the
    kernel run in float32) and the loss and gradients returned as float16;
    integer inputs are promoted to float64; mixed dtypes are promoted as
    NumPy promotes them (a float64 bias makes the whole call float64).
    ``x`` and ``linear_weight`` should be C- or F-contiguous; any other
    layout is copied once.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> linear_weight = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> target = np.array([0, 1, 2])
    >>> loss, (grad_x, grad_weight, _) = fs.linear_cross_entropy(
    ...     x, linear_weight, target, return_grad=True, chunk_size=2)
    >>> round(float(loss), 6)
    0.988295
    >>> logits = x @ linear_weight.T
    >>> round(float(fs.cross_entropy(logits, target)), 6)
    0.988295
    """
    a = check_linear_cross_entropy(x, linear_weight, target, linear_bias, weight, sample_weight,
                                   ignore_index, reduction, label_smoothing, return_grad,
                                   chunk_size, out, num_threads)
    return linear_cross_entropy_checked(a)


def linear_cross_entropy_checked(a, grad_output=None):
    """:func:`linear_cross_entropy` from its checked arguments
    (:class:`~fastsoftmax._validation.LinearCrossEntropyArgs`).

    ``grad_output`` (``reduction="none"`` only, one value per sample) scales
    each sample's gradient before the backward products: the gradients of
    ``sum(grad_output * loss)``.  The layer's ``backward`` uses it.
    """
    ce, compute = a.ce, a.compute
    x = _operand(a.x, compute)
    w = _operand(a.linear_weight, compute)
    b = None if a.linear_bias is None else np.asarray(a.linear_bias, dtype=compute)
    n_rows, n_classes = x.shape[0], w.shape[0]
    rows = a.chunk_size or chunk_rows(n_rows, n_classes, compute.itemsize)
    rows = max(1, min(rows, n_rows))
    head_type = (_KernelHead if _runtime.runs_compiled(compute) and n_classes
                 else _ReferenceHead)
    head = head_type(a, b, n_rows, rows, grad_output)

    grads = _gradient_buffers(a, x.shape, w.shape) if ce.return_grad else None
    if grads is not None:
        grad_x, grad_weight, grad_bias = grads
        if n_rows == 0:  # no chunk runs: nothing to add up
            grad_weight[...] = 0
        product = (np.empty((_product_rows(w.shape, compute.itemsize), w.shape[1]), compute)
                   if n_rows > rows else None)
        # a strided grad_x (an out= view) gets each chunk's G @ W through a
        # contiguous scratch: NumPy's matmul rounds differently into strided
        # outputs on some versions (1.26), and the result must not depend on
        # the buffer's layout
        x_part = (None if grad_x.flags.c_contiguous
                  else np.empty((rows, grad_x.shape[1]), grad_x.dtype))
    buffer = aligned_empty((rows, n_classes), compute)
    for r0 in range(0, n_rows, rows):
        r1 = min(n_rows, r0 + rows)
        x_chunk, logits = x[r0:r1], buffer[:r1 - r0]
        np.matmul(x_chunk, w.T, out=logits)
        g = head.run(logits, r0, r1)  # the gradient over the logits, or None
        if g is None:
            continue
        if r0 == 0:
            np.matmul(g.T, x_chunk, out=grad_weight)
        else:
            _add_product(g, x_chunk, grad_weight, product)
        if x_part is None:
            np.matmul(g, w, out=grad_x[r0:r1])
        else:
            grad_x[r0:r1] = np.matmul(g, w, out=x_part[:r1 - r0])
    loss = head.loss()
    if not ce.return_grad:
        return loss
    if grad_bias is not None:
        head.grad_bias(grad_bias)
    return loss, _results(a, grads)


def _product_rows(w_shape, itemsize):
    """Classes per block of :func:`_add_product`: ``PRODUCT_BYTES`` of
    ``grad_weight`` rows, at least one, at most all."""
    n_classes, n_features = w_shape
    return max(1, min(n_classes, PRODUCT_BYTES // max(1, n_features * itemsize)))


def _add_product(g, x_chunk, grad_weight, product):
    """``grad_weight += g.T @ x_chunk``, a block of ``len(product)`` classes
    at a time through ``product``: NumPy's matmul cannot add into its out=,
    and a block's product is still in cache when it is added, where the
    whole ``V x H`` product would be written to memory and read back."""
    block = product.shape[0]
    for v0 in range(0, grad_weight.shape[0], block):
        v1 = min(grad_weight.shape[0], v0 + block)
        part = product[:v1 - v0]
        np.matmul(g[:, v0:v1].T, x_chunk, out=part)
        grad_weight[v0:v1] += part


class _KernelHead:
    """The loss of each chunk of logits by the compiled head loop: the bias
    added, the loss and the gradient over the logits, and the gradient's
    column sums (grad_bias) in one pass over the chunk
    (:func:`fastsoftmax._loops.cross_entropy_head`)."""

    def __init__(self, a, bias, n_rows, rows, grad_output):
        ce, n = a.ce, a.linear_weight.shape[0]
        self.ce, self.result, self.one_sample, self.bias = ce, a.result, a.one_sample, bias
        self.compute = a.compute
        self.target = (None if ce.target is None
                       else _cross_entropy._kernel_target(ce.target, ce.ignore_index, n))
        self.weight = None if ce.weight is None else np.ascontiguousarray(ce.weight)
        self.weight_sum = (float(n) if self.weight is None
                           else float(np.sum(self.weight, dtype=np.float64)))
        self.sample_weight = (None if ce.sample_weight is None
                              else np.ascontiguousarray(ce.sample_weight.reshape(-1)))
        # grad_output scales each row's gradient as a sample weight would
        # (reduction "none" only: the rows' own losses are not scaled)
        self.row_scale = self.sample_weight
        if grad_output is not None:
            grad_output = np.asarray(grad_output, dtype=np.float64).reshape(n_rows)
            self.row_scale = (grad_output if self.sample_weight is None
                              else self.sample_weight * grad_output)
        self.normalizer = _normalizer(ce, n_rows) if ce.reduction == "mean" else None
        with np.errstate(divide="ignore"):
            # nothing to divide by: NaN loss and gradient, as PyTorch
            self.scale = ((1.0 / self.normalizer if self.normalizer else np.nan)
                          if ce.reduction == "mean" else 1.0)
        self.loss_rows = np.zeros(n_rows) if ce.reduction == "none" else None
        self.total = 0.0
        self.threads = _runtime.threads_for(ce.num_threads, rows * n)
        # each thread's column sums of the gradient, added up at the end
        self.sums = (np.zeros((self.threads, n), a.compute)
                     if ce.return_grad and bias is not None else None)

    def run(self, logits, r0, r1):
        """Chunk ``[r0, r1)``: its loss, and its gradient over ``logits``
        (returned; None without ``return_grad``)."""
        ce = self.ce
        probs = (None if ce.target_probs is None
                 else np.ascontiguousarray(ce.target_probs[r0:r1], dtype=self.compute))
        n_rows, n = logits.shape
        self.total += _loops.cross_entropy_head(
            logits=logits.reshape(-1),
            target=None if self.target is None else self.target[r0:r1],
            target_probs=None if probs is None else probs.reshape(-1),
            weight=self.weight, weight_sum=self.weight_sum,
            label_smoothing=ce.label_smoothing,
            row_scale=None if self.row_scale is None else self.row_scale[r0:r1],
            scale=self.scale, loss=None if self.loss_rows is None else self.loss_rows[r0:r1],
            bias=self.bias, grad_bias=None if self.sums is None else self.sums.reshape(-1),
            return_grad=ce.return_grad, n_rows=n_rows, n=n,
            num_threads=min(self.threads, _runtime.threads_for(ce.num_threads, logits.size)))
        return logits if ce.return_grad else None

    def loss(self):
        """The loss of all the chunks, as :func:`fastsoftmax.cross_entropy` gives it."""
        loss_rows = self.loss_rows
        if loss_rows is not None:
            if self.sample_weight is not None:
                loss_rows = loss_rows * self.sample_weight
            loss_rows = loss_rows.astype(self.result)
            return loss_rows.reshape(()) if self.one_sample else loss_rows
        if self.ce.reduction == "mean":
            # nothing to divide by: NaN, as PyTorch
            return self.result.type(self.total / self.normalizer if self.normalizer else np.nan)
        return self.result.type(self.total)

    def grad_bias(self, out):
        """The gradient's column sums over all the chunks, into ``out``."""
        np.sum(self.sums, axis=0, out=out)


class _ReferenceHead:
    """The same steps one after the other in NumPy and
    :func:`fastsoftmax.cross_entropy`: for the NumPy backend, float16
    computed as float32 without kernels, and heads of no classes."""

    def __init__(self, a, bias, n_rows, rows, grad_output):
        ce = a.ce
        self.ce, self.result, self.one_sample, self.bias = ce, a.result, a.one_sample, bias
        self.normalizer = _normalizer(ce, n_rows) if ce.reduction == "mean" else None
        self.grad_output = (None if grad_output is None
                            else np.asarray(grad_output, dtype=a.compute).reshape(n_rows, 1))
        self.loss_rows = np.empty(n_rows, a.result) if ce.reduction == "none" else None
        self.total = 0.0
        self.sums = (np.zeros(a.linear_weight.shape[0], a.compute)
                     if ce.return_grad and bias is not None else None)

    def run(self, logits, r0, r1):
        ce = self.ce
        if self.bias is not None:
            logits += self.bias
        target = ce.target if ce.target is not None else ce.target_probs
        loss = _cross_entropy.cross_entropy(
            logits, target[r0:r1], weight=ce.weight,
            sample_weight=None if ce.sample_weight is None else ce.sample_weight[r0:r1],
            ignore_index=ce.ignore_index, reduction=ce.reduction,
            label_smoothing=ce.label_smoothing, return_grad=ce.return_grad,
            out=logits if ce.return_grad else None, num_threads=ce.num_threads,
            normalizer=self.normalizer)
        g = None
        if ce.return_grad:
            loss, g = loss  # g is the buffer: the gradient over the logits
            if self.grad_output is not None:
                g *= self.grad_output[r0:r1]
            if self.sums is not None:
                self.sums += np.sum(g, axis=0)
        if self.loss_rows is not None:
            self.loss_rows[r0:r1] = loss
        else:
            self.total += float(loss)
        return g

    def loss(self):
        if self.loss_rows is not None:
            return self.loss_rows.reshape(()) if self.one_sample else self.loss_rows
        if self.ce.reduction == "mean" and not self.normalizer:
            return self.result.type(np.nan)  # nothing to divide by, as PyTorch (and no chunk ran)
        return self.result.type(self.total)

    def grad_bias(self, out):
        out[...] = self.sums


def _operand(array, compute):
    """``array`` in the computation dtype, C- or F-contiguous (one copy
    otherwise), so that BLAS takes it, and each chunk of it, as it is."""
    array = np.asarray(array, dtype=compute)
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    return array


def _normalizer(ce, n_rows):
    """The divisor of ``"mean"`` for the whole batch, as ``cross_entropy``
    works it out: the target classes' weights (times the samples') over the
    samples that are not ignored; for probability targets the number of
    samples or the sum of their weights."""
    if ce.target is None:
        return float(n_rows) if ce.sample_weight is None else float(np.sum(ce.sample_weight))
    n_classes = ce.n_classes
    target = _cross_entropy._kernel_target(ce.target, ce.ignore_index, n_classes)
    return _cross_entropy._index_denominator(target, ce.weight, ce.sample_weight, n_classes)


def _gradient_buffers(a, x_shape, w_shape):
    """Where the chunks write the gradients: the caller's ``out=`` buffers
    when they have the computation dtype, else new arrays (float16 results
    are computed in float32 and converted at the end)."""
    shapes = (x_shape, w_shape, None if a.linear_bias is None else w_shape[:1])
    buffers = []
    for o, shape in zip(a.out, shapes):
        if shape is None:
            buffers.append(None)
        elif o is not None and o.dtype == a.compute:
            buffers.append(o.reshape(shape) if o.shape != shape else o)
        else:
            buffers.append(np.empty(shape, a.compute))
    return buffers


def _results(a, grads):
    """The gradients as returned: the caller's buffers, or the result dtype,
    and ``grad_x`` 1-D for a 1-D ``x``."""
    grad_x, grad_weight, grad_bias = grads
    if a.one_sample:
        grad_x = grad_x.reshape(-1)
    results = []
    for o, g in zip(a.out, (grad_x, grad_weight, grad_bias)):
        if g is None:
            results.append(None)
        elif o is None:
            results.append(g.astype(a.result, copy=False))
        else:
            if not np.shares_memory(o, g):
                np.copyto(o, g, casting="unsafe")
            results.append(o)
    return tuple(results)
