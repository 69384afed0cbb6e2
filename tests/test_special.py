"""fastsoftmax.special as a drop-in for scipy.special, and the top-level
logsumexp's ``b=`` and ``return_sign=``.

SciPy's documented behaviour is written out here as expectations, so these
run without SciPy; where SciPy is installed, one generator of awkward
inputs compares every result with SciPy's: type (NumPy scalar or array),
dtype, shape and value.  The few places where fastsoftmax.special differs
on purpose (docs/api.rst, "Differences from SciPy") have their own tests.
"""

import inspect
import math

import numpy as np
import pytest
from cases import cases, tolerance

import fastsoftmax as fs
from fastsoftmax import special

try:
    import scipy.special as scipy_special
except ImportError:  # the expectations below still run
    scipy_special = None

needs_scipy = pytest.mark.skipif(scipy_special is None, reason="needs SciPy")

# gh-18295: log(1 + exp(-40)), kept to full relative accuracy
GH18295 = 4.248354255291589e-18


# --- SciPy's documented behaviour, written out --------------------------------

def test_signatures_are_scipys():
    assert str(inspect.signature(special.softmax)) == "(x, axis=None)"
    assert str(inspect.signature(special.log_softmax)) == "(x, axis=None)"
    assert str(inspect.signature(special.logsumexp)) == \
        "(a, axis=None, b=None, keepdims=False, return_sign=False)"


