"""softmax, log_softmax, logsumexp and cross_entropy on dask arrays, lazily.

Every function here returns a dask array (or a 0-d dask array for a reduced
loss) and computes nothing until the caller asks.  Each block runs the
compiled kernel of the function of the same name in :mod:`fastsoftmax`, so
dtypes, axes, ``where=`` and the cross-entropy options follow those
functions exactly.

- An axis that lies within one chunk: one ``map_blocks`` of the kernel.
- An axis split over several chunks: each block's log-sum-exp (a small
  partial, one value per row) is combined across blocks with the stable rule
  ``logsumexp(logsumexp(block_i))``, then each block is computed once more
  and rescaled by ``exp(lse_i - lse)``.  Only the partials move between
  workers, never the data.
- ``cross_entropy``: the divisor of ``"mean"`` is a small reduction over the
  targets alone; each block then computes its loss and gradient in one pass
  over its logits, divided by that global divisor inside the kernel
  (:func:`fastsoftmax.cross_entropy`'s ``normalizer=``).

Threads: a task uses one thread when its process already runs several tasks
at once (a distributed worker with several threads, the threaded
scheduler), so that the cores are not oversubscribed; see
:func:`task_threads`.

Requires ``dask[array]`` (``pip install fastsoftmax[dask]``, which also
installs ``distributed``); it is imported when a function is called.
"""

import sys
import threading

import numpy as np

from . import _cross_entropy, _forward
from ._validation import check_cross_entropy, check_num_threads, normalize_axes, resolve_dtype

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "task_threads"]


def _da():
    """``dask.array``, or an ImportError that says how to install it."""
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError("fastsoftmax.dask needs dask: pip install 'fastsoftmax[dask]' "
                          f"(or 'dask[array]'); {exc}") from None
    return da


def task_threads(num_threads=None):
    """The thread count a kernel uses inside a dask task.

    Parameters
    ----------
    num_threads : int, optional
        An explicit count, returned as it is.

    Returns
    -------
    int or None
        1 when this process runs several tasks at once: inside a
        ``distributed`` worker with more than one thread, or in a thread of
        the threaded scheduler's pool (any thread but the main one).  Else
        None, fastsoftmax's default, which honours ``OMP_NUM_THREADS``:
        ``distributed``'s nanny sets it to 1 in the workers it starts (its
        ``distributed.nanny.pre-spawn-environ`` setting), so a one-thread
        worker also runs one kernel thread unless configured otherwise.
    """
    if num_threads is not None:
        return num_threads
    distributed = sys.modules.get("distributed")  # never imported here: a worker has it
    if distributed is not None:
        try:
            worker = distributed.get_worker()
        except ValueError:  # not in a worker
            pass
        else:
            return 1 if worker.state.nthreads > 1 else None
    if threading.current_thread() is not threading.main_thread():
        return 1
    return None


def _as_dask(x, name="x"):
    da = _da()
    if isinstance(x, da.Array):
        return x
    try:
        return da.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to a dask array: {exc}") from None


def _as_mask(where, x):
    """``where=`` as a boolean dask array of ``x``'s shape and chunks, or None."""
    if where is None:
        return None
    da = _da()
    mask = _as_dask(where, "where")
    if mask.dtype != np.bool_:
        raise TypeError(f"where= must be a boolean array, got dtype {mask.dtype}")
    try:
        mask = da.broadcast_to(mask, x.shape)
    except ValueError:
        raise ValueError(f"where= of shape {mask.shape} cannot be broadcast to the input's "
                         f"shape {x.shape}") from None
    return mask.rechunk(x.chunks)


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype=dtype)


def _split(x, axes):
    """Whether any of ``axes`` is split over more than one chunk."""
    return any(x.numblocks[a] > 1 for a in axes)


# ---------------------------------------------------------------------------
# Block functions: each runs one kernel call on one block.

# (``as_dtype`` is the functions' ``dtype=``: dask's own functions take ``dtype``)

def _softmax_block(x, mask=None, *, axis, log, as_dtype, num_threads):
    f = _forward.log_softmax if log else _forward.softmax
    return f(x, axis=axis, where=mask, dtype=as_dtype, num_threads=task_threads(num_threads))


