"""Argument checking: each public function's arguments are checked once,
here, into one record per function family (:class:`ForwardArgs`,
:class:`BackwardArgs`, :class:`CrossEntropyArgs`).

The compiled path (``_forward``, ``_backward``, ``_cross_entropy``) and the
NumPy twin (``_reference``) both compute from that record, so they accept
and reject exactly the same input with the same messages, and a call that
falls back from one to the other is not checked again."""

import math
import numbers
import operator

import numpy as np

from . import _runtime

__all__ = [
    "reject_lazy",
    "FAST_PATH",
    "fast_rows",
    "as_array",
    "resolve_dtype",
    "normalize_axes",
    "check_num_threads",
    "as_mask",
    "check_out",
    "ForwardArgs",
    "check_forward",
    "LogsumexpArgs",
    "check_logsumexp",
    "BackwardArgs",
    "check_backward",
    "CrossEntropyArgs",
    "check_cross_entropy",
    "LinearCrossEntropyArgs",
    "check_linear_cross_entropy",
]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_NDARRAY = np.ndarray

# Whether calls may take the fast path of small calls (:func:`fast_rows`).
# The tests switch it off to run the same calls through the general path.
FAST_PATH = _runtime.BACKEND == "compiled"


def fast_rows(x, axis, num_threads):
    """The row length ``n`` when a call on ``x`` along ``axis`` needs no
    checking, converting or layout planning, else 0.

    That is: ``x`` is exactly an ``ndarray`` (no subclass), non-empty, at
    least 1-D, C-contiguous and aligned, native float32 or float64, ``axis``
    is the last axis as a plain int, and ``num_threads`` is None or a
    positive int.
    Every check of :func:`check_forward` then passes with an answer already
    known (compute and result dtype ``x.dtype``, axes ``(x.ndim - 1,)``,
    the kernels' rows being ``x`` itself), so the caller may hand ``x`` to
    the row kernels at once; the other keywords it checks itself.
    """
    # cheapest and most selective first: this runs on every call
    if type(x) is not _NDARRAY or not FAST_PATH:
        return 0
    dtype = x.dtype
    if ((dtype is _F32 or dtype is _F64) and x.size and type(axis) is int
            and (num_threads is None or (type(num_threads) is int and num_threads > 0))
            and (flags := x.flags).c_contiguous and flags.aligned):
        ndim = x.ndim
        if ndim and (axis == -1 or axis == ndim - 1):
            return x.shape[-1]
    return 0


def reject_lazy(x, name="x"):
    """Raise ``TypeError`` for a dask collection (a dask array, a
    dask-backed xarray object, ...): ``np.asarray`` would compute all of it
    into one array in this process, silently.  Found by the collection
    protocol (``__dask_graph__``), without importing dask."""
    graph = getattr(type(x), "__dask_graph__", None)
    if graph is not None and x.__dask_graph__() is not None:
        raise TypeError(
            f"{name} is a dask collection ({type(x).__module__}.{type(x).__name__}), which "
            f"fastsoftmax would compute into one NumPy array in this process: call the "
            f"function of the same name in fastsoftmax.dask (softmax, log_softmax, logsumexp, "
            f"cross_entropy), which stays lazy, or pass np.asarray({name}) to compute it here"
        )


def as_array(x, name="x", num_threads=None):
    """``np.asarray`` that keeps read-only inputs read-only and copies only
    an unaligned array; a dask collection is a ``TypeError``
    (:func:`reject_lazy`).

    The kernels read elements through typed pointers, which must be aligned
    to the element size: an unaligned array (``np.frombuffer`` at an odd
    offset, a buffer unpickled from another process, such as a result
    gathered from dask's distributed workers) is copied once, on the call's
    threads (``num_threads`` as given to the call; not yet checked, so
    anything but a positive int means the default).
    """
    if not isinstance(x, np.ndarray):
        reject_lazy(x, name)
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:  # ragged nested sequences and such
            raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    return x if x.flags.aligned else _aligned_copy(x, num_threads)


