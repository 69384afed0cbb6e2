"""The fused cross-entropy: loss and gradient with respect to the logits
from one pass over the logits.

Each call checks its arguments once (``_validation.check_cross_entropy``),
then either hands that record to the NumPy twin (``_reference``: inputs the
kernel does not take, or the NumPy backend), or lays the logits out for the
kernels, works out the reduction's normaliser, and runs
the one-pass kernel.  No loops over elements here, and no N x C
temporaries: the kernel reads the logits and writes the gradient, nothing
else of that size is made (except the copy of logits in a layout the
kernels do not read, see below).

C-contiguous logits go to the kernels as they are: with the class axis last
as rows of classes, with another class axis as column tiles of the
``(outer, n, inner)`` layout (the gradient then comes out in the logits'
layout too).  Any other layout (F-order, strided views) goes through one
contiguous copy with the class axis last, and the gradient is returned as a
view in the logits' axis order.

The common call, rows of classes against int64 class indices without
weights (:func:`_index_rows`), skips the general path's checks, copies and
NumPy reductions: the loop counts the targets and runs the same kernel.
Below ``SERIAL_THRESHOLD`` elements on one thread the loop layer's
``cross_entropy_small`` takes the call's own arguments, picks it and makes
its result itself.
"""

import math

import numpy as np

from . import _reference, _runtime, _validation
from ._layout import aligned_empty, column_tile, rows_along, same_view, streams
from ._runtime import SERIAL_THRESHOLD, threads_for
from ._validation import check_cross_entropy, check_out, fast_rows

__all__ = ["cross_entropy"]

_loops = _runtime.kernels

_I64 = np.dtype(np.int64)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_REDUCTIONS = ("mean", "sum", "none")
# The column kernel compares class indices in the logits' dtype: exact up to
# 2**24 in float32.  More classes than that go through the rows.
_COLUMN_CLASSES = 1 << 24