def _logsumexp_block(x, mask=None, *, axis, keepdims, as_dtype, num_threads):
    return np.asarray(_forward.logsumexp(x, axis=axis, where=mask, keepdims=keepdims,
                                         dtype=as_dtype, num_threads=task_threads(num_threads)))


def _partial_block(x, mask=None, *, axis, compute, num_threads):
    """A block's log-sum-exp along ``axis`` (kept, length 1), in float64."""
    lse = _forward.logsumexp(x, axis=axis, where=mask, keepdims=True, dtype=compute,
                             num_threads=task_threads(num_threads))
    return np.asarray(lse, dtype=np.float64)


def _combine(partials, axis, keepdims, dtype=np.float64, **_):
    """The log-sum-exp of blocks' log-sum-exps: the stable rule, as it
    subtracts the largest partial before summing."""
    lse = _forward.logsumexp(partials, axis=axis, keepdims=True, num_threads=1)
    if not keepdims:
        lse = np.squeeze(lse, axis)
    return np.asarray(lse).astype(dtype, copy=False)


def _rescale_block(x, mask, lse_block, lse, *, axis, log, compute, result, num_threads):
    """softmax (log_softmax) of a block, rescaled from the block's own
    normaliser ``lse_block`` to the row's ``lse``.

    softmax: ``y_block * exp(lse_block - lse)``; log_softmax: ``y_block +
    (lse_block - lse)``.  The kernel's ``exp(x - max)`` keeps its accuracy;
    only the float64 shift is new.  The non-finite rows follow the one-call
    rules: a row whose ``lse`` is NaN or +inf is all NaN, a block of -inf
    (or masked) entries in a row with a finite ``lse`` gives 0 (-inf).
    """
    y = _softmax_block(x, mask, axis=axis, log=log, as_dtype=compute, num_threads=num_threads)
    with np.errstate(invalid="ignore", over="ignore"):
        shift = lse_block - lse
        shift[np.isposinf(lse) & ~np.isnan(shift)] = np.nan  # a +inf elsewhere in the row
        # a block of -inf in a row with something finite: its kernel gave NaN
        empty = np.isneginf(shift)
        if log:
            y += shift.astype(compute)
            fill = -np.inf
        else:
            y *= np.exp(shift).astype(compute)
            fill = 0.0
    if empty.any():
        np.copyto(y, fill, where=np.broadcast_to(empty, y.shape))
    if mask is not None:
        np.copyto(y, fill, where=~mask)
    return y.astype(result, copy=False)


# ---------------------------------------------------------------------------
# Graph builders.

def _check_forward(x, axis, where, dtype, num_threads):
    x = _as_dask(x)
    compute, result = resolve_dtype(x.dtype, dtype)
    axes = normalize_axes(axis, x.ndim)
    mask = _as_mask(where, x)
    return x, compute, result, axes, mask, check_num_threads(num_threads)


def _partials(x, mask, axes, compute, num_threads):
    """Each block's log-sum-exp over ``axes``: one value per row and block."""
    da = _da()
    chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))
    args = (x,) if mask is None else (x, mask)
    return da.map_blocks(_partial_block, *args, axis=axes, compute=compute,
                         num_threads=num_threads, chunks=chunks, dtype=np.float64,
                         meta=_meta(x.ndim, np.float64))


def _lse(partials, axes, keepdims, dtype):
    """The rows' log-sum-exp from the partials (a small tree reduction)."""
    da = _da()
    return da.reduction(partials, chunk=lambda p, axis, keepdims: p, combine=_combine,
                        aggregate=lambda p, axis, keepdims: _combine(p, axis, keepdims, dtype),
                        axis=axes, keepdims=keepdims, dtype=dtype, concatenate=True,
                        meta=_meta(partials.ndim if keepdims else partials.ndim - len(axes),
                                   dtype))


