"""The NumPy twin of every public function: slow, short, obviously correct.

It is the oracle the tests compare the compiled kernels with, and the
fallback used when the compiled extension cannot be imported (with a
``RuntimeWarning``), when ``FASTSOFTMAX_BACKEND=numpy`` is set, and for the
inputs the kernels do not take (longdouble, 0-d).

Each function comes twice: with the public signature (``softmax(x, axis,
...)``), which checks its arguments through ``_validation`` exactly as the
compiled path does, and as ``*_checked(args)``, which computes from the
checked-arguments record; the compiled path falls back to the latter
without checking again.  ``num_threads`` is checked and ignored.
"""

import numpy as np

from ._validation import (
    as_array,
    check_backward,
    check_cross_entropy,
    check_forward,
    check_linear_cross_entropy,
    check_logsumexp,
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
    "softmax_checked",
    "log_softmax_checked",
    "logsumexp_checked",
    "logsumexp_sign",
    "softmax_backward_checked",
    "log_softmax_backward_checked",
    "cross_entropy_checked",
    "linear_cross_entropy",
    "linear_cross_entropy_checked",
]


def _as_rows(arrays, axes, mask):
    """0-d inputs as 1-element vectors (NumPy's reductions treat them so)."""
    if arrays[0].ndim:
        return arrays, axes, mask
    return ([a.reshape(1) for a in arrays], (0,), None if mask is None else mask.reshape(1))


def _masked_input(a):
    """The input in the computation dtype, at least 1-D, masked entries -inf."""
    (xc,), axes, mask = _as_rows([np.asarray(a.x, dtype=a.compute)], a.axes, a.mask)
    if mask is not None:
        xc = np.where(mask, xc, -np.inf).astype(a.compute, copy=False)
    return xc, axes, mask


def _finish(y, shape, mask, fill, result, out):
    if mask is not None:
        y = np.where(mask, y, fill)
    y = y.reshape(shape).astype(result, copy=False)
    if out is not None:
        np.copyto(out, y)
        return out
    return y


def _row_stats(xc, axes):
    """The max m (NaN for rows with a NaN) and s = sum(exp(x - m)), keepdims."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(xc, axis=axes, keepdims=True) if xc.size else xc.sum(axis=axes, keepdims=True)
        s = np.sum(np.exp(xc - m), axis=axes, keepdims=True)
    return m, s


def _softmax(xc, axes):
    m, s = _row_stats(xc, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        # a non-finite max (NaN, +inf, all -inf) makes x - m NaN: the row is NaN
        return np.exp(xc - m) / s


def _log_softmax(xc, axes):
    m, s = _row_stats(xc, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (xc - m) - np.log(s)
        return np.where(np.isfinite(m), y, np.nan)


def softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    return softmax_checked(check_forward(x, axis, where, dtype, num_threads, out=out))


def log_softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    return log_softmax_checked(check_forward(x, axis, where, dtype, num_threads, out=out))


def logsumexp(x, axis=-1, *, where=None, keepdims=False, dtype=None, num_threads=None, b=None,
              return_sign=False):
    return logsumexp_checked(check_logsumexp(x, axis, where, dtype, num_threads,
                                             keepdims=keepdims, b=b, return_sign=return_sign))


def softmax_checked(a):
    """softmax from a :class:`~fastsoftmax._validation.ForwardArgs`."""
    xc, axes, mask = _masked_input(a)
    return _finish(_softmax(xc, axes), a.x.shape, mask, 0.0, a.result, a.out)


def log_softmax_checked(a):
    """log_softmax from a :class:`~fastsoftmax._validation.ForwardArgs`."""
    xc, axes, mask = _masked_input(a)
    return _finish(_log_softmax(xc, axes), a.x.shape, mask, -np.inf, a.result, a.out)


def _logsumexp(xc, axes):
    """``m + log1p(sum of the others)``, keepdims: the terms beside one
    maximum are summed apart from it, so a dominant term does not swallow
    them (``logsumexp([0, -40])`` is 4.2e-18, not 0).  The other maxima of a
    row count 1 each."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(xc, axis=axes, keepdims=True)
        is_max = xc == m
        n_max = np.sum(is_max, axis=axes, keepdims=True, dtype=xc.dtype)
        rest = np.sum(np.exp(np.where(is_max, -np.inf, xc) - m), axis=axes, keepdims=True)
        # a non-finite max (NaN, +inf, all -inf) is the result
        return np.where(np.isfinite(m), m + np.log1p((n_max - 1) + rest), m)


