"""Finite-difference gradient checking, for this package's tests and for
people testing their own layers."""

import numpy as np

__all__ = ["numerical_gradient", "check_gradient"]


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of a scalar function ``f`` at ``x``.

    ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every element i;
    the error is O(eps^2) plus rounding of O(machine eps / eps).

    Parameters
    ----------
    f : callable
        Takes an array shaped like ``x``, returns a scalar.
    x : array_like
        The point; converted to float64.
    eps : float, optional
        The step.

    Returns
    -------
    ndarray
        float64 array shaped like ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax.testing import numerical_gradient
    >>> numerical_gradient(lambda v: float(np.sum(v ** 2)), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float(f(x))
        flat[i] = old - eps
        fm = float(f(x))
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def check_gradient(f, grad, x, eps=1e-6, rtol=1e-5, atol=1e-8, raise_on_failure=False):
    """Compare an analytic gradient with central differences.

    Parameters
    ----------
    f : callable
        Scalar function of an array shaped like ``x``.
    grad : callable or array_like
        The analytic gradient: a function of ``x`` or its value at ``x``.
    x : array_like
        The point.
    eps : float, optional
        Finite-difference step.
    rtol, atol : float, optional
        Pass if ``|analytic - numeric| <= atol + rtol * |numeric|`` everywhere.
    raise_on_failure : bool, optional
        Raise ``AssertionError`` with the report when the check fails.

    Returns
    -------
    dict
        ``max_rel_error`` (the worst ``|a - n| / max(|a|, |n|, atol)``),
        ``max_abs_error``, ``worst_index``, ``passed``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax.testing import check_gradient
    >>> report = check_gradient(lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2,
    ...                         np.array([0.5, 1.5]))
    >>> report["passed"]
    True
    """
    x = np.array(x, dtype=np.float64)
    analytic = np.asarray(grad(x.copy()) if callable(grad) else grad, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"the gradient has shape {analytic.shape}, x has shape {x.shape}")
    numeric = numerical_gradient(f, x, eps)
    diff = np.abs(analytic - numeric)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), atol)
    rel = diff / scale
    worst = np.unravel_index(int(np.argmax(rel)), x.shape) if x.size else ()
    report = {
        "max_rel_error": float(rel.max()) if x.size else 0.0,
        "max_abs_error": float(diff.max()) if x.size else 0.0,
        "worst_index": tuple(int(i) for i in worst),
        "passed": bool(np.all(diff <= atol + rtol * np.abs(numeric))),
    }
    if raise_on_failure and not report["passed"]:
        raise AssertionError(f"gradient check failed: {report}")
    return report
