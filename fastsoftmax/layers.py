"""Layer objects with ``forward`` / ``backward`` for hand-written networks.

Each layer keeps what its backward pass needs from the last ``forward``
call (the output, or for the loss its fused gradient), as in classic NumPy
neural-network code.
"""

import numpy as np

from . import _backward, _cross_entropy, _forward, _linear_cross_entropy
from ._validation import check_linear_cross_entropy

__all__ = ["Softmax", "LogSoftmax", "CrossEntropyLoss", "LinearCrossEntropyLoss"]


class _SoftmaxBase:
    _forward = None
    _backward = None

    def __init__(self, axis=-1, *, where=None, num_threads=None):
        self.axis = axis
        self.where = where
        self.num_threads = num_threads
        self.output = None

    def forward(self, x):
        """Compute the output for input ``x`` and keep it for :meth:`backward`."""
        self.output = type(self)._forward(x, self.axis, where=self.where,
                                          num_threads=self.num_threads)
        return self.output

    __call__ = forward

    def backward(self, grad_output):
        """Gradient with respect to the last ``forward`` input, given ``grad_output``."""
        if self.output is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return type(self)._backward(grad_output, self.output, self.axis, where=self.where,
                                    num_threads=self.num_threads)

    def __repr__(self):
        return f"{type(self).__name__}(axis={self.axis!r})"


class Softmax(_SoftmaxBase):
    """Softmax layer: ``forward(x) -> y``, ``backward(dy) -> dx``.

    Parameters
    ----------
    axis : int, tuple of ints or None, optional
        The softmax axis (default -1).
    where : array_like of bool, optional
        Mask, as for :func:`fastsoftmax.softmax`.
    num_threads : int, optional
        Threads to use.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> layer = fs.Softmax()
    >>> y = layer.forward(np.array([[0.0, 0.0]]))
    >>> layer.backward(np.array([[1.0, 0.0]]))
    array([[ 0.25, -0.25]])
    """

    _forward = staticmethod(_forward.softmax)
    _backward = staticmethod(_backward.softmax_backward)


class LogSoftmax(_SoftmaxBase):
    """Log-softmax layer: ``forward(x) -> log-probabilities``, ``backward(dy) -> dx``.

    Parameters are those of :class:`Softmax`.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> layer = fs.LogSoftmax()
    >>> y = layer.forward(np.array([[0.0, 0.0]]))
    >>> layer.backward(np.array([[-1.0, 0.0]]))
    array([[-0.5,  0.5]])
    """

    _forward = staticmethod(_forward.log_softmax)
    _backward = staticmethod(_backward.log_softmax_backward)


class CrossEntropyLoss:
    """Cross-entropy loss layer: ``forward(logits, target) -> loss``,
    ``backward(grad_output=1.0) -> grad_logits``.

    ``forward`` computes the loss and its gradient in one pass
    (:func:`fastsoftmax.cross_entropy` with ``return_grad=True``) and keeps
    the gradient; ``backward`` scales it by ``grad_output``.

    Parameters
    ----------
    axis : int, optional
        The class axis (default -1).
    weight, sample_weight, ignore_index, reduction, label_smoothing, num_threads
        As for :func:`fastsoftmax.cross_entropy`.  ``sample_weight`` may also
        be given per call to :meth:`forward`.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> layer = fs.CrossEntropyLoss(reduction="sum")
    >>> loss = layer.forward(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6)
    0.693147
    >>> layer.backward(2.0)
    array([[ 1., -1.]])
    """

    def __init__(self, axis=-1, *, weight=None, sample_weight=None, ignore_index=-100,
                 reduction="mean", label_smoothing=0.0, num_threads=None):
        self.axis = axis
        self.weight = weight
        self.sample_weight = sample_weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.num_threads = num_threads
        self.grad = None

    def forward(self, logits, target, sample_weight=None):
        """The loss of ``logits`` against ``target``; keeps its gradient for :meth:`backward`."""
        loss, self.grad = _cross_entropy.cross_entropy(
            logits, target, self.axis, weight=self.weight,
            sample_weight=self.sample_weight if sample_weight is None else sample_weight,
            ignore_index=self.ignore_index, reduction=self.reduction,
            label_smoothing=self.label_smoothing, return_grad=True, num_threads=self.num_threads)
        return loss

    __call__ = forward

    def backward(self, grad_output=1.0):
        """Gradient with respect to the last ``forward``'s logits.

        ``grad_output`` is the gradient with respect to the loss: a scalar for
        ``"mean"`` and ``"sum"``, an array of the loss's shape for ``"none"``
        (each sample's gradient row is scaled by its entry).
        """
        if self.grad is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        dy = np.asarray(grad_output)
        sample_shape = self.grad.shape[:self._axis()] + self.grad.shape[self._axis() + 1:]
        if self.reduction == "none":
            if dy.shape != sample_shape:
                raise ValueError(f"grad_output must have the loss's shape {sample_shape}, "
                                 f"got {dy.shape}")
            dy = np.expand_dims(dy, self._axis())
        elif dy.ndim != 0:
            raise ValueError(f"grad_output must be a scalar for reduction={self.reduction!r}, "
                             f"got shape {dy.shape}")
        return (self.grad * dy).astype(self.grad.dtype, copy=False)

    def _axis(self):
        return self.axis % self.grad.ndim

    def __repr__(self):
        return (f"CrossEntropyLoss(axis={self.axis!r}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing!r}, ignore_index={self.ignore_index!r})")


