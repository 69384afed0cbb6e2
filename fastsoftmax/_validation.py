"""Argument checking shared by the compiled path (``_api``) and the NumPy
twin (``_reference``), so that both accept and reject exactly the same input
with the same messages."""

import numbers
import operator

import numpy as np

__all__ = [
    "as_array",
    "resolve_dtype",
    "normalize_axes",
    "check_num_threads",
    "as_mask",
    "check_out",
    "backward_args",
]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def as_array(x, name="x"):
    """``np.asarray`` that keeps read-only inputs read-only and never copies."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested sequences and such
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None


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
    """Return ``num_threads`` as a positive int, or None; else ``ValueError``."""
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
    if out.shape != tuple(shape):
        raise ValueError(f"out= has shape {out.shape}, but the result has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out= has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out= is read-only")
    return out


def backward_args(grad_output, output, axis, where, num_threads):
    """Check the arguments of the backward functions.

    Returns ``(dy, y, compute, result, axes, mask)``: the two arrays (same
    shape, else ``ValueError`` naming both), the computation and result
    dtypes (the promotion of both inputs' own), the normalized axes and the
    broadcast mask.
    """
    dy = as_array(grad_output, "grad_output")
    y = as_array(output, "output")
    if dy.shape != y.shape:
        raise ValueError(
            f"grad_output has shape {dy.shape} but output has shape {y.shape}; they must match"
        )
    c1, r1 = resolve_dtype(dy.dtype, name="grad_output")
    c2, r2 = resolve_dtype(y.dtype, name="output")
    axes = normalize_axes(axis, y.ndim)
    check_num_threads(num_threads)
    mask = as_mask(where, y.shape)
    return dy, y, np.promote_types(c1, c2), np.promote_types(r1, r2), axes, mask