@needs_scipy
@pytest.mark.parametrize("name", special.__all__)
def test_signatures_match_installed_scipy(name):
    ours = inspect.signature(getattr(special, name))
    theirs = inspect.signature(getattr(scipy_special, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]


_X34 = np.array([[1, 0.5, 0.2, 3], [1, -1, 7, 3], [2, 12, 13, 3]])
_MP = [[2.678636961770877e-33, 1.9287498479371314e-22, 1.3887943864771144e-11,
        0.999999999986112],
       [0.0, 1.9444526359919372e-185, 0.2689414213699951, 0.7310585786300048]]
_ARANGE4_LOG = [-3.4401896985611953, -2.4401896985611953, -1.4401896985611953,
                -0.44018969856119533]
_ARANGE4 = [0.03205860328008499, 0.08714431874203256, 0.23688281808991013,
            0.6439142598879722]

# (function, args, kwargs, expected): SciPy's docstring examples and the
# expectations of its test suite (mpmath references where it gives them)
EXPECTATIONS = [
    ("softmax", ([1000.0, 0, 0, 0],), {}, [1.0, 0, 0, 0]),
    ("softmax", ([1.0, 1.0],), {}, [0.5, 0.5]),
    ("softmax", ([0.0, 1.0],), {}, [1 / (1 + np.e), np.e / (1 + np.e)]),
    ("softmax", (np.arange(4.0),), {}, _ARANGE4),
    ("softmax", (np.arange(4.0) + 100,), {}, _ARANGE4),
    ("softmax", (np.arange(4.0).reshape(2, 2),), {}, np.reshape(_ARANGE4, (2, 2))),
    ("softmax", ([[1000.0, 0], [1000, 0]],), {"axis": 0}, [[0.5, 0.5], [0.5, 0.5]]),
    ("softmax", ([[1000.0, 0], [1000, 0]],), {"axis": 1}, [[1.0, 0], [1, 0]]),
    ("softmax", ([[-25.0, 0, 25, 50], [1, 325, 749, 750]],), {"axis": 1}, _MP),
    ("softmax", (np.array([[-25.0, 0, 25, 50], [1, 325, 749, 750]]).T,), {"axis": 0},
     np.array(_MP).T),
    ("softmax", (np.reshape([[-25.0, 0, 25, 50], [1, 325, 749, 750]], (2, 2, 2)),),
     {"axis": (1, 2)}, np.reshape(_MP, (2, 2, 2))),
    ("softmax", ([1000, 0, 0, 0],), {}, [1.0, 0, 0, 0]),
    ("softmax", (1000,), {}, 1.0),
    ("softmax", (_X34,), {"axis": 1},
     [[1.05877e-01, 6.42177e-02, 4.75736e-02, 7.82332e-01],
      [2.42746e-03, 3.28521e-04, 9.79307e-01, 1.79366e-02],
      [1.22094e-05, 2.68929e-01, 7.31025e-01, 3.31885e-05]]),
    ("softmax", (_X34,), {"axis": 0},
     [[2.11942e-01, 1.01300e-05, 2.75394e-06, 3.33333e-01],
      [2.11942e-01, 2.26030e-06, 2.47262e-03, 3.33333e-01],
      [5.76117e-01, 9.99988e-01, 9.97525e-01, 3.33333e-01]]),
    ("softmax", (_X34,), {},
     [[4.48309e-06, 2.71913e-06, 2.01438e-06, 3.31258e-05],
      [4.48309e-06, 6.06720e-07, 1.80861e-03, 3.31258e-05],
      [1.21863e-05, 2.68421e-01, 7.29644e-01, 3.31258e-05]]),
    ("log_softmax", ([1000.0, 1.0],), {}, [0.0, -999.0]),
    ("log_softmax", ([1000, 1],), {}, [0.0, -999.0]),
    ("log_softmax", (1.0,), {}, 0.0),
    ("log_softmax", (np.arange(4.0),), {}, _ARANGE4_LOG),
    ("log_softmax", (np.arange(4.0) + 100,), {}, _ARANGE4_LOG),
    ("log_softmax", (np.arange(4.0).reshape(2, 2),), {}, np.reshape(_ARANGE4_LOG, (2, 2))),
    ("log_softmax", (np.arange(8.0).reshape(2, 4),), {"axis": 1}, [_ARANGE4_LOG] * 2),
    ("log_softmax", (np.arange(8.0).reshape(2, 4).T,), {"axis": 0}, np.array([_ARANGE4_LOG] * 2).T),
    ("log_softmax", (np.arange(8.0).reshape(2, 2, 2),), {"axis": (1, 2)},
     np.reshape([_ARANGE4_LOG] * 2, (2, 2, 2))),
    ("log_softmax", ([[1000.0, 1], [1000, 1]],), {"axis": 0}, np.log(0.5) * np.ones((2, 2))),
    ("log_softmax", ([[1000.0, 1], [1000, 1]],), {"axis": 1}, [[0.0, -999], [0, -999]]),
    ("logsumexp", (np.arange(10),), {}, 9.4586297444267107),
    ("logsumexp", (np.arange(10),), {"b": np.arange(10, 0, -1)}, 9.9170178533034665),
    ("logsumexp", ([1, 2],), {"b": [1, -1], "return_sign": True}, (1.5413248546129181, -1.0)),
    ("logsumexp", ([np.log(2), 2, np.log(3)],), {"b": [1, 0, 1]}, np.log(5)),
    ("logsumexp", ([],), {}, -np.inf),
    ("logsumexp", (np.arange(200.0),), {}, np.log(np.sum(np.exp(np.arange(200.0))))),
    ("logsumexp", ([1000.0, 1000.0],), {}, 1000 + math.log(2)),
    ("logsumexp", ([1000, 1000],), {}, 1000 + math.log(2)),
    ("logsumexp", (np.full(1000, 10000),), {}, 10000 + math.log(1000)),
    ("logsumexp", ([np.inf],), {}, np.inf),
    ("logsumexp", ([-np.inf],), {}, -np.inf),
    ("logsumexp", ([np.nan],), {}, np.nan),
    ("logsumexp", ([-np.inf, -np.inf],), {}, -np.inf),
    ("logsumexp", ([[1e10, 1e-10], [-1e10, -np.inf]],), {"axis": -1}, [1e10, -1e10]),
    ("logsumexp", ([[1e10, 1e-10], [-1e10, -np.inf]],), {"axis": -1, "keepdims": True},
     [[1e10], [-1e10]]),
    ("logsumexp", ([[1e10, 1e-10], [-1e10, -np.inf]],), {"axis": (-1, -2)}, 1e10),
    ("logsumexp", (np.arange(200.0),), {"b": np.arange(200.0, 0, -1)},
     np.log(np.sum(np.arange(200.0, 0, -1) * np.exp(np.arange(200.0))))),
    ("logsumexp", ([1000, 1000],), {"b": [1.2, 1.2]}, 1000 + math.log(2 * 1.2)),
    ("logsumexp", ([1, 1, 1],), {"b": [1, -1, -1], "return_sign": True}, (1.0, -1.0)),
    ("logsumexp", ([1, 1],), {"b": [1, -1], "return_sign": True}, (-np.inf, 0.0)),
    ("logsumexp", ([1, 10000],), {"b": [1, 0]}, 1.0),
    ("logsumexp", (1,), {}, 1.0),
    ("logsumexp", ([2, 1],), {"b": [1, -1]}, math.log(math.exp(2) - math.exp(1))),
    ("logsumexp", ([3.06409428, 0.37251854, 3.87471931],),
     {"b": [1.88190708, 2.84174795, -0.85016884]},
     math.log(1.88190708 * math.exp(3.06409428) + 2.84174795 * math.exp(0.37251854)
              - 0.85016884 * math.exp(3.87471931))),
    ("logsumexp", ([3.06409428, 0.37251854, 3.87471931],),
     {"b": [1.88190708, 2.84174795, -3.85016884]}, np.nan),
    ("logsumexp", ([np.inf],), {"return_sign": True}, (np.inf, 1.0)),
    ("logsumexp", ([np.inf],), {"b": [-1.0], "return_sign": True}, (np.inf, -1.0)),
    ("logsumexp", ([0.0, -40.0],), {}, GH18295),
]


@pytest.mark.parametrize("name, args, kwargs, expected", EXPECTATIONS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(EXPECTATIONS)])
def test_scipy_expectations(name, args, kwargs, expected):
    result = getattr(special, name)(*args, **kwargs)
    if isinstance(expected, tuple):
        assert isinstance(result, tuple) and len(result) == len(expected)
    else:
        result, expected = (result,), (expected,)
    for r, e in zip(result, expected):
        if np.ndim(e) == 0:
            assert isinstance(r, np.floating), type(r)     # a NumPy scalar, as SciPy
        else:
            assert isinstance(r, np.ndarray) and r.shape == np.shape(e)
        # the docstring examples are printed to 6 digits
        rtol = 1e-5 if name == "softmax" and args[0] is _X34 else 1e-13
        np.testing.assert_allclose(r, e, rtol=rtol, atol=0)


