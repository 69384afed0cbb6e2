"""The forward functions: ``softmax``, ``log_softmax`` and ``logsumexp``.

Each call checks its arguments once (``_validation.check_forward``), then
either hands that record to the NumPy twin (``_reference``: inputs the
kernels do not take, or the NumPy backend), or plans the kernels' layout
(``_layout``) and runs the compiled loop.  No element loops here.

The common call, a C-contiguous float32/float64 array along its last axis
with no ``where=``, ``out=`` or ``dtype=`` (``_validation.fast_rows``),
skips the checks whose answers that already gives and the planning: its
rows go straight to the row loop, as the general path would run them.
Below ``SERIAL_THRESHOLD`` elements on one thread the loop layer's small
entries (``softmax_small``, ``logsumexp_small``) take the call's own
arguments, pick it and allocate its result themselves.
"""

import numpy as np

from . import _reference, _runtime, _validation
from ._layout import Plan, aligned_empty, mask_rows, output_into, streams
from ._runtime import SERIAL_THRESHOLD, threads_for
from ._validation import check_forward, check_logsumexp, fast_rows

__all__ = ["softmax", "log_softmax", "logsumexp"]

_loops = _runtime.kernels


def _masked_input(a):
    """The input in the computation dtype; masked-out entries become -inf
    (a copy): the column kernels (inner > 1) do not read masks."""
    x = np.asarray(a.x, dtype=a.compute)
    if a.mask is not None:
        x = np.where(a.mask, x, -np.inf).astype(a.compute, copy=False)
    return x


def _plan(a):
    """The kernels' layout of ``a.x``, and its mask as the row kernels read
    it (None without a mask, or for column tiles: then ``a.x``'s masked-out
    entries are -inf in the plan's copy)."""
    plan = Plan([np.asarray(a.x, dtype=a.compute)], a.axes)
    if a.mask is None:
        return plan, None
    rows = mask_rows(a.mask, plan, a.axes)
    if rows is None:
        plan = Plan([_masked_input(a)], a.axes)
    return plan, rows


# One long row of logsumexp with weights (``axis=None``, a 1-D ``x``) is
# taken as rows of this many elements and a shorter last one, so that the
# threads share it; the parts are then combined in order (_weighted_parts).
WEIGHTED_PART = 1 << 16


def _weighted_parts(x, b, threads):
    """The (m, k, s) of one row (flat ``x``, ``b``), each an array of one,
    from the kernel's on its parts of ``WEIGHTED_PART`` elements: the
    largest part maximum, the weights at it, and the other parts' k + s
    rescaled to it.  A part that is not finite leaves the row to the
    caller's fallback (its m made NaN)."""
    n = x.size
    full = (n - 1) // WEIGHTED_PART
    stats = np.empty((full + 1, 3))
    if full:
        _loops.logsumexp_weighted_rows(x=x[:full * WEIGHTED_PART], b=b[:full * WEIGHTED_PART],
                                       out=stats[:full].reshape(-1), n_rows=full,
                                       n=WEIGHTED_PART, num_threads=threads)
    _loops.logsumexp_weighted_rows(x=x[full * WEIGHTED_PART:], b=b[full * WEIGHTED_PART:],
                                   out=stats[full], n_rows=1, n=n - full * WEIGHTED_PART,
                                   num_threads=1)
    pm, pk, ps = stats.T
    m = pm.max()
    # parts with no weight left (-inf) add nothing; anything else not finite: the fallback
    if not (np.isfinite(pk).all() and np.isfinite(ps).all() and np.isfinite(m)
            and not np.isnan(pm).any()):
        return np.full(1, np.nan), np.zeros(1), np.zeros(1)
    top = pm == m
    with np.errstate(under="ignore"):
        rest = (pk + ps)[~top] * np.exp(pm[~top] - m)
    return np.full(1, m), np.full(1, pk[top].sum()), np.full(1, ps[top].sum() + rest.sum())


def _logsumexp_weighted(a):
    """``(lse, sign)`` of logsumexp with weights ``b=`` over the kept axes
    (kernel order undone), or None where the kernel does not take the call:
    a mask, or reduced axes that are not last in memory (column tiles).

    The kernel gives each row's (m, k, s) (``logsumexp_weighted_rows``: the
    largest x of weight not 0, the weights at it, the other terms relative
    to it, in double); they are finished by the reference's own
    ``weighted_lse_from``.  A row whose result
    is not finite that way (a NaN or an infinity, no weight left, a sum of
    0) goes through that function itself, as SciPy decides it."""
    if a.mask is not None:
        return None
    x = np.asarray(a.x, dtype=a.compute)
    b = np.asarray(a.b, dtype=a.compute)
    if x.flags.c_contiguous and not b.flags.c_contiguous:
        b = np.ascontiguousarray(b)       # a broadcast b, written out once
    plan = Plan([x, b], a.axes)
    if plan.inner != 1:
        return None
    threads = threads_for(a.num_threads, x.size)
    if plan.outer == 1 and plan.n > WEIGHTED_PART:
        m, k, s = _weighted_parts(plan.flat(0), plan.flat(1), threads)
    else:
        stats = np.empty((plan.outer, 3))
        _loops.logsumexp_weighted_rows(x=plan.flat(0), b=plan.flat(1), out=stats.reshape(-1),
                                       n_rows=plan.outer, n=plan.n, num_threads=threads)
        m, k, s = stats.T
    lse, sign = _reference.weighted_lse_from(m, k, s)
    bad = ~np.isfinite(lse)
    if bad.any():
        rows_x = plan.flat(0).reshape(plan.outer, plan.n)[bad]
        rows_b = plan.flat(1).reshape(plan.outer, plan.n)[bad]
        bad_lse, bad_sign = _reference._logsumexp_weighted(rows_x, rows_b, (1,))
        lse[bad], sign[bad] = bad_lse[:, 0], bad_sign[:, 0]
    kshape = tuple(a.x.shape[p] for p in plan.kept)
    order = sorted(range(len(plan.kept)), key=plan.kept.__getitem__)
    return tuple(v.reshape(kshape).transpose(order) for v in (lse, sign))