def _softmax(x, axis, where, dtype, num_threads, log):
    da = _da()
    x, compute, result, axes, mask, num_threads = _check_forward(x, axis, where, dtype,
                                                                  num_threads)
    args = (x,) if mask is None else (x, mask)
    if not _split(x, axes):
        return da.map_blocks(_softmax_block, *args, axis=axes, log=log, as_dtype=dtype,
                             num_threads=num_threads, meta=_meta(x.ndim, result))
    partials = _partials(x, mask, axes, compute, num_threads)
    lse = _lse(partials, axes, True, np.float64)
    index = tuple(range(x.ndim))
    # partials have one block per block of x: pair them block by block, not by shape
    return da.blockwise(_rescale_block, index, x, index, mask, None if mask is None else index,
                        partials, index, lse, index, axis=axes, log=log, compute=compute,
                        result=result, num_threads=num_threads, align_arrays=False,
                        dtype=result, meta=_meta(x.ndim, result))


def softmax(x, axis=-1, *, where=None, dtype=None, num_threads=None):
    """Softmax of a dask array along an axis, lazily.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; dtypes as :func:`fastsoftmax.softmax`.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (None: all).  Axes within one chunk
        take one pass over each block; axes split over several chunks take
        two (see the module's notes).
    where : dask.array.Array or array_like of bool, optional
        Entries to include; the others get 0.  Broadcast to ``x`` and
        rechunked as ``x``.
    dtype : dtype, optional
        Computation and result dtype.
    num_threads : int, optional
        Kernel threads per task; None: :func:`task_threads`.

    Returns
    -------
    dask.array.Array
        ``x``'s shape and chunks, the result dtype of :func:`fastsoftmax.softmax`.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))
    >>> fsd.softmax(x).compute().round(4)
    array([[0.0321, 0.0871, 0.2369, 0.6439]])
    """
    return _softmax(x, axis, where, dtype, num_threads, log=False)


def log_softmax(x, axis=-1, *, where=None, dtype=None, num_threads=None):
    """Log-softmax of a dask array along an axis, lazily.

    Parameters and results are those of :func:`softmax`; masked-out entries
    get -inf.  When ``axis`` is split over chunks, each block's result is
    shifted by ``lse_block - lse`` in the computation dtype.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))
    >>> fsd.log_softmax(x).compute().round(4)
    array([[-3.4402, -2.4402, -1.4402, -0.4402]])
    """
    return _softmax(x, axis, where, dtype, num_threads, log=True)


def logsumexp(x, axis=-1, *, where=None, keepdims=False, dtype=None, num_threads=None):
    """``log(sum(exp(x)))`` of a dask array along an axis, lazily.

    Parameters
    ----------
    x, axis, where, dtype, num_threads
        As :func:`softmax`.
    keepdims : bool, optional
        Keep the reduced axes with length 1.

    Returns
    -------
    dask.array.Array
        ``x``'s shape without the reduced axes (length 1 with
        ``keepdims``); 0-d when every axis is reduced.  SciPy's ``b=`` and
        ``return_sign=`` are not offered here.

    Notes
    -----
    Over an axis split into chunks, each block's log-sum-exp is computed in
    the computation dtype and the blocks' values are combined in float64:
    one rounding more than a single call, in the partials.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))
    >>> fsd.logsumexp(x).compute().round(4)
    array([4.4402])
    """
    da = _da()
    x, compute, result, axes, mask, num_threads = _check_forward(x, axis, where, dtype,
                                                                  num_threads)
    keepdims = bool(keepdims)
    if not _split(x, axes):
        args = (x,) if mask is None else (x, mask)
        if keepdims:
            chunks = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
            return da.map_blocks(_logsumexp_block, *args, axis=axes, keepdims=True,
                                 as_dtype=dtype, num_threads=num_threads, chunks=chunks,
                                 meta=_meta(x.ndim, result))
        return da.map_blocks(_logsumexp_block, *args, axis=axes, keepdims=False,
                             as_dtype=dtype, num_threads=num_threads, drop_axis=axes,
                             meta=_meta(x.ndim - len(axes), result))
    return _lse(_partials(x, mask, axes, compute, num_threads), axes, keepdims, result)


# ---------------------------------------------------------------------------
# Cross-entropy.

def _index_weights(target, weight=None, sample_weight=None, *, ignore_index, n_classes):
    """Each sample's share of the "mean" divisor, as the one-process call
    works it out."""
    return _cross_entropy.index_shares(target, weight, sample_weight, n_classes, ignore_index)


