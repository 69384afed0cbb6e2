"""The API layer of the fused cross-entropy: validate, lay the logits out as
contiguous rows of classes, work out the reduction's normaliser, and call the
one-pass kernel.  No loops over elements here, and no N x C temporaries:
the kernel reads the logits and writes the gradient, nothing else of that
size is made (except the copy of logits that are not already rows of
classes, see below).

The class axis is brought last: C-contiguous logits with the class axis
last go to the kernel as they are; any other layout (another class axis,
F-order, strided views) goes through one contiguous copy, and the gradient
is returned as a view in the logits' axis order.
"""

import numpy as np

from . import _api, _reference, _runtime
from ._layout import aligned_empty, rows_along, streams
from ._validation import check_cross_entropy, check_num_threads

__all__ = ["cross_entropy"]


def cross_entropy(logits, target, axis=-1, *, weight=None, sample_weight=None, ignore_index=-100,
                  reduction="mean", label_smoothing=0.0, return_grad=False, num_threads=None):
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
    num_threads : int, optional
        Threads to use; None uses every usable core for large inputs.

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
    a = check_cross_entropy(logits, target, axis, weight, sample_weight, ignore_index,
                            reduction, label_smoothing)
    check_num_threads(num_threads)
    if _api.BACKEND == "numpy" or a.compute not in (np.float32, np.float64):
        return _reference.cross_entropy(
            logits, target, axis, weight=weight, sample_weight=sample_weight,
            ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
            return_grad=return_grad, num_threads=num_threads)
    compute, n = a.compute, a.n_classes
    x = rows_along(a.logits, a.axis, compute)
    sample_shape = x.shape[:-1]
    n_rows = int(np.prod(sample_shape))
    sw = None if a.sample_weight is None else np.ascontiguousarray(a.sample_weight.reshape(-1))

    if a.soft:
        q = rows_along(a.target, a.axis, compute)
        t = None
        # PyTorch divides by the number of samples for probability targets
        denom = float(n_rows) if sw is None else float(np.sum(sw))
    else:
        q = None
        # The kernel skips any index outside [0, n).  Validation left only
        # ignore_index outside that range, so only an ignored real class
        # needs marking.
        t = a.target.reshape(-1)
        if 0 <= a.ignore_index < n:
            ignored = t == a.ignore_index
            t = t.astype(np.int64)
            t[ignored] = -1
        else:
            t = np.ascontiguousarray(t, dtype=np.int64)
        denom = 0.0
        if a.reduction == "mean":
            valid = (t >= 0) & (t < n)
            w_t = valid.astype(np.float64) if a.weight is None else \
                np.where(valid, a.weight[np.where(valid, t, 0)], 0).astype(np.float64)
            denom = float(np.sum(w_t if sw is None else w_t * sw))
    with np.errstate(divide="ignore", invalid="ignore"):
        # no samples left: loss 0/0 = NaN, as PyTorch
        scale = float(np.float64(1.0) / denom) if a.reduction == "mean" else 1.0

    # the kernel writes every row's loss; with no classes there is nothing to run
    loss_rows = np.empty(n_rows, dtype=np.float64) if x.size else np.zeros(n_rows)
    grad = aligned_empty(x.shape, compute)
    if x.size:
        threads = _api._threads_for(num_threads, x.size)
        w_sum = float(n) if a.weight is None else float(np.sum(a.weight, dtype=np.float64))
        _runtime.kernels.cross_entropy(
            x.reshape(-1), t, None if q is None else q.reshape(-1), a.weight, w_sum,
            a.label_smoothing, sw, scale, loss_rows, grad.reshape(-1), n_rows, n, threads,
            streams(grad))
    loss = _reduce(loss_rows, sw, a.reduction, denom, sample_shape, a.result)
    if not return_grad:
        return loss
    return loss, np.moveaxis(grad, -1, a.axis).astype(a.result, copy=False)


def _reduce(loss_rows, sw, reduction, denom, sample_shape, result):
    """The loss the user asked for from the samples' own losses."""
    if sw is not None:
        loss_rows = loss_rows * sw
    if reduction == "none":
        return loss_rows.reshape(sample_shape).astype(result)
    total = np.sum(loss_rows)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            total = total / np.float64(denom)
    return result.type(total)