def _aligned_copy(x, num_threads):
    """A C-ordered, aligned copy of ``x``, in parallel when it is large and
    contiguous (NumPy's copy runs on one thread: on 16 cores it took longer
    than the softmax that followed)."""
    y = np.empty(x.shape, x.dtype)
    if (_runtime.kernels is None or not x.flags.c_contiguous
            or x.dtype.hasobject or x.nbytes < 2 << 20):
        np.copyto(y, x)
        return y
    if not (isinstance(num_threads, numbers.Integral) and not isinstance(num_threads, bool)
            and num_threads > 0):
        num_threads = None
    threads = _runtime.threads_for(num_threads, x.size)
    _runtime.kernels.copy_bytes(x.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8),
                                threads)
    return y


def resolve_dtype(in_dtype, dtype=None, name="x"):
    """Return ``(compute_dtype, result_dtype)`` for input dtype ``in_dtype``.

    float32/float64 compute natively, float16 computes in float32 and returns
    float16, integers and bool promote to float64 (as SciPy does), longdouble
    stays longdouble.  ``dtype=`` (a float dtype) overrides both, like
    PyTorch's ``dtype`` argument.  Anything else is a ``TypeError``.
    """
    in_dtype = np.dtype(in_dtype)
    if in_dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {in_dtype}, which fastsoftmax does not support; "
            "expected a real floating, integer or bool dtype"
        )
    if dtype is not None:
        try:
            want = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype={dtype!r} is not a NumPy dtype") from None
        if want.kind != "f":
            raise TypeError(f"dtype={want} is not supported; use float16, float32 or float64")
    elif in_dtype.kind == "f":
        want = in_dtype
    else:
        want = _F64
    want = want.newbyteorder("=")
    compute = _F32 if want == _F16 else want
    return compute, want


def normalize_axes(axis, ndim):
    """Return the sorted tuple of non-negative axes that ``axis`` names.

    ``axis`` is an int (negative allowed), a tuple of ints, or None for all
    axes.  A 0-d array behaves as a 1-element vector for ``axis`` 0 / -1,
    as NumPy's reductions do.
    """
    nd = max(ndim, 1)
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        items = axis
    else:
        items = (axis,)
    out = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError(f"axis must be an int, a tuple of ints or None, not {a!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise TypeError(f"axis must be an int, a tuple of ints or None, not {a!r}") from None
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % nd)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in axis={axis!r}")
    if ndim == 0:
        return ()
    return tuple(sorted(out))


def check_num_threads(num_threads):
    """Return ``num_threads`` as a positive int, or None; else ``ValueError``.

    Any positive int is accepted, however large (no ``OverflowError``):
    ``_runtime.threads_for`` caps it at the usable CPUs when the call runs.
    """
    if num_threads is None:
        return None
    if isinstance(num_threads, (bool, np.bool_)) or not isinstance(num_threads, numbers.Integral):
        raise ValueError(f"num_threads must be None or a positive int, got {num_threads!r}")
    num_threads = int(num_threads)
    if num_threads < 1:
        raise ValueError(f"num_threads must be None or a positive int, got {num_threads}")
    return num_threads


def as_mask(where, shape):
    """The boolean mask ``where`` broadcast to ``shape`` (a read-only view), or None."""
    if where is None:
        return None
    reject_lazy(where, "where")
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where= must be a boolean array, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"where= of shape {mask.shape} cannot be broadcast to the input's shape {shape}"
        ) from None