def test_tiny_terms_keep_their_sum():
    """SciPy's check with 10^6 terms of 1e-40 each, and weights."""
    x = np.full(1_000_000, 1e-40)
    logx = np.log(x)
    X, logX = np.stack([x, x]), np.stack([logx, logx])
    np.testing.assert_allclose(np.exp(special.logsumexp(logX)), X.sum(), rtol=1e-7)
    np.testing.assert_allclose(np.exp(special.logsumexp(logX, axis=0)), X.sum(axis=0),
                               rtol=1e-7)
    np.testing.assert_allclose(np.exp(special.logsumexp(logX, axis=1)), X.sum(axis=1),
                               rtol=1e-7)
    b = np.linspace(1, 1000, 100_000)
    X, logX, B = X[:, :100_000], logX[:, :100_000], np.stack([b, b])
    for axis in (None, 0, 1):
        np.testing.assert_allclose(np.exp(special.logsumexp(logX, b=B, axis=axis)),
                                   (B * X).sum(axis=axis), rtol=1e-7)


def test_shapes_with_axes_and_broadcast_weights():
    a = np.ones((1, 2, 3, 4))
    r, s = special.logsumexp(a, axis=2, b=np.ones_like(a), return_sign=True)
    assert r.shape == s.shape == (1, 2, 4)
    r, s = special.logsumexp(a, axis=(1, 3), b=np.ones_like(a), return_sign=True)
    assert r.shape == s.shape == (1, 3)
    # a and b broadcast against each other, to (4, 3, 2, 5)
    r = special.logsumexp(np.zeros((4, 1, 2, 1)), b=np.ones((3, 1, 5)))
    np.testing.assert_allclose(r, np.log(4 * 3 * 2 * 5))
    assert special.logsumexp([1, 2], b=np.ones((3, 2)), axis=-1).shape == (3,)


def test_inputs_are_not_written():
    a, b = np.array([5.0, 4.0]), np.array([3.0, 2.0])
    special.logsumexp(a)
    special.logsumexp(a, b=b)
    special.softmax(a)
    special.log_softmax(a)
    np.testing.assert_array_equal(a, [5.0, 4.0])
    np.testing.assert_array_equal(b, [3.0, 2.0])


