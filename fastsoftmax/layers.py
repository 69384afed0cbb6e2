"""Layer objects with ``forward`` / ``backward`` for hand-written networks.

Each layer keeps what its backward pass needs from the last ``forward``
call (the output), as in classic NumPy neural-network code.
"""

from . import _api

__all__ = ["Softmax", "LogSoftmax"]


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

    _forward = staticmethod(_api.softmax)
    _backward = staticmethod(_api.softmax_backward)


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

    _forward = staticmethod(_api.log_softmax)
    _backward = staticmethod(_api.log_softmax_backward)