class LinearCrossEntropyLoss:
    """Linear layer and cross-entropy loss without the logits:
    ``forward(x, linear_weight, target, linear_bias=None) -> loss``,
    ``backward(grad_output=1.0) -> (grad_x, grad_weight, grad_bias)``.

    ``forward`` computes the loss and the three gradients in one chunked
    pass (:func:`fastsoftmax.linear_cross_entropy` with
    ``return_grad=True``) and keeps the gradients; ``backward`` scales them
    by ``grad_output``.

    Parameters
    ----------
    weight, sample_weight, ignore_index, reduction, label_smoothing, chunk_size, num_threads
        As for :func:`fastsoftmax.linear_cross_entropy`.  ``sample_weight``
        may also be given per call to :meth:`forward`.

    Notes
    -----
    For ``reduction="none"``, ``backward`` with the same value for every
    sample (such as the default 1.0, the gradients of the summed losses)
    scales the kept gradients.  Per-sample values cannot be applied to the
    kept ``grad_weight``: ``backward`` then runs the chunks again on the
    arrays the last ``forward`` was given (kept by reference), each
    gradient row scaled by its sample's value before the products.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> layer = fs.LinearCrossEntropyLoss(reduction="sum")
    >>> x, linear_weight = np.array([[1.0, 2.0]]), np.zeros((3, 2))
    >>> loss = layer.forward(x, linear_weight, np.array([0]))
    >>> round(float(loss), 6)
    1.098612
    >>> grad_x, grad_weight, grad_bias = layer.backward(3.0)
    >>> grad_weight
    array([[-2., -4.],
           [ 1.,  2.],
           [ 1.,  2.]])
    """

    def __init__(self, *, weight=None, sample_weight=None, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0, chunk_size=None, num_threads=None):
        self.weight = weight
        self.sample_weight = sample_weight
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.chunk_size = chunk_size
        self.num_threads = num_threads
        self.grads = None
        self._args = None

    def forward(self, x, linear_weight, target, linear_bias=None, sample_weight=None):
        """The loss of ``x @ linear_weight.T + linear_bias`` against ``target``;
        keeps its gradients for :meth:`backward`."""
        a = check_linear_cross_entropy(
            x, linear_weight, target, linear_bias, self.weight,
            self.sample_weight if sample_weight is None else sample_weight, self.ignore_index,
            self.reduction, self.label_smoothing, True, self.chunk_size, None, self.num_threads)
        loss, self.grads = _linear_cross_entropy.linear_cross_entropy_checked(a)
        self._args = a
        return loss

    __call__ = forward

    def backward(self, grad_output=1.0):
        """Gradients ``(grad_x, grad_weight, grad_bias)`` with respect to the
        last ``forward``'s ``x``, ``linear_weight`` and ``linear_bias``
        (``grad_bias`` None without a bias).

        ``grad_output`` is the gradient with respect to the loss: a scalar for
        ``"mean"`` and ``"sum"``, an array of the loss's shape for ``"none"``.
        """
        if self.grads is None:
            raise RuntimeError("LinearCrossEntropyLoss.backward called before forward")
        a = self._args
        dy = np.asarray(grad_output)
        if a.ce.reduction == "none":
            loss_shape = a.x.shape[:0] if a.one_sample else a.x.shape[:1]
            if dy.shape != loss_shape:
                raise ValueError(f"grad_output must have the loss's shape {loss_shape}, "
                                 f"got {dy.shape}")
            if dy.size and not np.all(dy == dy.reshape(-1)[0]):
                _, grads = _linear_cross_entropy.linear_cross_entropy_checked(
                    a, grad_output=dy.reshape(-1))
                return grads
            dy = dy.reshape(-1)[0] if dy.size else np.asarray(1.0)
        elif dy.ndim != 0:
            raise ValueError(f"grad_output must be a scalar for reduction={a.ce.reduction!r}, "
                             f"got shape {dy.shape}")
        return tuple(None if g is None else (g * dy).astype(g.dtype, copy=False)
                     for g in self.grads)

    def __repr__(self):
        return (f"LinearCrossEntropyLoss(reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing!r}, ignore_index={self.ignore_index!r}, "
                f"chunk_size={self.chunk_size!r})")