# (function, input, kwargs, result type, dtype, shape), as SciPy returns them
RESULT_TYPES = [
    ("softmax", 3.0, {}, np.float64, np.float64, ()),
    ("softmax", np.float32(3.0), {}, np.float32, np.float32, ()),
    ("softmax", np.array(3.0), {}, np.float64, np.float64, ()),
    ("softmax", [1, 2, 3], {}, np.ndarray, np.float64, (3,)),
    ("softmax", np.ones((2, 3)), {}, np.ndarray, np.float64, (2, 3)),
    ("softmax", np.ones((2, 3), np.float16), {}, np.ndarray, np.float16, (2, 3)),
    ("softmax", np.array([1, 2], np.int8), {}, np.ndarray, np.float16, (2,)),
    ("softmax", np.array([1, 2], np.uint8), {}, np.ndarray, np.float16, (2,)),
    ("softmax", np.array([1, 2], np.int16), {}, np.ndarray, np.float32, (2,)),
    ("softmax", np.array([1, 2], np.int64), {}, np.ndarray, np.float64, (2,)),
    ("log_softmax", 1.0, {}, np.float64, np.float64, ()),
    ("log_softmax", np.float32(1.0), {}, np.float32, np.float32, ()),
    ("log_softmax", np.array([1, 2], np.int8), {}, np.ndarray, np.float16, (2,)),
    ("log_softmax", np.array([1, 2], np.int16), {}, np.ndarray, np.float32, (2,)),
    ("logsumexp", 3.0, {}, np.float64, np.float64, ()),
    ("logsumexp", 3.0, {"keepdims": True}, np.ndarray, np.float64, (1,)),
    ("logsumexp", 3.0, {"axis": 0}, np.float64, np.float64, ()),
    ("logsumexp", np.ones((2, 3)), {}, np.float64, np.float64, ()),
    ("logsumexp", np.ones((2, 3)), {"keepdims": True}, np.ndarray, np.float64, (1, 1)),
    ("logsumexp", np.ones((2, 3)), {"axis": 1}, np.ndarray, np.float64, (2,)),
    ("logsumexp", np.ones(2, np.float32), {}, np.float32, np.float32, ()),
    ("logsumexp", np.ones(2, np.float16), {}, np.float16, np.float16, ()),
    ("logsumexp", np.ones(2, np.int8), {}, np.float64, np.float64, ()),
    ("logsumexp", np.ones(2, np.bool_), {}, np.float64, np.float64, ()),
    ("logsumexp", np.ones(2, np.float32), {"b": [1, 2]}, np.float64, np.float64, ()),
    ("logsumexp", np.ones(2, np.float32), {"b": np.float32([1, 2])}, np.float32, np.float32, ()),
    ("logsumexp", np.ones(2, np.float32), {"b": 2.0}, np.float32, np.float32, ()),
    ("logsumexp", np.ones(2, np.float32), {"b": 2}, np.float32, np.float32, ()),
    ("logsumexp", np.ones(2, np.float16), {"b": np.float32([1, 2])}, np.float32, np.float32, ()),
    ("logsumexp", 2, {"b": np.float32(2)}, np.float32, np.float32, ()),
    ("logsumexp", np.float32(2), {"b": np.float64(2)}, np.float64, np.float64, ()),
    ("logsumexp", np.ones(3, np.longdouble), {}, np.longdouble, np.longdouble, ()),
]


@pytest.mark.parametrize("name, x, kwargs, rtype, dtype, shape", RESULT_TYPES)
def test_result_types(name, x, kwargs, rtype, dtype, shape):
    results = [getattr(special, name)(x, **kwargs)]
    if name == "logsumexp":
        results += list(special.logsumexp(x, return_sign=True, **kwargs))
    for r in results:
        assert type(r) is rtype
        assert r.dtype == dtype
        assert np.shape(r) == shape
    if scipy_special is not None:
        with np.errstate(all="ignore"):     # SciPy's uint8 arithmetic wraps
            assert type(getattr(scipy_special, name)(x, **kwargs)) is rtype


def test_empty_sum_sign_is_scipys():
    """SciPy gives the sign of an empty sum as -1 (the sign of its -inf)."""
    assert special.logsumexp([], return_sign=True) == (-np.inf, -1.0)
    r, s = special.logsumexp(np.zeros((2, 0)), axis=1, return_sign=True)
    np.testing.assert_array_equal(r, [-np.inf] * 2)
    np.testing.assert_array_equal(s, [-1.0] * 2)
    # the top-level function gives 0, the sign of a sum of nothing
    assert fs.logsumexp(np.zeros(0), return_sign=True) == (-np.inf, 0.0)


# --- where fastsoftmax.special differs from SciPy, on purpose ----------------