def _cross_entropy_block(logits, target, weight, sample_weight, normalizer, *, axis,
                         ignore_index, reduction, label_smoothing, return_grad, num_threads,
                         kept):
    """One block's loss (kept with one length-1 entry per sample axis for
    the reductions, so that the blocks' losses form a small array) and
    gradient, from one kernel call."""
    res = _cross_entropy.cross_entropy(
        logits, target, axis, weight=weight, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
        return_grad=return_grad, num_threads=task_threads(num_threads),
        normalizer=None if normalizer is None else float(normalizer))
    loss, grad = res if return_grad else (res, None)
    if reduction != "none":
        loss = np.asarray(loss).reshape((1,) * kept)
    return (loss, grad) if return_grad else loss


def cross_entropy(logits, target, axis=-1, *, weight=None, sample_weight=None,
                  ignore_index=-100, reduction="mean", label_smoothing=0.0, return_grad=False,
                  num_threads=None):
    """Cross-entropy loss of dask logits, and its gradient, lazily.

    Each block of the logits is read once: its loss and gradient come from
    one kernel call.  For ``reduction="mean"`` the divisor (the target
    classes' weights over the samples that are not ignored, or the number
    of samples for probability targets) is first reduced from the targets
    alone, and each block's loss and gradient are divided by it inside the
    kernel; the result is :func:`fastsoftmax.cross_entropy`'s.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        At least 1-D.  A class axis split over several chunks is first
        rechunked into one (each row of classes must lie in one block).
    target : dask.array.Array or array_like
        Integer class indices of the logits' shape without the class axis,
        or float class probabilities of the logits' shape; rechunked to
        match the logits.
    axis, weight, ignore_index, reduction, label_smoothing, return_grad
        As :func:`fastsoftmax.cross_entropy`.  ``weight`` (one per class) is
        small: a NumPy array, or a dask array gathered into one chunk.
    sample_weight : dask.array.Array or array_like, optional
        One weight per sample, rechunked to match the logits.
    num_threads : int, optional
        Kernel threads per task; None: :func:`task_threads`.

    Returns
    -------
    loss : dask.array.Array
        0-d for ``"mean"`` and ``"sum"`` (``loss.compute()`` gives a NumPy
        scalar array of the result dtype); the samples' shape for ``"none"``.
    grad : dask.array.Array
        Only with ``return_grad=True``: the logits' shape and chunks.

    Notes
    -----
    Shapes, dtypes and options are checked when the graph is built, with
    the messages of :func:`fastsoftmax.cross_entropy`.  Values (a class
    index out of range, a negative sample weight) are checked by each
    block when it runs: the error comes from ``compute()``.

    The reduced loss is the sum of the blocks' losses, each already rounded
    to the result dtype: for float32 logits one float32 rounding per block
    more than a single call.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastsoftmax.dask as fsd
    >>> logits = da.from_array(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), chunks=(1, 3))
    >>> loss, grad = fsd.cross_entropy(logits, np.array([0, 2]), return_grad=True)
    >>> round(float(loss.compute()), 6)
    0.669079
    >>> grad.compute().round(4)
    array([[-0.1065,  0.0533,  0.0533],
           [ 0.1667,  0.1667, -0.3333]])
    """
    da = _da()
    logits = _as_dask(logits, "logits")
    target = _as_dask(target, "target")
    sample_weight = None if sample_weight is None else _as_dask(sample_weight, "sample_weight")
    if weight is not None and not isinstance(weight, da.Array):
        weight = np.asarray(weight)
    # Shapes, dtypes and options: the one-call checks, on stand-ins that
    # have the shapes and dtypes but no data (weight, being small, is real);
    # a stand-in index of ignore_index passes the range check for any class count
    index_value = ignore_index if _fits(ignore_index, target.dtype) else 0
    a = check_cross_entropy(
        _stand_in(logits), _stand_in(target, index_value), axis,
        None if weight is None or isinstance(weight, da.Array) else weight,
        None if sample_weight is None else _stand_in(sample_weight, 1.0),
        ignore_index, reduction, label_smoothing, return_grad, num_threads)
    axis, n = a.axis, a.n_classes
    if isinstance(weight, da.Array):
        if weight.shape != (n,) or weight.dtype.kind not in "biuf":
            raise ValueError(f"weight must have shape ({n},) (one per class), got shape "
                             f"{weight.shape} and dtype {weight.dtype}")
        weight = weight.rechunk(-1)
    elif weight is not None:
        weight = a.weight

    if logits.numblocks[axis] > 1:
        logits = logits.rechunk({axis: -1})
    sample_chunks = logits.chunks[:axis] + logits.chunks[axis + 1:]
    probs = a.target is None
    target = target.rechunk(logits.chunks if probs else sample_chunks)
    if sample_weight is not None:
        sample_weight = sample_weight.astype(np.float64).rechunk(sample_chunks)

    index = tuple(range(logits.ndim))
    sample_index = index[:axis] + index[axis + 1:]

    normalizer = None
    if a.reduction == "mean":
        normalizer = _mean_divisor(a, target, weight, sample_weight, sample_index, n)

    def arg(array, ind):
        return (array, None if array is None or not isinstance(array, da.Array) else ind)

    kept = len(sample_index)
    args = (logits, index, *arg(target, index if probs else sample_index),
            *arg(weight, (axis,)), *arg(sample_weight, sample_index),
            *arg(normalizer, ()))
    kwargs = dict(axis=axis, ignore_index=a.ignore_index, reduction=a.reduction,
                  label_smoothing=a.label_smoothing, num_threads=a.num_threads, kept=kept)
    # the reductions keep one entry per block along each sample axis
    adjust = {} if a.reduction == "none" else dict.fromkeys(sample_index, 1)
    if not a.return_grad:
        loss = da.blockwise(_cross_entropy_block, sample_index, *args, return_grad=False,
                            adjust_chunks=adjust, concatenate=True, dtype=a.result,
                            meta=_meta(kept, a.result), **kwargs)
        return _total(loss, a)
    both = da.blockwise(_cross_entropy_block, index, *args, return_grad=True,
                        concatenate=True, dtype=a.result, meta=_meta(logits.ndim, a.result),
                        **kwargs)
    # each block's pair, split: the gradient as it is; the loss with a
    # length-1 class axis (so that no block is concatenated), then squeezed
    grad = da.map_blocks(_second, both, dtype=a.result, meta=_meta(logits.ndim, a.result))
    loss_chunks = tuple((1,) if i == axis else c if a.reduction == "none" else (1,) * len(c)
                        for i, c in enumerate(logits.chunks))
    loss = da.map_blocks(_first, both, axis=axis, chunks=loss_chunks, dtype=a.result,
                         meta=_meta(logits.ndim, a.result)).squeeze(axis)
    return _total(loss, a), grad


