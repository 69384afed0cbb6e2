"""The API layer: validate, choose dtype and threads, and call the kernels
on the layout ``_layout`` plans.  No element loops here."""

import numpy as np

from . import _reference
from ._validation import (
    as_array,
    backward_args,
    as_mask,
    check_num_threads,
    check_out,
    normalize_axes,
    resolve_dtype,
)

from . import _runtime
from ._layout import Plan, output_into, streams
from ._runtime import BACKEND

_kernels = _runtime.kernels


def _threads_for(num_threads, size):
    return _runtime.threads_for(check_num_threads(num_threads), size)


def _prepare_forward(x, axis, where, dtype, num_threads, name="x"):
    x = as_array(x, name)
    compute, result = resolve_dtype(x.dtype, dtype, name)
    axes = normalize_axes(axis, x.ndim)
    mask = as_mask(where, x.shape)
    threads = _threads_for(num_threads, x.size)
    return x, compute, result, axes, mask, threads


def _use_reference(compute):
    return BACKEND == "numpy" or compute not in (np.float32, np.float64)


def _softmax_impl(x, axis, where, out, dtype, num_threads, log):
    ref = _reference.log_softmax if log else _reference.softmax
    x, compute, result, axes, mask, threads = _prepare_forward(x, axis, where, dtype, num_threads)
    if _use_reference(compute):
        return ref(x, axis, where=where, out=out, dtype=dtype, num_threads=num_threads)
    if out is not None:
        check_out(out, x.shape, result)
    if x.ndim == 0:
        y = _softmax_impl(x.reshape(1), -1, None if mask is None else mask.reshape(1),
                          None, dtype, num_threads, log).reshape(())
        if out is not None:
            np.copyto(out, y)
            return out
        return y
    if x.size == 0:
        y = np.empty(x.shape, dtype=result)
        return out if out is not None else y
    xc = np.asarray(x, dtype=compute)
    if mask is not None:
        xc = np.where(mask, xc, -np.inf).astype(compute, copy=False)
    plan = Plan([xc], axes)
    yk, direct = output_into(out, plan, result, compute)
    _kernels.softmax(plan.flat(0), yk.reshape(-1), plan.outer, plan.n, plan.inner, log,
                     threads, streams(yk, plan.inner), plan.tile(compute.itemsize, threads))
    y = plan.user_view(yk)
    if mask is not None:
        np.copyto(y, -np.inf if log else 0.0, where=~mask)
    if direct:
        return out
    if out is not None:
        np.copyto(out, y, casting="unsafe")
        return out
    return y.astype(result, copy=False)


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
    return _softmax_impl(x, axis, where, out, dtype, num_threads, log=False)


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
    return _softmax_impl(x, axis, where, out, dtype, num_threads, log=True)


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
    x, compute, result, axes, mask, threads = _prepare_forward(x, axis, where, dtype, num_threads)
    if _use_reference(compute) or x.ndim == 0:
        return _reference.logsumexp(x, axis, where=where, keepdims=keepdims, dtype=dtype,
                                    num_threads=num_threads)
    kept_shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    if x.size == 0:
        res = np.full(kept_shape, -np.inf, dtype=result)
    else:
        xc = np.asarray(x, dtype=compute)
        if mask is not None:
            xc = np.where(mask, xc, -np.inf).astype(compute, copy=False)
        plan = Plan([xc], axes)
        res_k = np.empty(plan.outer * plan.inner, dtype=compute)
        _kernels.logsumexp(plan.flat(0), res_k, plan.outer, plan.n, plan.inner, threads,
                           plan.tile(compute.itemsize, threads))
        # the result is C-ordered over the kept axes in kernel order
        kshape = tuple(x.shape[p] for p in plan.kept)
        order = sorted(range(len(plan.kept)), key=plan.kept.__getitem__)
        res = res_k.reshape(kshape).transpose(order).astype(result, copy=False)
    if keepdims:
        res = np.expand_dims(res, axes)
    return res[()] if res.ndim == 0 else res


def _backward_impl(grad_output, output, axis, where, out, num_threads, log):
    ref = _reference.log_softmax_backward if log else _reference.softmax_backward
    dy, y, compute, result, axes, mask = backward_args(grad_output, output, axis, where,
                                                       num_threads)
    threads = _threads_for(num_threads, y.size)
    if BACKEND == "numpy" or compute not in (np.float32, np.float64) or y.ndim == 0:
        return ref(dy, y, axis, where=where, out=out, num_threads=num_threads)
    if out is not None:
        check_out(out, y.shape, result)
    if y.size == 0:
        return out if out is not None else np.empty(y.shape, dtype=result)
    dyc = np.asarray(dy, dtype=compute)
    yc = np.asarray(y, dtype=compute)
    if mask is not None:
        # masked entries take no part: zero upstream gradient, zero probability
        dyc = np.where(mask, dyc, 0).astype(compute, copy=False)
        yc = np.where(mask, yc, -np.inf if log else 0).astype(compute, copy=False)
    plan = Plan([dyc, yc], axes)
    dxk, direct = output_into(out, plan, result, compute)
    _kernels.softmax_backward(plan.flat(0), plan.flat(1), dxk.reshape(-1), plan.outer, plan.n,
                              plan.inner, log, threads, streams(dxk, plan.inner),
                              plan.tile(compute.itemsize, threads))
    dx = plan.user_view(dxk)
    if mask is not None:
        np.copyto(dx, 0.0, where=~mask)
    if direct:
        return out
    if out is not None:
        np.copyto(out, dx, casting="unsafe")
        return out
    return dx.astype(result, copy=False)


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
    return _backward_impl(grad_output, output, axis, where, out, num_threads, log=False)


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
    return _backward_impl(grad_output, output, axis, where, out, num_threads, log=True)


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
    return _reference.softmax_jacobian(output, axis)