def weighted_lse_from(m, k, s):
    """``(m + log|k + s|, sign(k + s))`` elementwise: the weighted logsumexp
    from the largest weighted entry ``m``, the weights ``k`` at it and the
    sum ``s`` of the other terms relative to it (``s / k`` added through
    log1p, for full relative accuracy).  Not finite where the sum is 0, or
    ``m``, ``k`` or ``s`` is not finite: the caller decides those."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        r = s / np.where(k == 0, 1, k)
        sign = np.where(k == 0, np.sign(s), np.sign(1 + r) * np.sign(k))
        # log|1 + r|, where 1 + r < 0 through log1p(-r - 2) = log(-(1 + r))
        log_abs = np.where(k == 0, np.log(np.abs(s)),
                           np.log(np.abs(k)) + np.log1p(np.where(r < -1, -r - 2, r)))
        return m + log_abs, sign


def _logsumexp_weighted(xc, bc, axes):
    """``(log|sum(b exp(x))|, sign)``, keepdims, as ``scipy.special.logsumexp``.

    Entries with weight 0 are left out (even a NaN or an infinite ``x``
    there).  The weights at the maximum are summed apart, ``k``, and the
    rest relative to them, so ``log|k + s| = log|k| + log|1 + s/k|`` keeps
    full relative accuracy; where that is not finite (a NaN or +inf term,
    nothing left, an infinite weight) the direct sum decides."""
    excluded = bc == 0
    xc = np.where(excluded, -np.inf, xc)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(xc, axis=axes, keepdims=True)
        is_max = xc == m
        k = np.sum(np.where(is_max, bc, 0), axis=axes, keepdims=True)
        s = np.sum(np.where(is_max, 0, bc * np.exp(xc - m)), axis=axes, keepdims=True)
        lse, sign = weighted_lse_from(m, k, s)
        direct = np.sum(np.where(excluded, 0, bc * np.exp(xc)), axis=axes, keepdims=True)
        finite = np.isfinite(lse)
        lse = np.where(finite, lse, np.log(np.abs(direct)))
        sign = np.where(finite, sign, np.sign(direct))
    return lse, sign


def logsumexp_sign(lse):
    """The sign of a sum of exponentials from its log: 0 for an empty sum
    (-inf), NaN for NaN, else 1."""
    return np.where(lse == -np.inf, 0.0, np.where(np.isnan(lse), np.nan, 1.0)).astype(lse.dtype)


def logsumexp_checked(a):
    """logsumexp from a :class:`~fastsoftmax._validation.LogsumexpArgs`.

    Returns the result, or ``(result, sign)`` with ``return_sign``; without
    it, a negative sum (possible with negative ``b``) gives NaN."""
    xc, axes, mask = _masked_input(a)
    if xc.size == 0:
        # an empty sum is 0: -inf, sign 0 (np.max would raise)
        lse = np.full(np.sum(xc, axis=axes, keepdims=True).shape, -np.inf, dtype=a.compute)
        sign = np.zeros_like(lse)
    elif a.b is None:
        lse = _logsumexp(xc, axes)
        sign = logsumexp_sign(lse)
    else:
        bc = np.asarray(a.b, dtype=a.compute).reshape(xc.shape)
        if mask is not None:
            bc = np.where(mask, bc, 0)
        lse, sign = _logsumexp_weighted(xc, bc, axes)
        if not a.return_sign:
            lse = np.where(sign < 0, np.nan, lse)
    results = []
    for r in (lse, sign) if a.return_sign else (lse,):
        if a.x.ndim == 0:
            r = r.reshape(())
        elif not a.keepdims:
            r = np.squeeze(r, axis=axes)
        r = r.astype(a.result, copy=False)
        results.append(r[()] if r.ndim == 0 else r)
    return tuple(results) if a.return_sign else results[0]


def softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    return softmax_backward_checked(
        check_backward(grad_output, output, axis, where, num_threads, out=out))


def log_softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    return log_softmax_backward_checked(
        check_backward(grad_output, output, axis, where, num_threads, out=out))


def _backward_input(a):
    """``dy`` and ``y`` in the computation dtype, at least 1-D, with axes and mask."""
    dyc = np.asarray(a.dy, dtype=a.compute)
    yc = np.asarray(a.y, dtype=a.compute)
    (dyc, yc), axes, mask = _as_rows([dyc, yc], a.axes, a.mask)
    return dyc, yc, axes, mask


def softmax_backward_checked(a):
    """softmax_backward from a :class:`~fastsoftmax._validation.BackwardArgs`."""
    dy, y, axes, mask = _backward_input(a)
    if mask is not None:
        dy = np.where(mask, dy, 0)
        y = np.where(mask, y, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        dot = np.sum(dy * y, axis=axes, keepdims=True)
        dx = y * (dy - dot)
    return _finish(dx, a.y.shape, mask, 0.0, a.result, a.out)


def log_softmax_backward_checked(a):
    """log_softmax_backward from a :class:`~fastsoftmax._validation.BackwardArgs`."""
    dy, y, axes, mask = _backward_input(a)
    if mask is not None:
        dy = np.where(mask, dy, 0)
        y = np.where(mask, y, -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.sum(dy, axis=axes, keepdims=True)
        dx = dy - np.exp(y) * total
    return _finish(dx, a.y.shape, mask, 0.0, a.result, a.out)


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
                  reduction="mean", label_smoothing=0.0, return_grad=False, num_threads=None,
                  normalizer=None):
    return cross_entropy_checked(check_cross_entropy(
        logits, target, axis, weight, sample_weight, ignore_index, reduction, label_smoothing,
        return_grad, num_threads, normalizer))


def cross_entropy_checked(a):
    """PyTorch's cross-entropy written out, from a
    :class:`~fastsoftmax._validation.CrossEntropyArgs`: log-probabilities,
    one-hot rows, and the gradient ``d(loss)/d(logits)`` from ``-log p_c``'s
    derivative ``p - onehot(c)``.  Computed in float64 (longdouble stays
    longdouble)."""
    if a.n_classes == 0:
        return _cross_entropy_no_classes(a)
    work = np.promote_types(a.compute, np.float64)
    logits = np.moveaxis(np.asarray(a.logits, dtype=work), a.axis, -1)
    n, label_smoothing = a.n_classes, a.label_smoothing
    weight = np.ones(n, dtype=work) if a.weight is None else a.weight.astype(work)
    logp = _log_softmax(logits, (logits.ndim - 1,))
    p = _softmax(logits, (logits.ndim - 1,))
    with np.errstate(invalid="ignore", over="ignore"):
        if a.target is None:
            target_probs = np.moveaxis(np.asarray(a.target_probs, dtype=work), a.axis, -1)
            # the smoothed, weighted target distribution
            u = weight * ((1 - label_smoothing) * target_probs + label_smoothing / n)
            loss_rows = -np.sum(logp * u, axis=-1)
            grad = p * np.sum(u, axis=-1, keepdims=True) - u
            denom_rows = np.ones(logits.shape[:-1], dtype=work)
            keep = np.ones(logits.shape[:-1], dtype=bool)
        else:
            keep = a.target != a.ignore_index
            target = np.where(keep, a.target, 0).astype(np.intp)
            onehot = np.arange(n) == target[..., None]
            target_weight = weight[target]
            nll = -np.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
            loss_rows = (1 - label_smoothing) * target_weight * nll
            grad = (1 - label_smoothing) * target_weight[..., None] * (p - onehot)
            if label_smoothing > 0:
                weight_sum = np.sum(weight)
                loss_rows = loss_rows + label_smoothing / n * -np.sum(weight * logp, axis=-1)
                grad = grad + label_smoothing / n * (weight_sum * p - weight)
            loss_rows = np.where(keep, loss_rows, 0)
            grad = np.where(keep[..., None], grad, 0)
            denom_rows = np.where(keep, target_weight, 0)
        if a.sample_weight is not None:
            sample_weight = a.sample_weight.astype(work)
            loss_rows = loss_rows * sample_weight
            grad = grad * sample_weight[..., None]
            denom_rows = denom_rows * sample_weight
        if a.reduction == "none":
            loss = loss_rows.astype(a.result)
        elif a.reduction == "sum":
            loss = a.result.type(np.sum(loss_rows))
        else:
            denom = np.sum(denom_rows) if a.normalizer is None else a.normalizer
            # nothing left to divide by (every sample ignored, or weighted 0):
            # NaN loss, and NaN gradient but for the ignored samples, as PyTorch
            loss = a.result.type(np.sum(loss_rows) / denom if denom else np.nan)
            grad = np.where(keep[..., None], grad / denom if denom else np.nan * grad, 0)
    if not a.return_grad:
        return loss
    return loss, np.moveaxis(grad, -1, a.axis).astype(a.result)



def linear_cross_entropy(x, linear_weight, target, *, linear_bias=None, weight=None,
                         sample_weight=None, ignore_index=-100, reduction="mean",
                         label_smoothing=0.0, return_grad=False, chunk_size=None, out=None,
                         num_threads=None):
    return linear_cross_entropy_checked(check_linear_cross_entropy(
        x, linear_weight, target, linear_bias, weight, sample_weight, ignore_index, reduction,
        label_smoothing, return_grad, chunk_size, out, num_threads))


def linear_cross_entropy_checked(a):
    """The linear layer and cross-entropy written out, from a
    :class:`~fastsoftmax._validation.LinearCrossEntropyArgs`: the whole
    logits ``x @ W.T + b``, :func:`cross_entropy_checked` on them, and the
    chain rule ``grad_x = G @ W``, ``grad_W = G.T @ x``, ``grad_b = sum(G)``
    (for ``"none"``, ``G`` holds each row's gradient: the gradients of the
    summed losses).  ``chunk_size`` is checked and ignored."""
    ce = a.ce
    work = np.promote_types(a.compute, np.float64)
    x = np.asarray(a.x, dtype=work)
    w = np.asarray(a.linear_weight, dtype=work)
    logits = x @ w.T
    if a.linear_bias is not None:
        logits = logits + np.asarray(a.linear_bias, dtype=work)
    ce.logits, ce.compute, ce.result = logits, work, a.result
    loss, grad = cross_entropy_checked(ce) if ce.return_grad else (cross_entropy_checked(ce), None)
    if a.one_sample and ce.reduction == "none":
        loss = loss.reshape(())
    if grad is None:
        return loss
    grad = np.asarray(grad, dtype=work)
    grads = [grad @ w, grad.T @ x, None if a.linear_bias is None else grad.sum(axis=0)]
    if a.one_sample:
        grads[0] = grads[0].reshape(-1)
    results = []
    for o, g in zip(a.out, grads):
        if o is not None:
            np.copyto(o, g, casting="unsafe")
        results.append(o if o is not None else None if g is None else g.astype(a.result))
    return loss, tuple(results)

def _cross_entropy_no_classes(a):
    """Cross-entropy of logits with no classes, as PyTorch computes it.

    Every class-index target is ``ignore_index`` (validation rejects any
    other), so each sample's loss is 0 -- or NaN with label smoothing,
    whose ``label_smoothing / C`` is 0 / 0.  Probability targets give 0
    per sample.  ``"mean"`` is NaN: no target class weight to divide by,
    and for probability targets PyTorch divides by ``size / C``, 0 / 0.
    The gradient is empty.
    """
    work = np.promote_types(a.compute, np.float64)
    sample_shape = a.logits.shape[:a.axis] + a.logits.shape[a.axis + 1:]
    smoothed = a.target is not None and a.label_smoothing > 0
    loss_rows = np.full(sample_shape, np.nan if smoothed else 0.0, dtype=work)
    if a.sample_weight is not None:
        loss_rows = loss_rows * a.sample_weight
    if a.reduction == "none":
        loss = loss_rows.astype(a.result)
    elif a.reduction == "sum":
        loss = a.result.type(np.sum(loss_rows))
    elif a.normalizer:
        loss = a.result.type(np.sum(loss_rows) / a.normalizer)
    else:
        loss = a.result.type(np.nan)
    if not a.return_grad:
        return loss
    return loss, np.zeros(a.logits.shape, dtype=a.result)