def cross_entropy(logits, target, axis=-1, *, weight=None, sample_weight=None, ignore_index=-100,
                  reduction="mean", label_smoothing=0.0, return_grad=False, out=None,
                  num_threads=None, normalizer=None):
    """Cross-entropy loss of logits against targets, and its gradient, in one pass.

    Follows :func:`torch.nn.functional.cross_entropy`, with the class axis
    given by ``axis`` (default -1; PyTorch's is 1).

    Parameters
    ----------
    logits : array_like
        Unnormalised scores, at least 1-D; float16/32/64, or integers/bool
        (promoted to float64).  float16 is computed in float32.
    target : array_like
        Either class indices, of an integer dtype and the logits' shape
        without the class axis (a scalar for 1-D logits), or class
        probabilities, of a float dtype and the logits' shape.
    axis : int, optional
        The class axis.
    weight : array_like, optional
        Non-negative weight per class, shape ``(C,)``.
    sample_weight : array_like, optional
        Non-negative weight per sample (scikit-learn style), the shape of the
        logits without the class axis.  It multiplies each sample's loss and
        gradient and, for ``"mean"``, the sample's share of the denominator:
        the mean is ``sum(sample_weight * loss) / sum(sample_weight * w)``,
        ``w`` the target class weight (1 without ``weight``; for probability
        targets ``w`` is 1).
    ignore_index : int, optional
        Class-index targets equal to this contribute no loss, no gradient
        and no weight to the mean.  Their logits are not read, so their
        gradient is 0 even where those logits are NaN.  Not used with
        probability targets.
    reduction : {"mean", "sum", "none"}, optional
        ``"mean"``: PyTorch's weighted mean, the sum of the losses divided by
        the sum of the target classes' weights over the samples that are not
        ignored (by the number of samples for probability targets); NaN if
        nothing is left.  ``"sum"``: the sum.  ``"none"``: one loss per sample.
    label_smoothing : float, optional
        In [0, 1]: the target becomes ``(1 - label_smoothing) * target +
        label_smoothing / C``, with PyTorch's rule for class weights (the
        smoothing term of class ``c`` is weighted by ``weight[c]``, and the
        mean is still divided by the target classes' weights).
    return_grad : bool, optional
        Also return the gradient of the loss with respect to ``logits``.
    out : ndarray, optional
        The gradient's buffer (with ``return_grad=True``): the logits' shape
        and the result dtype, writeable.  The gradient is written straight
        into it when it is laid out as the kernel writes (C order, for
        C-contiguous logits; else C order with the class axis last),
        otherwise computed and then copied in.  It is what the call returns
        as ``grad``.
    num_threads : int, optional
        Threads to use; None uses every usable core for large inputs.
    normalizer : float, optional
        Only with ``reduction="mean"``: the divisor of the summed loss and
        of the gradient, in place of the one worked out from these targets
        (not a PyTorch argument).  For a chunk of a larger batch, pass the
        whole batch's normaliser: the chunks' losses then add up to the
        batch's mean, and each chunk's gradient is the batch gradient's
        rows, scaled inside the kernel.  0 gives NaN, as an empty batch.

    Returns
    -------
    loss : numpy scalar or ndarray
        A scalar of the result dtype for ``"mean"`` and ``"sum"``; an array
        with the logits' shape minus the class axis for ``"none"``.  A
        sample whose logits hold NaN or +inf (or are all -inf) has a NaN
        loss; a -inf logit at the target class gives +inf.
    grad : ndarray
        Only with ``return_grad=True``: the logits' shape and result dtype;
        the gradient of the reduced loss, or for ``"none"`` each sample's
        gradient of its own loss.  For class-index targets without
        smoothing, a row is ``(softmax(x) - onehot) * w / normaliser``.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> loss, grad = fs.cross_entropy(logits, np.array([0, 2]), return_grad=True)
    >>> round(float(loss), 6)
    0.669079
    >>> grad.round(4)
    array([[-0.1065,  0.0533,  0.0533],
           [ 0.1667,  0.1667, -0.3333]])
    >>> fs.cross_entropy(logits, np.array([0, -100]), reduction="none").round(6)
    array([0.239545, 0.      ])
    """
    if weight is None and sample_weight is None and normalizer is None:
        if _validation.FAST_PATH and out is None:
            result = _loops.cross_entropy_small(logits, target, axis, ignore_index, reduction,
                                                label_smoothing, return_grad, num_threads,
                                                SERIAL_THRESHOLD)
            if result is not None:
                return result
        result = _index_rows(logits, target, axis, ignore_index, reduction, label_smoothing,
                             return_grad, num_threads, out)
        if result is not None:
            return result
    a = check_cross_entropy(logits, target, axis, weight, sample_weight, ignore_index,
                            reduction, label_smoothing, return_grad, num_threads, normalizer)
    if out is not None:
        if not a.return_grad:
            raise ValueError("out= is the gradient's buffer: pass return_grad=True with it")
        check_out(out, a.logits.shape, a.result)
    if a.n_classes == 0 or not _runtime.runs_compiled(a.compute):
        result = _reference.cross_entropy_checked(a)
        if out is None:
            return result
        np.copyto(out, result[1], casting="unsafe")
        return result[0], out
    compute, n = a.compute, a.n_classes
    logits = np.asarray(a.logits, dtype=compute)
    # C-contiguous logits with the class axis not last are read where they
    # lie, as column tiles of the (outer, n, inner) layout; any other layout
    # becomes rows of classes
    inner = math.prod(logits.shape[a.axis + 1:])
    columns = inner > 1 and logits.flags.c_contiguous and n <= _COLUMN_CLASSES
    if not columns:
        logits, inner = rows_along(logits, a.axis, compute), 1
    sample_shape = a.logits.shape[:a.axis] + a.logits.shape[a.axis + 1:]
    n_rows = math.prod(sample_shape)
    sample_weight = (None if a.sample_weight is None
                     else np.ascontiguousarray(a.sample_weight.reshape(-1)))

    if a.target is None:
        target_probs = (np.ascontiguousarray(a.target_probs, dtype=compute) if columns
                        else rows_along(a.target_probs, a.axis, compute))
        target = None
        # PyTorch divides by the number of samples for probability targets
        denom = float(n_rows) if sample_weight is None else float(np.sum(sample_weight))
    else:
        target_probs = None
        target = _kernel_target(a.target, a.ignore_index, n)
        denom = 0.0
        if a.reduction == "mean" and a.normalizer is None:
            denom = _index_denominator(target, a.weight, sample_weight, n)
    if a.normalizer is not None:
        denom = a.normalizer
    with np.errstate(divide="ignore", invalid="ignore"):
        # nothing to divide by: NaN loss and gradient, as PyTorch
        scale = (1.0 / denom if denom else np.nan) if a.reduction == "mean" else 1.0

    # "none" wants each row's loss; the reductions come summed from the kernel
    loss_rows = np.zeros(n_rows) if a.reduction == "none" else None
    grad, direct = (_gradient_buffer(out, -1 if columns else a.axis, logits.shape, compute,
                                     (logits, target, target_probs, sample_weight, a.weight))
                    if a.return_grad else (None, False))
    total = 0.0
    if logits.size:  # with no classes there is nothing to run
        weight = None if a.weight is None else np.ascontiguousarray(a.weight)
        weight_sum = float(n) if weight is None else float(np.sum(weight, dtype=np.float64))
        threads = _runtime.threads_for(a.num_threads, logits.size)
        total = _loops.cross_entropy(
            logits=logits.reshape(-1), target=target,
            target_probs=None if target_probs is None else target_probs.reshape(-1),
            weight=weight, weight_sum=weight_sum, label_smoothing=a.label_smoothing,
            row_scale=sample_weight, scale=scale, loss=loss_rows,
            grad=None if grad is None else grad.reshape(-1),
            n_rows=n_rows // inner, n=n, num_threads=threads,
            stream=grad is not None and streams(grad, inner, columns),
            inner=inner, tile=column_tile(n_rows // inner, inner, threads) if columns else 1)
    loss = _reduce(loss_rows, total, sample_weight, a.reduction, denom, sample_shape, a.result)
    if not a.return_grad:
        return loss
    if not columns:
        grad = np.moveaxis(grad, -1, a.axis)
    if out is None:
        return loss, grad.astype(a.result, copy=False)
    if not direct:
        np.copyto(out, grad, casting="unsafe")
    return loss, out


def _index_rows(logits, target, axis, ignore_index, reduction, label_smoothing, return_grad,
                num_threads, out=None):
    """The fast path of the common call: rows of classes against int64 class
    indices, no weights; None for any other call, which takes the general path.

    It takes C-contiguous float32/float64 logits with the class axis last
    (:func:`~fastsoftmax._validation.fast_rows`), a C-contiguous int64
    target of the samples' shape, an ``ignore_index`` that is not a class,
    and options of the plain types whose checks pass; ``out``, if given, an
    aligned, writeable, C-contiguous ndarray like the logits that is the
    logits themselves or shares no memory with them or the target (the
    general path's checks and counts of the target cost about a tenth of a
    call on 10 float32 classes).  The loop counts the
    targets that are classes (the mean's normaliser) and runs the kernel as
    the general path does.  A target that is neither a class nor
    ``ignore_index`` also gives None: the general path then reports it.
    """
    n = fast_rows(logits, axis, num_threads)
    if not (n and type(target) is np.ndarray and target.dtype is _I64
            and (flags := target.flags).c_contiguous and flags.aligned
            and target.shape == logits.shape[:-1]
            and type(ignore_index) is int and _I64_MIN <= ignore_index <= _I64_MAX
            and not 0 <= ignore_index < n
            and type(reduction) is str and reduction in _REDUCTIONS
            and type(label_smoothing) in (float, int) and 0 <= label_smoothing <= 1
            and (return_grad is True or return_grad is False)):
        return None
    if out is not None and not (
            return_grad and type(out) is np.ndarray and out.dtype is logits.dtype
            and out.shape == logits.shape and (flags := out.flags).c_contiguous
            and flags.aligned and flags.writeable and not np.may_share_memory(out, target)
            and (out is logits or not np.may_share_memory(out, logits)
                 or same_view(out, logits))):
        return None
    n_rows = target.size
    grad = out
    if return_grad and out is None:
        grad = aligned_empty(logits.shape, logits.dtype)
    loss_rows = np.zeros(n_rows) if reduction == "none" else None
    threads = threads_for(num_threads, logits.size)
    total, count = _loops.cross_entropy_index_rows(
        logits, target, n_rows, n, ignore_index, label_smoothing, reduction == "mean",
        loss_rows, grad, threads, return_grad and streams(grad))
    if count < 0:
        return None
    dtype = logits.dtype
    if reduction == "none":
        loss = loss_rows.reshape(target.shape).astype(dtype)
    else:
        # nothing to divide by: NaN, as PyTorch
        loss = dtype.type(total if reduction == "sum" else total / count if count else np.nan)
    return (loss, grad) if return_grad else loss


def _gradient_buffer(out, axis, shape, compute, inputs):
    """Where the kernel writes the gradient (rows of classes, C order):
    ``out`` itself when its class axis is already laid out that way, it has
    the computation dtype, and it is either disjoint from every one of the
    kernel's ``inputs`` or exactly the logits (the kernels read each logit
    before writing its gradient), else a fresh (aligned) array.  Returns the
    buffer and whether it is ``out``."""
    if out is not None and out.dtype == compute and out.flags.aligned:
        rows = np.moveaxis(out, axis, -1)
        if rows.flags.c_contiguous and all(
                a is None or not np.may_share_memory(rows, a)
                or (i == 0 and a.shape == rows.shape and same_view(rows, a))
                for i, a in enumerate(inputs)):
            return rows, True
    return aligned_empty(shape, compute), False


def _kernel_target(target, ignore_index, n):
    """Class indices as the kernel takes them: contiguous int64, one per row.

    The kernel skips any index outside [0, n).  Validation left only
    ignore_index outside that range, so only an ignored real class needs
    marking (as -1).
    """
    target = target.reshape(-1)
    if 0 <= ignore_index < n:
        ignored = target == ignore_index
        target = target.astype(np.int64)
        target[ignored] = -1
        return target
    return np.ascontiguousarray(target, dtype=np.int64)


def index_shares(target, weight, sample_weight, n, ignore_index=None):
    """Each sample's share of PyTorch's weighted-mean normaliser for
    class-index targets: its target class's weight (times its own weight),
    0 where the target is not a class in [0, n) or is ``ignore_index``."""
    valid = (target >= 0) & (target < n)
    if ignore_index is not None:
        valid &= target != ignore_index
    target_weight = valid.astype(np.float64) if weight is None else \
        np.where(valid, weight[np.where(valid, target, 0)], 0).astype(np.float64)
    return target_weight if sample_weight is None else target_weight * sample_weight


def _index_denominator(target, weight, sample_weight, n):
    """The normaliser itself: the sum of :func:`index_shares` over the
    kernel's targets (ignored ones already outside [0, n)).  Without
    weights, the number of targets in [0, n), counted without an array of
    shares: for int64 in one pass (viewed unsigned, the negative ones lie
    above n; index_shares takes five, about the time of copying the logits
    of 10 float32 classes)."""
    if weight is None and sample_weight is None:
        if target.dtype == np.int64:
            return float(np.count_nonzero(target.view(np.uint64) < n))
        return float(np.count_nonzero((target >= 0) & (target < n)))
    return float(np.sum(index_shares(target, weight, sample_weight, n)))


def _reduce(loss_rows, total, sample_weight, reduction, denom, sample_shape, result):
    """The loss the user asked for: the samples' own losses for "none", else
    the kernel's total of the losses times their sample weights."""
    if reduction == "none":
        if sample_weight is not None:
            loss_rows = loss_rows * sample_weight
        return loss_rows.reshape(sample_shape).astype(result)
    if reduction == "mean":
        # nothing to divide by: NaN, as PyTorch
        total = np.float64(total) / denom if denom else np.float64(np.nan)
    return result.type(total)