def _softmax_rows(x, n, log, num_threads):
    """softmax or log_softmax of the rows of ``n`` of a C-contiguous float32 or
    float64 ``x`` (:func:`~fastsoftmax._validation.fast_rows`): the kernels'
    layout is ``x``'s own, so the call goes straight to the row loop, exactly
    as the general path would run it."""
    size = x.size
    y = aligned_empty(x.shape, x.dtype)
    _loops.softmax_rows(x, y, size // n, n, log, threads_for(num_threads, size), streams(y))
    return y


def _softmax(a, log):
    """softmax or log_softmax from a checked :class:`~fastsoftmax._validation.ForwardArgs`."""
    if a.x.ndim == 0 or not _runtime.runs_compiled(a.compute):
        return (_reference.log_softmax_checked if log else _reference.softmax_checked)(a)
    if a.x.size == 0:
        return a.out if a.out is not None else np.empty(a.x.shape, dtype=a.result)
    plan, rows = _plan(a)
    threads = _runtime.threads_for(a.num_threads, a.x.size)
    yk, direct = output_into(a.out, plan, a.result, a.compute)
    if rows is not None:
        # the kernel reads the mask beside x: masked-out entries come out 0 (-inf)
        _loops.softmax_masked(x=plan.flat(0), mask=rows.data, mask_dims=rows.dims,
                              mask_strides=rows.strides, y=yk.reshape(-1), n_rows=plan.outer,
                              n=plan.n, log=log, num_threads=threads, stream=streams(yk))
    else:
        _loops.softmax(x=plan.flat(0), y=yk.reshape(-1), outer=plan.outer, n=plan.n,
                       inner=plan.inner, log=log, num_threads=threads,
                       stream=streams(yk, plan.inner, columns=True),
                       tile=plan.tile(a.compute.itemsize, threads))
    y = plan.user_view(yk)
    if a.mask is not None and rows is None:
        # column tiles: masked entries already came out 0 (-inf), except in
        # columns with no entry left, which the kernel made NaN (all -inf)
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

    Notes
    -----
    With ``where=``, the kernel reads the mask (one byte per element) beside
    ``x`` in the same passes as without it, when the axis is the last in
    memory; a mask broadcast over the leading axes (a causal ``(L, L)``
    mask for ``(B, L, L)`` inputs) is read as it is, not repeated.  Other
    axes (column tiles) first copy the input with masked-out entries set to
    -inf and write 0 there after the kernel: two passes more.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> fs.softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    """
    if where is None and out is None and dtype is None:
        if _validation.FAST_PATH:
            y = _loops.softmax_small(x, axis, num_threads, False, SERIAL_THRESHOLD)
            if y is not None:
                return y
        n = fast_rows(x, axis, num_threads)
        if n:
            return _softmax_rows(x, n, False, num_threads)
    return _softmax(check_forward(x, axis, where, dtype, num_threads, out=out), log=False)


def log_softmax(x, axis=-1, *, where=None, out=None, dtype=None, num_threads=None):
    """Log-softmax along an axis: ``x - max - log(sum(exp(x - max)))``.

    Parameters are those of :func:`softmax`; masked-out entries get -inf and
    a row with no entry left is all -inf.

    Returns
    -------
    ndarray
        Same shape as ``x``: the log-probabilities.

    Notes
    -----
    ``where=`` is read by the kernel as in :func:`softmax`.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> fs.log_softmax(np.array([1.0, 2.0, 3.0])).round(4)
    array([-2.4076, -1.4076, -0.4076])
    """
    if where is None and out is None and dtype is None:
        if _validation.FAST_PATH:
            y = _loops.softmax_small(x, axis, num_threads, True, SERIAL_THRESHOLD)
            if y is not None:
                return y
        n = fast_rows(x, axis, num_threads)
        if n:
            return _softmax_rows(x, n, True, num_threads)
    return _softmax(check_forward(x, axis, where, dtype, num_threads, out=out), log=True)


def logsumexp(x, axis=-1, *, where=None, keepdims=False, dtype=None, num_threads=None, b=None,
              return_sign=False):
    """``log(sum(exp(x)))`` along an axis, computed without overflow.

    Parameters
    ----------
    x : array_like
        Input (dtype rules as :func:`softmax`).
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce; default -1 (``scipy.special.logsumexp``
        defaults to None, all axes: see :mod:`fastsoftmax.special`).
    where : array_like of bool, optional
        Entries to include; a row with none left gives -inf.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    dtype : dtype, optional
        Computation and result dtype.
    num_threads : int, optional
        Threads to use.
    b : array_like, optional
        Weights: the result is ``log(sum(b * exp(x)))``, as
        ``scipy.special.logsumexp``.  ``x`` and ``b`` broadcast against each
        other; ``b`` is converted to the computation dtype.  Entries with
        ``b == 0`` are left out entirely, even where ``x`` is NaN or
        infinite.  Negative weights are allowed; see ``return_sign``.  With
        ``where=``, an entry takes part only where ``where`` is True *and*
        its weight is non-zero (masked-out entries count as weight 0).
    return_sign : bool, optional
        Return ``(log(abs(sum)), sign(sum))``, the sign being 1.0, 0.0 (an
        empty sum, result -inf), -1.0 or NaN.  Without it a negative sum
        gives NaN, as SciPy.

    Returns
    -------
    ndarray or scalar, or a pair of them
        NaN where a row has a NaN, +inf where it has +inf, -inf where it is
        all -inf, empty or all masked.  0-d results are NumPy scalars.
        With ``return_sign=True``, the pair ``(result, sign)``.

    Notes
    -----
    The sum of the terms beside the row's maximum ``m`` is kept apart:
    the result is ``m + log1p(sum of the others)``, so a dominant term does
    not swallow the small ones (``logsumexp([0, -40])`` is 4.25e-18, not 0).

    ``where=`` is read by the kernel as in :func:`softmax` (other axes:
    the input is first copied with its masked-out entries set to -inf).

    With ``b=``, the computation runs in NumPy (the reference
    implementation, several passes over the data), not in the compiled
    kernels: as accurate, not as fast.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> float(fs.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> lse, sign = fs.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> float(lse), float(sign)
    (1.5413248546129181, -1.0)
    """
    if (where is None and dtype is None and b is None and keepdims is False
            and return_sign is False):
        if _validation.FAST_PATH:
            res = _loops.logsumexp_small(x, axis, num_threads, SERIAL_THRESHOLD)
            if res is not None:
                return res
        n = fast_rows(x, axis, num_threads)
        if n:
            # the rows' results, in the shape of x without its last axis
            res = np.empty(x.shape[:-1], x.dtype)
            size = x.size
            _loops.logsumexp_rows(x, res, size // n, n, threads_for(num_threads, size))
            return res if res.ndim else res[()]
    a = check_logsumexp(x, axis, where, dtype, num_threads, keepdims=keepdims, b=b,
                        return_sign=return_sign)
    weighted = None
    if a.b is not None and a.x.ndim and a.x.size and _runtime.runs_compiled(a.compute):
        weighted = _logsumexp_weighted(a)
    if (a.b is not None and weighted is None) or a.x.ndim == 0 \
            or not _runtime.runs_compiled(a.compute):
        return _reference.logsumexp_checked(a)
    kept_shape = tuple(s for i, s in enumerate(a.x.shape) if i not in a.axes)
    sign = None
    if weighted is not None:
        res, sign = weighted
        if not a.return_sign:
            res = np.where(sign < 0, np.nan, res)   # log of a negative sum
        res, sign = res.astype(a.result, copy=False), sign.astype(a.result, copy=False)
    elif a.x.size == 0:
        res = np.full(kept_shape, -np.inf, dtype=a.result)
    else:
        plan, rows = _plan(a)
        threads = _runtime.threads_for(a.num_threads, a.x.size)
        res_k = np.empty(plan.outer * plan.inner, dtype=a.compute)
        if rows is not None:
            _loops.logsumexp_masked(x=plan.flat(0), mask=rows.data, mask_dims=rows.dims,
                                    mask_strides=rows.strides, out=res_k, n_rows=plan.outer,
                                    n=plan.n, num_threads=threads)
        else:
            _loops.logsumexp(x=plan.flat(0), out=res_k, outer=plan.outer, n=plan.n,
                             inner=plan.inner, num_threads=threads,
                             tile=plan.tile(a.compute.itemsize, threads))
        # the result is C-ordered over the kept axes in kernel order
        kshape = tuple(a.x.shape[p] for p in plan.kept)
        order = sorted(range(len(plan.kept)), key=plan.kept.__getitem__)
        res = res_k.reshape(kshape).transpose(order).astype(a.result, copy=False)
    if a.keepdims:
        res = np.expand_dims(res, a.axes)
        sign = None if sign is None else np.expand_dims(sign, a.axes)
    if a.return_sign:
        if sign is None:
            sign = _reference.logsumexp_sign(res)
        return (res[()], sign[()]) if res.ndim == 0 else (res, sign)
    return res[()] if res.ndim == 0 else res