def test_differences_where_scipy_raises():
    """Empty input to softmax/log_softmax, bool input to them, and empty
    input to logsumexp over several axes (SciPy raises ValueError,
    TypeError, IndexError) give results here."""
    for f in (special.softmax, special.log_softmax):
        for x, axis in ((np.zeros(0), None), (np.zeros((3, 0)), 1), (np.zeros((3, 0)), None)):
            y = f(x, axis)
            assert y.shape == x.shape and y.dtype == np.float64
        x = np.array([True, False, True])
        np.testing.assert_array_equal(f(x), f(x.astype(np.float64)))
    # logsumexp of empty input over several axes (SciPy: IndexError; with
    # axis=(), a result of shape (1, 1))
    r, s = special.logsumexp(np.zeros((3, 0, 2)), axis=(0, 1), return_sign=True)
    np.testing.assert_array_equal(r, [-np.inf, -np.inf])
    np.testing.assert_array_equal(s, [-1.0, -1.0])
    assert special.logsumexp(np.zeros((3, 0))) == -np.inf
    assert special.logsumexp(np.zeros((3, 0)), axis=()).shape == (3, 0)


def test_difference_log_softmax_with_posinf_is_all_nan():
    """A slice with +inf (and no NaN): SciPy gives -inf at the finite entries
    and NaN at the +inf ones; fastsoftmax.special gives NaN throughout, as
    its softmax, SciPy's softmax and PyTorch's log_softmax do."""
    y = special.log_softmax(np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]]), axis=1)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def test_difference_zero_weight_excludes_non_finite_entries():
    """SciPy documents that a zero weight leaves its entry out even when it
    is NaN or infinite, but gives NaN when nothing else is left."""
    assert special.logsumexp([np.inf, -np.inf], b=[0, 1], return_sign=True) == (-np.inf, 0.0)
    assert special.logsumexp([np.nan, 1.0], b=[0, 1]) == 1.0
    assert special.logsumexp([np.inf], b=[0]) == -np.inf


def test_difference_integer_inputs_do_not_wrap():
    """SciPy subtracts the maximum in the integer dtype, which wraps."""
    x = np.array([-100, 100], np.int8)
    np.testing.assert_allclose(special.softmax(x), [0.0, 1.0])
    x = np.array([1, 2], np.uint8)
    np.testing.assert_allclose(special.softmax(x), [0.26894142, 0.73105858], rtol=1e-3)


def test_complex_input_is_a_type_error():
    for f in (special.softmax, special.log_softmax, special.logsumexp):
        with pytest.raises(TypeError, match="complex128"):
            f(np.array([1 + 1j, 2]))
    with pytest.raises(TypeError, match="complex"):
        special.logsumexp([1.0, 2.0], b=1j)


# --- every awkward input, against SciPy ---------------------------------------

def _scipy_like(name, x, axis, **kw):
    """SciPy's result, adjusted for what fastsoftmax.special does on purpose
    (see the tests above): values computed in float32 for float16 (as
    fastsoftmax computes float16) and float64 for bool, NaN throughout a
    log_softmax slice SciPy leaves partly NaN, and zero weights leaving
    non-finite entries out.  The result's type and dtype are SciPy's on the
    input as given."""
    f = getattr(scipy_special, name)
    if x.dtype == np.bool_ and name != "logsumexp":
        like = f(x.astype(np.float64), axis)         # SciPy raises on bool
    else:
        with np.errstate(all="ignore"):
            like = f(x, axis, **kw)
    xs = x.astype(np.float32 if x.dtype == np.float16 else np.float64) \
        if x.dtype.kind != "f" or x.dtype == np.float16 else x
    if kw.get("b") is not None:
        xs = np.where(np.asarray(kw["b"]) == 0, -np.inf, xs).astype(xs.dtype)
    with np.errstate(all="ignore"):
        result = f(xs, axis, **kw)
        if name == "logsumexp" and kw.get("b") is not None and not kw.get("return_sign"):
            # a negative weighted sum is NaN; SciPy gives -inf instead where
            # its unshifted sum underflows to -0.0 (e.g. exp(-1284) * -2)
            value, sign = f(xs, axis, **{**kw, "return_sign": True})
            result = np.where((np.asarray(sign) < 0) & np.isfinite(value), np.nan, result)
    if name == "log_softmax" and np.ndim(result) > 0:
        axes = tuple(range(x.ndim)) if axis is None else axis
        nan_slice = np.isnan(result).any(axis=axes, keepdims=True)
        result = np.where(nan_slice, np.nan, result)
    if not isinstance(like, tuple):
        like, result = (like,), (result,)
    result = tuple(np.asarray(r).astype(lk.dtype)[()] for r, lk in zip(result, like))
    return result if len(result) > 1 else result[0]


