"""The backward functions: ``softmax_backward``, ``log_softmax_backward``
(vector-Jacobian products, O(n) per slice) and ``softmax_jacobian`` (the
explicit n x n matrix).

Each call checks its arguments once (``_validation.check_backward``), then
either hands that record to the NumPy twin (``_reference``: inputs the
kernels do not take, or the NumPy backend), or plans the kernels' layout
(``_layout``) and runs the compiled loop.  No element loops here.
"""

import numpy as np

from . import _reference, _runtime
from ._layout import Plan, output_into, streams
from ._validation import check_backward

__all__ = ["softmax_backward", "log_softmax_backward", "softmax_jacobian"]

_loops = _runtime.kernels


def _backward(a, log):
    """The vector-Jacobian product from a checked
    :class:`~fastsoftmax._validation.BackwardArgs`."""
    if a.y.ndim == 0 or not _runtime.runs_compiled(a.compute):
        checked = (_reference.log_softmax_backward_checked if log
                   else _reference.softmax_backward_checked)
        return checked(a)
    if a.y.size == 0:
        return a.out if a.out is not None else np.empty(a.y.shape, dtype=a.result)
    dy = np.asarray(a.dy, dtype=a.compute)
    y = np.asarray(a.y, dtype=a.compute)
    if a.mask is not None:
        # masked entries take no part: zero upstream gradient, zero probability
        dy = np.where(a.mask, dy, 0).astype(a.compute, copy=False)
        y = np.where(a.mask, y, -np.inf if log else 0).astype(a.compute, copy=False)
    plan = Plan([dy, y], a.axes)
    threads = _runtime.threads_for(a.num_threads, a.y.size)
    dxk, direct = output_into(a.out, plan, a.result, a.compute)
    _loops.softmax_backward(dy=plan.flat(0), y=plan.flat(1), dx=dxk.reshape(-1),
                            outer=plan.outer, n=plan.n, inner=plan.inner, log=log,
                            num_threads=threads, stream=streams(dxk, plan.inner),
                            tile=plan.tile(a.compute.itemsize, threads))
    dx = plan.user_view(dxk)
    if a.mask is not None:
        np.copyto(dx, 0.0, where=~a.mask)
    if direct:
        return a.out
    if a.out is not None:
        np.copyto(a.out, dx, casting="unsafe")
        return a.out
    return dx.astype(a.result, copy=False)


def softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    """Gradient of a loss with respect to softmax's input, given its output.

    Computes the vector-Jacobian product ``dx = y * (dy - sum(dy * y))``
    along ``axis`` in O(n) per slice, never forming the n x n Jacobian.

    Parameters
    ----------
    grad_output : array_like
        ``dy``, the gradient of the loss with respect to ``y``.
    output : array_like
        ``y = softmax(x, axis)``, same shape as ``grad_output``.
    axis : int, tuple of ints or None, optional
        The axis softmax was taken over (default -1).
    where : array_like of bool, optional
        The mask given to the forward call; masked entries get exactly 0.
    out : ndarray, optional
        Result array.
    num_threads : int, optional
        Threads to use.

    Returns
    -------
    ndarray
        ``dx``, same shape as ``output``.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> y = fs.softmax(np.array([1.0, 2.0, 3.0]))
    >>> dx = fs.softmax_backward(np.ones(3), y)  # a constant dy changes nothing
    >>> bool(np.allclose(dx, 0.0))
    True
    """
    return _backward(check_backward(grad_output, output, axis, where, num_threads, out=out),
                     log=False)


def log_softmax_backward(grad_output, output, axis=-1, *, where=None, out=None, num_threads=None):
    """Gradient with respect to log_softmax's input, given its output.

    Computes ``dx = dy - exp(y) * sum(dy)`` along ``axis``.

    Parameters
    ----------
    grad_output : array_like
        ``dy``, the gradient of the loss with respect to ``y``.
    output : array_like
        ``y = log_softmax(x, axis)``, same shape as ``grad_output``.
    axis, where, out, num_threads
        As for :func:`softmax_backward`.

    Returns
    -------
    ndarray
        ``dx``, same shape as ``output``.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> y = fs.log_softmax(np.array([0.0, 0.0]))
    >>> fs.log_softmax_backward(np.array([-1.0, 0.0]), y)  # NLL of class 0
    array([-0.5,  0.5])
    """
    return _backward(check_backward(grad_output, output, axis, where, num_threads, out=out),
                     log=True)


def softmax_jacobian(output, axis=-1):
    """The explicit Jacobian ``diag(y) - y y^T`` of softmax at output ``y``.

    The slow way, for people who want the matrix: O(n^2) memory per slice.
    To back-propagate, use :func:`softmax_backward`, which is O(n).

    Parameters
    ----------
    output : array_like
        ``y = softmax(x, axis)``.
    axis : int, optional
        The softmax axis (default -1).

    Returns
    -------
    ndarray
        Shape ``(..., n, n)``: the other axes in order, then the Jacobian;
        ``J[..., i, j] = dy_i / dx_j``.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> fs.softmax_jacobian(np.array([0.5, 0.5]))
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    if isinstance(axis, tuple) or axis is None:
        raise TypeError("softmax_jacobian takes a single int axis")
    # an outer product per slice: NumPy's own broadcasting is the kernel
    return _reference.softmax_jacobian(output, axis)
