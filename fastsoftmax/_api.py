"""The API layer: check the arguments once, then either hand the checked
record to the NumPy twin (``_reference``) or run the kernels on the layout
``_layout`` plans.  No element loops here."""

import numpy as np

from . import _reference, _runtime
from ._layout import Plan, output_into, streams
from ._validation import check_backward, check_forward

_loops = _runtime.kernels


def _masked_input(a):
    """The input in the computation dtype; masked-out entries become -inf
    (a copy), so the kernels need not know about masks."""
    x = np.asarray(a.x, dtype=a.compute)
    if a.mask is not None:
        x = np.where(a.mask, x, -np.inf).astype(a.compute, copy=False)
    return x


def _softmax(a, log):
    """softmax or log_softmax from a checked :class:`~fastsoftmax._validation.ForwardArgs`."""
    if a.x.ndim == 0 or not _runtime.runs_compiled(a.compute):
        return (_reference.log_softmax_checked if log else _reference.softmax_checked)(a)
    if a.x.size == 0:
        return a.out if a.out is not None else np.empty(a.x.shape, dtype=a.result)
    plan = Plan([_masked_input(a)], a.axes)
    threads = _runtime.threads_for(a.num_threads, a.x.size)
    yk, direct = output_into(a.out, plan, a.result, a.compute)
    _loops.softmax(x=plan.flat(0), y=yk.reshape(-1), outer=plan.outer, n=plan.n,
                   inner=plan.inner, log=log, num_threads=threads,
                   stream=streams(yk, plan.inner), tile=plan.tile(a.compute.itemsize, threads))
    y = plan.user_view(yk)
    if a.mask is not None:
        # masked entries already came out 0 (-inf), except in rows with no
        # entry left, which the kernel made NaN (a row of -inf)
        np.copyto(y, -np.inf if log else 0.0, where=~a.mask)
    if direct:
        return a.out
    if a.out is not None:
        np.copyto(a.out, y, casting="unsafe")
        return a.out
    return y.astype(a.result, copy=False)


def softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    """Softmax along an axis: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Input; float16/32/64, or integers/bool (promoted to float64).
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over; None means all axes.  The default is
        -1, as in neural-network libraries (``scipy.special.softmax`` defaults
        to None).
    where : array_like of bool, optional
        Entries to include; the others do not take part and get 0.  A row
        with no entry left is all 0.
    out : ndarray, optional
        Result array of the right shape and dtype; may be ``x`` itself.
    dtype : dtype, optional
        Computation and result dtype (float16 computes in float32).
    num_threads : int, optional
        Threads to use; None uses every usable core for large inputs.

    Returns
    -------
    ndarray
        Same shape as ``x``; each slice along ``axis`` sums to 1.  A slice
        containing NaN or +inf, or only -inf, is all NaN.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> fs.softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    """
    return _softmax(check_forward(x, axis, where, dtype, num_threads, out=out), log=False)


def log_softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    """Log-softmax along an axis: ``x - max - log(sum(exp(x - max)))``.

    Parameters are those of :func:`softmax`; masked-out entries get -inf and
    a row with no entry left is all -inf.

    Returns
    -------
    ndarray
        Same shape as ``x``: the log-probabilities.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> fs.log_softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([-2.4076, -1.4076, -0.4076])
    """
    return _softmax(check_forward(x, axis, where, dtype, num_threads, out=out), log=True)


def logsumexp(x, axis=-1, *, where=None, keepdims=False, dtype=None, num_threads=None):
    """``log(sum(exp(x)))`` along an axis, computed without overflow.

    Parameters
    ----------
    x : array_like
        Input (dtype rules as :func:`softmax`).
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce; default -1, None for all.
    where : array_like of bool, optional
        Entries to include; a row with none left gives -inf.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    dtype : dtype, optional
        Computation and result dtype.
    num_threads : int, optional
        Threads to use.

    Returns
    -------
    ndarray or scalar
        NaN where a row has a NaN, +inf where it has +inf, -inf where it is
        all -inf or empty.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> float(fs.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    a = check_forward(x, axis, where, dtype, num_threads, keepdims=keepdims)
    if a.x.ndim == 0 or not _runtime.runs_compiled(a.compute):
        return _reference.logsumexp_checked(a)
    kept_shape = tuple(s for i, s in enumerate(a.x.shape) if i not in a.axes)
    if a.x.size == 0:
        res = np.full(kept_shape, -np.inf, dtype=a.result)
    else:
        plan = Plan([_masked_input(a)], a.axes)
        threads = _runtime.threads_for(a.num_threads, a.x.size)
        res_k = np.empty(plan.outer * plan.inner, dtype=a.compute)
        _loops.logsumexp(x=plan.flat(0), out=res_k, outer=plan.outer, n=plan.n,
                         inner=plan.inner, num_threads=threads,
                         tile=plan.tile(a.compute.itemsize, threads))
        # the result is C-ordered over the kept axes in kernel order
        kshape = tuple(a.x.shape[p] for p in plan.kept)
        order = sorted(range(len(plan.kept)), key=plan.kept.__getitem__)
        res = res_k.reshape(kshape).transpose(order).astype(a.result, copy=False)
    if a.keepdims:
        res = np.expand_dims(res, a.axes)
    return res[()] if res.ndim == 0 else res


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
