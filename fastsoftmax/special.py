"""``scipy.special``'s softmax functions, with SciPy's signatures.

Replacing ``from scipy import special`` by ``from fastsoftmax import
special`` changes nothing but speed for ``softmax``, ``log_softmax`` and
``logsumexp``: the same positional and keyword arguments, the same defaults
(``axis=None``: all axes), the same result dtypes, NumPy scalars where
SciPy returns them, ``b=``, ``keepdims=`` and ``return_sign=``.

Where SciPy fails (it raises, or gives a result its own arithmetic spoilt)
this module may give a proper result instead; the differences are listed
in :ref:`special-differences`.  The top-level ``fastsoftmax`` functions
keep ``axis=-1`` and add ``where=``, ``out=``, ``dtype=`` and
``num_threads=``.
"""

import numpy as np

from ._forward import log_softmax as _log_softmax
from ._forward import logsumexp as _logsumexp
from ._forward import softmax as _softmax
from ._validation import reject_lazy

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _scalar(y):
    """NumPy scalars for 0-d results, as NumPy's arithmetic (and SciPy) gives."""
    return y[()] if isinstance(y, np.ndarray) and y.ndim == 0 else y


def _softmax_dtype(x):
    """SciPy's result dtype for ``softmax(x)``: that of ``np.exp(x)`` (the
    smallest float that holds the integer type: int8 -> float16, int16 ->
    float32, wider -> float64); bool, which SciPy rejects, gives float64
    as everywhere else in fastsoftmax."""
    if x.dtype.kind in "iu":
        return np.promote_types(x.dtype, np.float16)
    return None


def softmax(x, axis=None):
    r"""Compute the softmax function, as ``scipy.special.softmax``.

    Parameters
    ----------
    x : array_like
        Input array.
    axis : int or tuple of ints, optional
        Axis to compute values along.  Default is None: the softmax is
        computed over the entire array ``x``.

    Returns
    -------
    s : ndarray or scalar
        An array of the same shape as ``x``; it sums to 1 along ``axis``.
        A NumPy scalar if ``x`` is a scalar.

    See Also
    --------
    fastsoftmax.softmax : ``axis=-1`` by default; ``where=``, ``out=``,
        ``dtype=``, ``num_threads=``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax import special
    >>> x = np.array([[1, 0.5, 0.2, 3],
    ...               [1,  -1,   7, 3],
    ...               [2,  12,  13, 3]])
    >>> float(special.softmax(x).sum())
    1.0
    >>> special.softmax(x, axis=1).round(4)
    array([[1.059e-01, 6.420e-02, 4.760e-02, 7.823e-01],
           [2.400e-03, 3.000e-04, 9.793e-01, 1.790e-02],
           [0.000e+00, 2.689e-01, 7.310e-01, 0.000e+00]])
    """
    reject_lazy(x)
    x = np.asarray(x)
    return _scalar(_softmax(x, axis, dtype=_softmax_dtype(x)))


def log_softmax(x, axis=None):
    r"""Compute the logarithm of the softmax function, as
    ``scipy.special.log_softmax``.

    Parameters
    ----------
    x : array_like
        Input array.
    axis : int or tuple of ints, optional
        Axis to compute values along.  Default is None: the softmax is
        computed over the entire array ``x``.

    Returns
    -------
    s : ndarray or scalar
        An array of the same shape as ``x``; its exponential sums to 1
        along ``axis``.  A NumPy scalar if ``x`` is a scalar.

    See Also
    --------
    fastsoftmax.log_softmax : ``axis=-1`` by default; ``where=``, ``out=``,
        ``dtype=``, ``num_threads=``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax import special
    >>> special.log_softmax(np.array([1000.0, 1.0]))
    array([   0., -999.])
    """
    reject_lazy(x)
    x = np.asarray(x)
    return _scalar(_log_softmax(x, axis, dtype=_softmax_dtype(x)))


def _logsumexp_dtype(a, b):
    """SciPy's result dtype for ``logsumexp(a, b=b)``: ``a`` and ``b``
    promoted together and with a float, Python scalars taking part only
    through their kind (NEP 50), so float32 with ``b=2.0`` stays float32
    and integers give float64."""
    # Python's own scalars are weak; NumPy scalars (np.float64 too) are not
    strong = [np.asarray(v).dtype for v in (a, b)
              if v is not None and type(v) not in (bool, int, float, complex)]
    weak_complex = any(type(v) is complex for v in (a, b))
    dtype = np.result_type(*strong) if strong else np.dtype(np.float64)
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    if weak_complex and dtype.kind == "f":
        dtype = np.result_type(dtype, np.complex64)   # rejected below, naming it
    return dtype


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """Compute the log of the sum of exponentials of input elements, as
    ``scipy.special.logsumexp``.

    Parameters
    ----------
    a : array_like
        Input array (real).
    axis : None or int or tuple of ints, optional
        Axis or axes over which the sum is taken.  By default ``axis`` is
        None, and all elements are summed.
    b : array_like, optional
        Scaling factor for ``exp(a)``; ``a`` and ``b`` broadcast against each
        other.  Weights may be negative, to implement subtraction; entries
        with weight 0 are left out (even a NaN or infinite ``a`` there).
    keepdims : bool, optional
        If True, the reduced axes are left in the result with length one.
    return_sign : bool, optional
        If True, return ``(res, sgn)``: ``res`` is the log of the absolute
        value of the sum and ``sgn`` its sign (+1, 0 or -1).  If False,
        negative sums give NaN.

    Returns
    -------
    res : ndarray or scalar
        ``np.log(np.sum(b * np.exp(a)))`` computed without overflow, and
        with full relative accuracy where one term dominates.
    sgn : ndarray or scalar
        Only with ``return_sign=True``.

    See Also
    --------
    fastsoftmax.logsumexp : ``axis=-1`` by default; ``where=``,
        ``dtype=``, ``num_threads=``.

    Notes
    -----
    Without ``b``, the compiled kernels compute the result; with ``b`` it
    is computed in NumPy (several passes over the data).

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax import special
    >>> r = special.logsumexp(np.arange(10))
    >>> type(r), round(float(r), 12)
    (<class 'numpy.float64'>, 9.458629744427)
    >>> round(float(special.logsumexp(np.arange(10), b=np.arange(10, 0, -1))), 12)
    9.917017853303
    >>> r, sign = special.logsumexp([1, 2], b=[1, -1], return_sign=True)
    >>> round(float(r), 12), float(sign)
    (1.541324854613, -1.0)

    One term far above the others does not swallow them:

    >>> float(special.logsumexp([0.0, -40.0]))  # doctest: +ELLIPSIS
    4.24835425529...e-18
    """
    reject_lazy(a, "a")
    reject_lazy(b, "b")
    dtype = _logsumexp_dtype(a, b)
    if dtype.kind != "f":
        raise TypeError(f"logsumexp of dtype {dtype} is not supported by fastsoftmax.special; "
                        "expected real floating, integer or bool inputs")
    # SciPy reduces at least a 1-d array: a scalar with keepdims gives shape (1,)
    a = np.atleast_1d(np.asarray(a))
    if b is not None:
        b = np.asarray(b)
    res = _logsumexp(a, axis, keepdims=keepdims, dtype=dtype, b=b, return_sign=return_sign)
    if not return_sign:
        return _scalar(res)
    res, sign = res
    if a.size == 0 or (b is not None and b.size == 0):
        # SciPy's sign of an empty sum is sign(-inf) = -1
        sign = np.full_like(sign, -1) if isinstance(sign, np.ndarray) else -sign.dtype.type(1)
    return _scalar(res), _scalar(sign)
