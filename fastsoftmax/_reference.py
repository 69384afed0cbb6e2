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
    check_cross_entropy,
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
    "cross_entropy",
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


def cross_entropy(logits, target, axis=-1, *, weight=None, sample_weight=None, ignore_index=-100,
                  reduction="mean", label_smoothing=0.0, return_grad=False, num_threads=None):
    """PyTorch's cross-entropy written out: log-probabilities, one-hot rows,
    and the gradient ``d(loss)/d(logits)`` from ``-log p_c``'s derivative
    ``p - onehot(c)``.  Computed in float64 (longdouble stays longdouble)."""
    a = check_cross_entropy(logits, target, axis, weight, sample_weight, ignore_index,
                            reduction, label_smoothing)
    check_num_threads(num_threads)
    work = np.promote_types(a.compute, np.float64)
    x = np.moveaxis(np.asarray(a.logits, dtype=work), a.axis, -1)
    n, eps = a.n_classes, a.label_smoothing
    w = np.ones(n, dtype=work) if a.weight is None else a.weight.astype(work)
    logp = log_softmax(x, -1)
    p = softmax(x, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        if a.soft:
            q = np.moveaxis(np.asarray(a.target, dtype=work), a.axis, -1)
            u = w * ((1 - eps) * q + eps / n)
            row_loss = -np.sum(logp * u, axis=-1)
            row_grad = p * np.sum(u, axis=-1, keepdims=True) - u
            row_denom = np.ones(x.shape[:-1], dtype=work)
            keep = np.ones(x.shape[:-1], dtype=bool)
        else:
            keep = a.target != a.ignore_index
            tc = np.where(keep, a.target, 0).astype(np.intp)
            onehot = np.arange(n) == tc[..., None]
            w_t = w[tc]
            nll = -np.take_along_axis(logp, tc[..., None], axis=-1)[..., 0]
            row_loss = (1 - eps) * w_t * nll
            row_grad = (1 - eps) * w_t[..., None] * (p - onehot)
            if eps > 0:
                row_loss = row_loss + eps / n * -np.sum(w * logp, axis=-1)
                row_grad = row_grad + eps / n * (np.sum(w) * p - w)
            row_loss = np.where(keep, row_loss, 0)
            row_grad = np.where(keep[..., None], row_grad, 0)
            row_denom = np.where(keep, w_t, 0)
        if a.sample_weight is not None:
            sw = a.sample_weight.astype(work)
            row_loss, row_grad, row_denom = row_loss * sw, row_grad * sw[..., None], row_denom * sw
        if a.reduction == "none":
            loss = row_loss.astype(a.result)
        elif a.reduction == "sum":
            loss = a.result.type(np.sum(row_loss))
        else:
            denom = np.sum(row_denom)
            with np.errstate(divide="ignore"):
                loss = a.result.type(np.sum(row_loss) / denom)
                # ignored samples have no gradient even when nothing is left (0 / 0)
                row_grad = np.where(keep[..., None], row_grad / denom, 0)
    if not return_grad:
        return loss
    return loss, np.moveaxis(row_grad, -1, a.axis).astype(a.result)
