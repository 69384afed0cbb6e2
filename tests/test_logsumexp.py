"""The top-level logsumexp's b= and return_sign= (as SciPy's), and its
accuracy beside a dominant term (m + log1p(sum of the others))."""


import numpy as np
import pytest
from cases import tolerance

import fastsoftmax as fs
from fastsoftmax import _reference, special

# gh-18295: log(1 + exp(-40)), kept to full relative accuracy
GH18295 = 4.248354255291589e-18


# --- the top-level logsumexp's b= and return_sign= -----------------------------

def test_where_and_b_leave_out_either(rng):
    """An entry takes part where ``where`` is True and its weight is not 0:
    the same as weight 0 at the masked entries."""
    x = rng.standard_normal((6, 11)) * 4
    x[0, 3] = np.nan        # masked out below, so it cannot spoil row 0
    where = rng.random(x.shape) < 0.6
    where[0, 3] = False
    where[5] = False        # a row with nothing left: -inf, sign 0
    b = rng.standard_normal(x.shape)
    r, s = fs.logsumexp(x, where=where, b=b, return_sign=True)
    r0, s0 = _reference.logsumexp(np.where(where, x, 0.0), b=np.where(where, b, 0.0),
                                  return_sign=True)
    np.testing.assert_allclose(r, r0, rtol=1e-13)
    np.testing.assert_array_equal(s, s0)
    assert r[5] == -np.inf and s[5] == 0.0
    direct = np.log(np.abs(np.sum(np.where(where, b * np.exp(x), 0.0)[:5], axis=-1)))
    np.testing.assert_allclose(r[:5], direct, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_return_sign_without_weights(dtype, simd):
    x = np.array([[1.0, 2.0], [-np.inf, -np.inf], [np.nan, 1.0], [np.inf, 1.0]], dtype)
    for f in (fs.logsumexp, _reference.logsumexp):
        r, s = f(x, return_sign=True)
        assert r.dtype == s.dtype == dtype
        np.testing.assert_array_equal(s, [1.0, 0.0, np.nan, 1.0])
        np.testing.assert_array_equal(r[1:], [-np.inf, np.nan, np.inf])
        r, s = f(x[0], return_sign=True)
        assert type(r) is type(s) is np.dtype(dtype).type


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_in_the_kernel(dtype, simd, num_threads, rng):
    """Rows long enough for whole vectors and a tail, against the reference
    (SciPy's rules) and SciPy: weights of 0 (leaving out a NaN or an
    infinity), negative weights and negative sums, ties at the maximum, a
    dominant term, NaN and infinities in x and b, broadcast weights, every
    layout the kernel takes and one it does not (axis 0: the reference)."""
    scipy_special = pytest.importorskip("scipy.special")
    n = 203
    x = (rng.standard_normal((12, n)) * 3).astype(dtype)
    b = rng.random((12, n)).astype(dtype) + 0.5
    b[:, ::5] = 0.0                                   # left out
    x[1, 10], b[1, 10] = np.nan, 0.0                  # a NaN of weight 0 takes no part
    x[2, 7], b[2, 7] = np.inf, 0.0                    # so does an infinity
    x[3, [4, 51, 151]] = 12.0                         # ties at the maximum: k = their weights
    b[4] = -b[4]                                      # a negative sum
    b[5, :100] = -b[5, :100]                          # mixed signs
    x[6] = -30.0                                      # one term dominates: log1p of the rest
    x[6, 33], b[6, 33] = 0.0, 1.0
    x[7, 91] = np.nan                                 # NaN with weight: NaN
    x[8, 201] = np.inf                                # +inf in the tail with weight: inf
    b[9, 17] = np.inf                                 # an infinite weight
    b[10] = 0.0                                       # nothing left: -inf, sign 0
    x[11, 199] = -np.inf                              # -inf with weight: adds 0
    tol = tolerance(dtype)
    for kw in ({}, {"axis": None}, {"keepdims": True}):
        r, s = fs.logsumexp(x, b=b, return_sign=True, num_threads=num_threads, **kw)
        r0, s0 = _reference.logsumexp(x, b=b, return_sign=True, **kw)
        assert r.dtype == s.dtype == dtype and r.shape == np.shape(r0)
        np.testing.assert_allclose(r, r0, **tol)
        np.testing.assert_array_equal(s, s0)
    r = fs.logsumexp(x, b=b, num_threads=num_threads)
    assert np.isnan(r[4]) and np.isnan(r[7]) and r[8] == np.inf and r[10] == -np.inf
    good = [0, 1, 2, 3, 5, 6, 11]
    np.testing.assert_allclose(r[good], scipy_special.logsumexp(
        x[good].astype(np.float64), b=b[good].astype(np.float64), axis=-1), **tol)
    # one weight per column, broadcast over the rows; and axis 0 (columns)
    w = b[0]
    for kw in ({"axis": -1}, {"axis": 0}):
        np.testing.assert_allclose(fs.logsumexp(x[[0, 3, 6]], b=w, **kw),
                                   _reference.logsumexp(x[[0, 3, 6]], b=w, **kw), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_on_one_long_row(dtype, simd, rng):
    """One row longer than WEIGHTED_PART is taken in parts, which the
    threads share: the parts' maxima, ties and sums combined as SciPy's
    rules ask, the same bits on any thread count."""
    part = fs._forward.WEIGHTED_PART
    x = (rng.standard_normal(3 * part + 100) * 3).astype(dtype)
    b = (rng.random(x.size) + 0.5).astype(dtype)
    b[part:2 * part] = 0.0                            # a part with no weight left
    x[[5, 2 * part + 9, 3 * part + 50]] = 14.0        # ties at the maximum across parts
    x[part + 3] = 99.0                                # larger, but of weight 0
    cases = [(x, b), (x, -b), (x, np.where(np.arange(x.size) < 2 * part, b, -b))]
    y = x.copy()
    y[2 * part + 1] = np.nan                          # a NaN with weight: the fallback
    z = np.full_like(x, -np.inf)                      # -inf everywhere but one part
    z[2 * part:3 * part] = x[2 * part:3 * part]
    w = x.copy()
    w[[5, 3 * part + 50]] = 0.0                       # the maximum in one part, below it in others
    cases += [(y, b), (z, b), (w, b), (w, -b)]
    for xc, bc in cases:
        r, s = fs.logsumexp(xc, b=bc, return_sign=True, num_threads=1)
        r0, s0 = _reference.logsumexp(xc, b=bc, return_sign=True)
        np.testing.assert_allclose(r, r0, **tolerance(dtype))
        np.testing.assert_array_equal(s, s0)
        r2, s2 = fs.logsumexp(xc, b=bc, return_sign=True, num_threads=2)
        np.testing.assert_array_equal([r2, s2], [r, s])


def test_negative_sum_is_nan_without_return_sign():
    assert np.isnan(fs.logsumexp([1.0, 2.0], b=[1.0, -1.0]))
    r, s = fs.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    np.testing.assert_allclose(r, np.log(np.e ** 2 - np.e), rtol=1e-15)
    assert s == -1.0


def test_weights_follow_x_dtype_and_keepdims():
    x = np.ones((3, 4), np.float32)
    r, s = fs.logsumexp(x, b=np.arange(4), keepdims=True, return_sign=True)
    assert r.dtype == s.dtype == np.float32 and r.shape == s.shape == (3, 1)
    np.testing.assert_allclose(r, np.full((3, 1), 1 + np.log(6)), rtol=1e-6)
    assert fs.logsumexp(x, b=2.0, dtype=np.float64).dtype == np.float64


def test_weight_errors():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 4\)"):
        fs.logsumexp(np.ones((2, 4)), b=np.ones(3))
    with pytest.raises(TypeError, match="complex128"):
        fs.logsumexp(np.ones(3), b=np.ones(3, complex))


# --- accuracy: m + log1p(sum of the others) (gh-18295) ------------------------

@pytest.mark.parametrize("f", [special.logsumexp, fs.logsumexp, _reference.logsumexp],
                         ids=["special", "top_level", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dominant_term_keeps_the_small_ones(f, dtype, simd):
    x = np.array([0.0, -40.0], dtype)
    np.testing.assert_allclose(f(x), GH18295, rtol=4 * np.finfo(dtype).eps)
    assert f(x).dtype == dtype


@pytest.mark.parametrize("f", [fs.logsumexp, _reference.logsumexp], ids=["top_level", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dominant_term_every_layout(f, dtype, simd, num_threads, rng):
    """Rows of one 0 and many terms far below it: the result is
    log1p(sum of the others), to a few ulp, in the row and the column
    kernels, with where=, with repeated maxima."""
    n_rows, n = 64, 37
    others = rng.uniform(-60.0, -25.0, (n_rows, n - 1))
    x = np.concatenate([np.zeros((n_rows, 1)), others], axis=1)
    x = np.take_along_axis(x, rng.permuted(np.tile(np.arange(n), (n_rows, 1)), axis=1), axis=1)
    x = x.astype(dtype)
    expected = np.log1p(np.sum(np.exp(np.where(x == 0, -np.inf, x.astype(np.float64))), axis=1))
    rtol = 8 * np.finfo(dtype).eps
    kw = {"num_threads": num_threads} if f is fs.logsumexp else {}
    np.testing.assert_allclose(f(x, **kw), expected, rtol=rtol)
    np.testing.assert_allclose(f(np.ascontiguousarray(x.T), axis=0, **kw), expected, rtol=rtol)
    np.testing.assert_allclose(f(np.asfortranarray(x), **kw), expected, rtol=rtol)
    # a masked-out entry above the maximum changes nothing
    big = np.concatenate([x, np.full((n_rows, 1), 50.0, dtype)], axis=1)
    where = np.ones(big.shape, bool)
    where[:, -1] = False
    np.testing.assert_allclose(f(big, where=where, **kw), expected, rtol=rtol)
    # two maxima: log(2 + s) = log(2) + log1p(s / 2)
    two = np.concatenate([x, np.zeros((n_rows, 1), dtype)], axis=1)
    np.testing.assert_allclose(f(two, **kw), np.log(2) + np.log1p(np.expm1(expected) / 2),
                               rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dominant_term_with_weights(dtype):
    x = np.array([0.0, -40.0], dtype)
    np.testing.assert_allclose(fs.logsumexp(x, b=[1.0, 1.0]), GH18295, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(fs.logsumexp(x, b=[1.0, 2.0]), 2 * GH18295,
                               rtol=4 * np.finfo(dtype).eps)
    r, s = fs.logsumexp(x, b=[1.0, -1.0], return_sign=True)
    np.testing.assert_allclose(r, -GH18295, rtol=4 * np.finfo(dtype).eps)
    assert s == 1.0
