"""The NumPy twin of every public function: slow, short, obviously correct.

It is the oracle the tests compare the compiled kernels with, and the
fallback used when the compiled extension cannot be imported (with a
``RuntimeWarning``) or when ``FASTSOFTMAX_BACKEND=numpy`` is set.  Argument
checking is shared with the compiled path (``_validation``), so both accept
and reject the same input.  ``num_threads`` is checked and ignored.
"""

import numpy as np

from ._validation import (
    as_array,
    backward_args,
    as_mask,
    check_num_threads,
    check_out,
    normalize_axes,
    resolve_dtype,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_backward",
    "log_softmax_backward",
    "softmax_jacobian",
]


def _prepare(x, axis, where, dtype, num_threads):
    x = as_array(x)
    compute, result = resolve_dtype(x.dtype, dtype)
    axes = normalize_axes(axis, x.ndim)
    check_num_threads(num_threads)
    mask = as_mask(where, x.shape)
    xc = np.asarray(x, dtype=compute)
    if x.ndim == 0:
        xc = xc.reshape(1)
        axes = (0,)
        mask = None if mask is None else mask.reshape(1)
    if mask is not None:
        xc = np.where(mask, xc, -np.inf).astype(compute, copy=False)
    return x, xc, axes, mask, compute, result


def _finish(y, x, mask, fill, result, out):
    if mask is not None:
        y = np.where(mask, y, fill)
    y = y.reshape(x.shape).astype(result, copy=False)
    if out is not None:
        check_out(out, x.shape, result)
        np.copyto(out, y)
        return out
    return y


def _row_stats(xc, axes):
    """The max m (NaN for rows with a NaN) and s = sum(exp(x - m)), keepdims."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(xc, axis=axes, keepdims=True) if xc.size else xc.sum(axis=axes, keepdims=True)
        s = np.sum(np.exp(xc - m), axis=axes, keepdims=True)
    return m, s


def softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    x, xc, axes, mask, compute, result = _prepare(x, axis, where, dtype, num_threads)
    if out is not None:
        check_out(out, x.shape, result)
    m, s = _row_stats(xc, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        # a non-finite max (NaN, +inf, all -inf) makes x - m NaN: the row is NaN
        y = np.exp(xc - m) / s
    return _finish(y, x, mask, 0.0, result, out)


def log_softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    x, xc, axes, mask, compute, result = _prepare(x, axis, where, dtype, num_threads)
    if out is not None:
        check_out(out, x.shape, result)
    m, s = _row_stats(xc, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (xc - m) - np.log(s)
        y = np.where(np.isfinite(m), y, np.nan)
    return _finish(y, x, mask, -np.inf, result, out)


def logsumexp(x, axis=-1, *, where=None, keepdims=False, dtype=None, num_threads=None):
    x0 = as_array(x)
    x, xc, axes, mask, compute, result = _prepare(x, axis, where, dtype, num_threads)
    m, s = _row_stats(xc, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = np.where(np.isfinite(m), m + np.log(s), m)
    if xc.size == 0:
        lse = np.full(m.shape, -np.inf, dtype=compute)
    if x0.ndim == 0:
        return lse.reshape(()).astype(result)[()]
    if not keepdims:
        lse = np.squeeze(lse, axis=axes)
    lse = lse.astype(result, copy=False)
    return lse[()] if lse.ndim == 0 else lse


def _prepare_backward(grad_output, output, axis, where, num_threads):
    dy, y, compute, result, axes, mask = backward_args(grad_output, output, axis, where,
                                                       num_threads)
    dyc = np.asarray(dy, dtype=compute)
    yc = np.asarray(y, dtype=compute)
    if y.ndim == 0:
        dyc, yc, axes = dyc.reshape(1), yc.reshape(1), (0,)
        mask = None if mask is None else mask.reshape(1)
    return y, dyc, yc, axes, mask, result


def softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    y0, dy, y, axes, mask, result = _prepare_backward(grad_output, output, axis, where, num_threads)
    if out is not None:
        check_out(out, y0.shape, result)
    if mask is not None:
        dy = np.where(mask, dy, 0)
        y = np.where(mask, y, 0)
    dot = np.sum(dy * y, axis=axes, keepdims=True)
    dx = y * (dy - dot)
    return _finish(dx, y0, mask, 0.0, result, out)


def log_softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    y0, dy, y, axes, mask, result = _prepare_backward(grad_output, output, axis, where, num_threads)
    if out is not None:
        check_out(out, y0.shape, result)
    if mask is not None:
        dy = np.where(mask, dy, 0)
        y = np.where(mask, y, -np.inf)
    total = np.sum(dy, axis=axes, keepdims=True)
    dx = dy - np.exp(y) * total
    return _finish(dx, y0, mask, 0.0, result, out)


def softmax_jacobian(output, axis=-1):
    y = as_array(output, "output")
    compute, result = resolve_dtype(y.dtype, name="output")
    (ax,) = normalize_axes(axis, max(y.ndim, 1)) if y.ndim else (0,)
    if isinstance(axis, tuple) and len(axis) != 1:
        raise ValueError("softmax_jacobian takes a single axis")
    yc = np.moveaxis(np.atleast_1d(np.asarray(y, dtype=compute)), ax, -1)
    jac = -yc[..., :, None] * yc[..., None, :]
    idx = np.arange(yc.shape[-1])
    jac[..., idx, idx] += yc
    return jac.astype(result, copy=False)
