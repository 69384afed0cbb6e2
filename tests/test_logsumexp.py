"""The top-level logsumexp's b= and return_sign= (as SciPy's), and its
accuracy beside a dominant term (m + log1p(sum of the others))."""


import numpy as np
import pytest

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