def check_out(out, shape, dtype):
    """Check a user-supplied ``out=`` array against the result's shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out= must be a NumPy array, got {type(out).__name__}")
    if isinstance(out, np.matrix) or (out.ndim and out[:0].reshape(-1).ndim != 1):
        # np.matrix stays 2-D when flattened: the kernels could not write it
        raise TypeError(f"out= must be an ndarray whose flattened views are 1-D, got "
                        f"{type(out).__module__}.{type(out).__name__}; pass np.asarray(out)")
    if out.shape != tuple(shape):
        raise ValueError(f"out= has shape {out.shape}, but the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out= has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out= is read-only")
    return out


class ForwardArgs:
    """The checked arguments of ``softmax``, ``log_softmax`` and ``logsumexp``.

    Attributes
    ----------
    x : ndarray
        The input, as given (not converted to the computation dtype).
    compute, result : numpy.dtype
        The computation and result dtypes (:func:`resolve_dtype`).
    axes : tuple of int
        The reduced axes, sorted and non-negative (``()`` for 0-d input).
    mask : ndarray of bool or None
        ``where=`` broadcast to ``x.shape`` (a read-only view).
    out : ndarray or None
        ``out=``, checked against the result's shape and dtype.
    keepdims : bool
        ``logsumexp``'s ``keepdims``.
    num_threads : int or None
        ``num_threads``, checked (:func:`check_num_threads`).
    """

    __slots__ = ("x", "compute", "result", "axes", "mask", "out", "keepdims", "num_threads")


def check_forward(x, axis, where, dtype, num_threads, out=None, keepdims=False):
    """Check the arguments of a forward function; return a :class:`ForwardArgs`."""
    a = ForwardArgs()
    a.x = x = as_array(x, num_threads=num_threads)
    a.compute, a.result = resolve_dtype(x.dtype, dtype)
    a.axes = normalize_axes(axis, x.ndim)
    a.mask = as_mask(where, x.shape)
    a.num_threads = check_num_threads(num_threads)
    a.out = None if out is None else check_out(out, x.shape, a.result)
    a.keepdims = bool(keepdims)
    return a


class LogsumexpArgs(ForwardArgs):
    """The checked arguments of ``logsumexp``: those of :class:`ForwardArgs`
    and SciPy's two keywords.

    Attributes
    ----------
    b : ndarray or None
        The weights, broadcast to ``x.shape`` (a read-only view), real and
        not yet converted to the computation dtype.
    return_sign : bool
    """

    __slots__ = ("b", "return_sign")


def check_logsumexp(x, axis, where, dtype, num_threads, keepdims=False, b=None,
                    return_sign=False):
    """Check the arguments of ``logsumexp``; return a :class:`LogsumexpArgs`.

    ``x`` and ``b`` broadcast against each other, as in
    ``scipy.special.logsumexp``: a ``b`` with more dimensions than ``x``
    broadcasts ``x`` too (``axis`` then refers to the broadcast shape).
    """
    x = as_array(x, num_threads=num_threads)
    if b is not None:
        b = as_array(b, "b", num_threads)
        if b.dtype.kind not in "biuf":
            raise TypeError(f"b has dtype {b.dtype}; expected a real dtype")
        try:
            shape = np.broadcast_shapes(x.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"b of shape {b.shape} cannot be broadcast with x of shape {x.shape}"
            ) from None
        if shape != x.shape:
            x = np.broadcast_to(x, shape)
        b = np.broadcast_to(b, shape)
    fa = check_forward(x, axis, where, dtype, num_threads, keepdims=keepdims)
    a = LogsumexpArgs()
    for name in ForwardArgs.__slots__:
        setattr(a, name, getattr(fa, name))
    a.b = b
    a.return_sign = bool(return_sign)
    return a


class BackwardArgs:
    """The checked arguments of ``softmax_backward`` and ``log_softmax_backward``.

    Attributes
    ----------
    dy, y : ndarray
        ``grad_output`` and ``output`` as given, of one shape.
    compute, result : numpy.dtype
        The promotion of both inputs' computation and result dtypes.
    axes, mask, out, num_threads
        As in :class:`ForwardArgs`, for ``y``'s shape.
    """

    __slots__ = ("dy", "y", "compute", "result", "axes", "mask", "out", "num_threads")


def check_backward(grad_output, output, axis, where, num_threads, out=None):
    """Check the arguments of a backward function; return a :class:`BackwardArgs`.

    ``grad_output`` and ``output`` must have the same shape (else
    ``ValueError`` naming both).
    """
    a = BackwardArgs()
    a.dy = dy = as_array(grad_output, "grad_output", num_threads)
    a.y = y = as_array(output, "output", num_threads)
    if dy.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {dy.shape} but output has shape {y.shape}; they must match"
        )
    c1, r1 = resolve_dtype(dy.dtype, name="grad_output")
    c2, r2 = resolve_dtype(y.dtype, name="output")
    a.compute, a.result = np.promote_types(c1, c2), np.promote_types(r1, r2)
    a.axes = normalize_axes(axis, y.ndim)
    a.num_threads = check_num_threads(num_threads)
    a.mask = as_mask(where, y.shape)
    a.out = None if out is None else check_out(out, y.shape, a.result)
    return a


_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyArgs:
    """The checked arguments of ``cross_entropy`` (see :func:`check_cross_entropy`).

    Attributes
    ----------
    logits : ndarray
        The logits as given, at least 1-D.
    compute, result : numpy.dtype
        The computation and result dtypes of the logits.
    axis : int
        The class axis, non-negative.
    n_classes : int
        ``logits.shape[axis]``.
    target : ndarray of int or None
        Class indices, each in ``[0, n_classes)`` or ``ignore_index``; None
        for probability targets.
    target_probs : ndarray of float or None
        Class probabilities of the logits' shape; None for class indices.
    weight : ndarray or None
        Per-class weights in the computation dtype, finite and non-negative.
    sample_weight : ndarray of float64 or None
        Per-sample weights of the samples' shape, finite and non-negative.
    ignore_index : int
    reduction : {"mean", "sum", "none"}
    label_smoothing : float
        In [0, 1].
    return_grad : bool
    num_threads : int or None
        Checked (:func:`check_num_threads`).
    normalizer : float or None
        The divisor of ``"mean"`` given by the caller (finite, >= 0), or None
        to compute it from the targets.
    """

    __slots__ = ("logits", "compute", "result", "axis", "n_classes", "target", "target_probs",
                 "weight", "sample_weight", "ignore_index", "reduction", "label_smoothing",
                 "return_grad", "num_threads", "normalizer")


def check_cross_entropy(logits, target, axis, weight, sample_weight, ignore_index, reduction,
                        label_smoothing, return_grad, num_threads, normalizer=None):
    """Check the arguments of ``cross_entropy``; return a :class:`CrossEntropyArgs`.

    Integer targets are class indices with the logits' shape minus the class
    axis; every one is in ``[0, C)`` or equals ``ignore_index`` (else
    ``IndexError`` naming the first bad value and its position).  Float
    targets are class probabilities with the logits' shape.
    """
    a = CrossEntropyArgs()
    logits = as_array(logits, "logits", num_threads)
    a.compute, a.result = resolve_dtype(logits.dtype, name="logits")
    if logits.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis)")
    if isinstance(axis, tuple) or axis is None:
        raise TypeError(f"cross_entropy takes a single int class axis, not {axis!r}")
    (a.axis,) = normalize_axes(axis, logits.ndim)
    a.logits = logits
    a.n_classes = n_classes = logits.shape[a.axis]
    sample_shape = logits.shape[:a.axis] + logits.shape[a.axis + 1:]

    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, "
                         f"got {reduction!r}")
    a.reduction = reduction
    if (isinstance(label_smoothing, (bool, np.bool_))
            or not isinstance(label_smoothing, numbers.Real)):
        raise TypeError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    a.label_smoothing = float(label_smoothing)
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    a.ignore_index = int(ignore_index)

    target = as_array(target, "target")
    if target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(
                f"probability targets (float dtype) must have the logits' shape {logits.shape}, "
                f"got target of shape {target.shape}; class-index targets must have an "
                f"integer dtype"
            )
        a.target, a.target_probs = None, target
    elif target.dtype.kind in "iu":
        if target.shape != sample_shape:
            raise ValueError(
                f"class-index target has shape {target.shape}, but logits of shape "
                f"{logits.shape} with class axis {a.axis} need shape {sample_shape}"
            )
        # the common case, every index in range, takes one pass instead of
        # five: viewed unsigned, the negative indices lie above n_classes
        unsigned = target if target.dtype.kind == "u" else \
            target.view(target.dtype.str.replace("i", "u"))
        in_range = not np.any(unsigned >= n_classes)
        bad = None if in_range else \
            (target != a.ignore_index) & ((target < 0) | (target >= n_classes))
        if bad is not None and bad.any():
            first = int(np.flatnonzero(bad.reshape(-1))[0])
            pos = tuple(int(i) for i in np.unravel_index(first, target.shape))
            value = target.reshape(-1)[first]
            valid = (f"valid: 0 to {n_classes - 1}, or ignore_index={a.ignore_index}" if n_classes
                     else f"the logits have no classes: only ignore_index={a.ignore_index}")
            raise IndexError(
                f"target {value} at position {pos} is out of range for {n_classes} classes "
                f"({valid})"
            )
        a.target, a.target_probs = target, None
    else:
        raise TypeError(
            f"target has dtype {target.dtype}; expected integer class indices or float "
            f"class probabilities"
        )

    a.weight = None if weight is None else _nonnegative_weights(
        weight, "weight", (n_classes,), a.compute, "one per class")
    a.sample_weight = None if sample_weight is None else _nonnegative_weights(
        sample_weight, "sample_weight", sample_shape, np.float64,
        f"the samples' shape: the logits' shape {logits.shape} minus the class axis")
    a.return_grad = bool(return_grad)
    a.num_threads = check_num_threads(num_threads)
    a.normalizer = None
    if normalizer is not None:
        if reduction != "mean":
            raise ValueError(f"normalizer= is the divisor of reduction='mean', "
                             f"not of reduction={reduction!r}")
        if isinstance(normalizer, (bool, np.bool_)) or not isinstance(normalizer, numbers.Real):
            raise TypeError(f"normalizer must be a real number, got {normalizer!r}")
        if not (math.isfinite(normalizer) and normalizer >= 0):
            raise ValueError(f"normalizer must be finite and non-negative, got {normalizer!r}")
        a.normalizer = float(normalizer)
    return a



class LinearCrossEntropyArgs:
    """The checked arguments of ``linear_cross_entropy``.

    Attributes
    ----------
    x : ndarray
        The input as 2-D ``(N, H)`` (a 1-D input is one row), as given.
    linear_weight, linear_bias : ndarray
        ``(V, H)`` and ``(V,)`` (or None), as given.
    one_sample : bool
        Whether ``x`` was 1-D: the loss and ``grad_x`` drop the row axis.
    compute, result : numpy.dtype
        The promotion of the three arrays' computation and result dtypes.
    ce : CrossEntropyArgs
        The cross-entropy options, checked against logits of shape
        ``(N, V)`` (``ce.logits`` is a zero-strided stand-in, never read);
        ``ce.target`` / ``ce.target_probs`` and ``ce.sample_weight`` are 2-D
        / 1-D like ``x``.
    chunk_size : int or None
        Rows per chunk, or None to choose from the shapes.
    out : tuple of (ndarray or None)
        ``(grad_x, grad_weight, grad_bias)`` buffers, each checked; None
        entries are allocated.
    """

    __slots__ = ("x", "linear_weight", "linear_bias", "one_sample", "compute", "result", "ce",
                 "chunk_size", "out")


def check_linear_cross_entropy(x, linear_weight, target, linear_bias, weight, sample_weight,
                               ignore_index, reduction, label_smoothing, return_grad, chunk_size,
                               out, num_threads):
    """Check the arguments of ``linear_cross_entropy``; return a
    :class:`LinearCrossEntropyArgs`.

    ``x`` is ``(N, H)`` or ``(H,)``, ``linear_weight`` ``(V, H)``,
    ``linear_bias`` ``(V,)``; the target and the cross-entropy options are
    those of ``cross_entropy`` on the logits ``x @ linear_weight.T`` of
    shape ``(N, V)``.  No output buffer may share memory with an input or
    another buffer.
    """
    a = LinearCrossEntropyArgs()
    x = as_array(x, "x")
    w = as_array(linear_weight, "linear_weight")
    b = None if linear_bias is None else as_array(linear_bias, "linear_bias")
    dtypes = [resolve_dtype(x.dtype, name="x"), resolve_dtype(w.dtype, name="linear_weight")]
    if b is not None:
        dtypes.append(resolve_dtype(b.dtype, name="linear_bias"))
    a.compute = np.result_type(*(c for c, _ in dtypes))
    a.result = np.result_type(*(r for _, r in dtypes))
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (N, H) or (H,), got shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"linear_weight must have shape (V, H), got shape {w.shape}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"x of shape {x.shape} has {x.shape[-1]} features, but linear_weight "
                         f"of shape {w.shape} expects {w.shape[1]}")
    n_classes = w.shape[0]
    if b is not None and b.shape != (n_classes,):
        raise ValueError(f"linear_bias must have shape ({n_classes},) for linear_weight of "
                         f"shape {w.shape}, got shape {b.shape}")
    a.one_sample = x.ndim == 1
    logits_shape = x.shape[:-1] + (n_classes,)
    target = as_array(target, "target")
    if target.dtype.kind in "iu" and target.shape != x.shape[:-1]:
        raise ValueError(f"class-index target must have shape {x.shape[:-1]} (one per row "
                         f"of x of shape {x.shape}), got shape {target.shape}")
    if target.dtype.kind == "f" and target.shape != logits_shape:
        raise ValueError(f"probability targets must have the logits' shape {logits_shape} "
                         f"(rows of x by rows of linear_weight), got shape {target.shape}")
    stand_in = np.broadcast_to(np.zeros((), a.compute), logits_shape)
    a.ce = ce = check_cross_entropy(stand_in, target, -1, weight, sample_weight, ignore_index,
                                    reduction, label_smoothing, return_grad, num_threads)
    if a.one_sample:  # one row of logits from here on
        x = x.reshape(1, -1)
        ce.logits, ce.axis = ce.logits.reshape(1, -1), 1
        if ce.target is not None:
            ce.target = ce.target.reshape(1)
        else:
            ce.target_probs = ce.target_probs.reshape(1, -1)
        if ce.sample_weight is not None:
            ce.sample_weight = ce.sample_weight.reshape(1)
    a.x, a.linear_weight, a.linear_bias = x, w, b

    if chunk_size is not None:
        if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size,
                                                                      numbers.Integral):
            raise TypeError(f"chunk_size must be None or a positive int, got {chunk_size!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be None or a positive int, got {chunk_size}")
        chunk_size = int(chunk_size)
    a.chunk_size = chunk_size

    a.out = (None, None, None)
    if out is not None:
        if not ce.return_grad:
            raise ValueError("out= holds the gradients: pass return_grad=True with it")
        if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
            raise TypeError("out= must be a tuple (grad_x, grad_weight, grad_bias), each an "
                            "array or None")
        out = tuple(out) + (None,) * (3 - len(out))
        if b is None and out[2] is not None:
            raise ValueError("out= has a grad_bias buffer, but there is no linear_bias")
        shapes = (x.shape if not a.one_sample else (x.shape[1],), w.shape, (n_classes,))
        names = ("grad_x", "grad_weight", "grad_bias")
        a.out = tuple(None if o is None else check_out(o, shape, a.result)
                      for o, shape in zip(out, shapes))
        inputs = {"x": x, "linear_weight": w, "linear_bias": b, "target": target,
                  "weight": weight, "sample_weight": sample_weight}
        for i, (name, o) in enumerate(zip(names, a.out)):
            if o is None:
                continue
            others = {**inputs, **{n: p for n, p in zip(names[:i], a.out[:i])}}
            for other_name, other in others.items():
                if isinstance(other, np.ndarray) and np.may_share_memory(o, other):
                    raise ValueError(f"out= {name} shares memory with {other_name}; "
                                     f"the gradients need buffers of their own")
    return a

def _nonnegative_weights(w, name, shape, dtype, what):
    """``w`` as a ``dtype`` array of ``shape``, checked real, finite and
    non-negative.  A NaN or infinite weight would turn the whole reduced
    loss into NaN, even when its class or sample takes no part."""
    w = as_array(w, name)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {w.dtype}; expected a real dtype")
    if w.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({what}), got shape {w.shape}")
    with np.errstate(over="ignore"):  # a value too large for dtype is reported below
        w = np.asarray(w, dtype=dtype)
    for bad, what in ((~np.isfinite(w), "finite"), (w < 0, "non-negative")):
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), w.shape)
            i = i[0] if len(i) == 1 else i
            raise ValueError(f"{name} must be {what}; {name}[{i}] is {w[i]}")
    return w