def _first(pair, axis):
    return np.expand_dims(pair[0], axis)


def _second(pair):
    return pair[1]


def _total(loss, a):
    """The blocks' losses summed (in float64) for the reductions."""
    if a.reduction == "none":
        return loss
    return loss.sum(dtype=np.float64).astype(a.result)


def _mean_divisor(a, target, weight, sample_weight, sample_index, n):
    """The divisor of "mean", lazily: a reduction over the targets alone."""
    da = _da()
    if a.target is None:  # probability targets: the number of samples (weighted)
        if sample_weight is None:
            return float(np.prod(target.shape[:a.axis] + target.shape[a.axis + 1:]))
        return sample_weight.sum()
    args = [target, sample_index]
    args += [weight, (-1,)] if weight is not None else [None, None]
    args += [sample_weight, sample_index] if sample_weight is not None else [None, None]
    shares = da.blockwise(_index_weights, sample_index, *args, ignore_index=a.ignore_index,
                          n_classes=n, concatenate=True, dtype=np.float64,
                          meta=_meta(len(sample_index), np.float64))
    return shares.sum()


def _stand_in(x, value=0):
    """A read-only array of ``x``'s shape and dtype with no data of its own
    (every element is one zero-strided value): enough for the checks of
    shapes and dtypes."""
    return np.broadcast_to(np.array(value, dtype=x.dtype), x.shape)


def _fits(value, dtype):
    """Whether the int ``value`` is representable in the integer ``dtype``."""
    if not isinstance(value, int) or np.dtype(dtype).kind not in "iu":
        return False
    info = np.iinfo(dtype)
    return info.min <= value <= info.max