def _assert_same(actual, expected, case):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), case
        for a, e in zip(actual, expected):
            _assert_same(a, e, case)
        return
    assert type(actual) is type(expected), (case, type(actual), type(expected))
    assert actual.dtype == expected.dtype.newbyteorder("="), (case, actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (case, actual.shape, expected.shape)
    tol = tolerance(expected.dtype)
    if expected.dtype == np.float16:
        tol = dict(rtol=1e-3, atol=1e-3)      # one float16 rounding
    np.testing.assert_allclose(actual, expected, equal_nan=True, err_msg=case, **tol)


# the forward functions' awkward inputs (layouts, dtypes, values, axes),
# without their masks: SciPy has no where=
SPECIAL_CASES = [(c.id, c.args[0], c.args[1], None) for c in cases("softmax")]


@needs_scipy
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_against_scipy(name, simd):
    for case_id, x, axis, _ in SPECIAL_CASES:
        if x.size == 0 and (axis is None or any(x.shape[i] == 0 for i in np.atleast_1d(axis))):
            continue        # SciPy raises: test_differences_where_scipy_raises
        actual = getattr(special, name)(x, axis)
        _assert_same(actual, _scipy_like(name, x, axis), case_id)


def _weights(x, kind, rng):
    shape = x.shape
    if kind == "none":
        return None
    if kind == "positive":
        return rng.uniform(0.1, 3.0, shape)
    if kind == "zeros":
        return np.where(rng.random(shape) < 0.3, 0.0, rng.uniform(0.1, 3.0, shape))
    if kind == "signed":
        return rng.choice([-2.0, -1.0, 0.0, 0.5, 1.0], size=shape)
    if kind == "last_axis":
        return rng.uniform(0.1, 3.0, shape[-1:])
    if kind == "scalar":
        return 2.5
    if kind == "int":
        return rng.integers(0, 3, shape)
    raise ValueError(kind)


WEIGHTS = ["none", "positive", "zeros", "signed", "last_axis", "scalar", "int"]


@needs_scipy
def test_logsumexp_against_scipy(simd):
    rng = np.random.default_rng(3)
    for i, (case_id, x, axis, _) in enumerate(SPECIAL_CASES):
        kind = WEIGHTS[i % len(WEIGHTS)]
        b = _weights(x, kind, rng)
        if x.size == 0 and ((axis is None and x.ndim > 1) or (isinstance(axis, tuple)
                            and len(axis) != 1)):
            continue        # SciPy fails: test_differences_where_scipy_raises
        for keepdims, return_sign in ((False, False), (True, False), (False, True), (True, True)):
            case = f"{case_id}-b_{kind}-keepdims{keepdims}-sign{return_sign}"
            actual = special.logsumexp(x, axis, b, keepdims, return_sign)
            expected = _scipy_like("logsumexp", x, axis, b=b, keepdims=keepdims,
                                   return_sign=return_sign)
            _assert_same(actual, expected, case)


@needs_scipy
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_level_logsumexp_weights_against_scipy(dtype, rng):
    """The top-level function: the same weights and signs, axis=-1 by default."""
    x = (rng.standard_normal((5, 7, 9)) * 3).astype(dtype)
    tol = tolerance(dtype)
    for b in (rng.uniform(0, 2, x.shape), rng.standard_normal(x.shape), rng.standard_normal(9),
              np.where(rng.random(x.shape) < 0.5, 0.0, 1.0)):
        b = b.astype(dtype)
        for axis in (-1, 0, (0, 2), None):
            kw = {} if axis == -1 else {"axis": axis}
            expected = scipy_special.logsumexp(x, -1 if axis == -1 else axis, b=b,
                                               return_sign=True)
            actual = fs.logsumexp(x, b=b, return_sign=True, **kw)
            for a, e in zip(actual, expected):
                np.testing.assert_allclose(a, e, equal_nan=True, **tol)
            with np.errstate(invalid="ignore"):
                np.testing.assert_allclose(
                    fs.logsumexp(x, b=b, **kw),
                    scipy_special.logsumexp(x, -1 if axis == -1 else axis, b=b),
                    equal_nan=True, **tol)
