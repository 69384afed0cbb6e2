"""SPEC section 4: the SIMD exp functions and the row sums."""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _runtime

_kernels = _runtime.kernels

scipy_special = pytest.importorskip("scipy.special")


def _ulp_error(y, ref, dtype):
    """|y - ref| in units of the spacing of ref rounded to dtype."""
    ref_rounded = ref.astype(dtype)
    spacing = np.spacing(np.abs(ref_rounded)).astype(ref.dtype)
    # below the smallest normal the spacing is the subnormal step
    tiny = np.finfo(dtype).smallest_subnormal
    spacing = np.maximum(spacing, tiny)
    return np.abs(y.astype(ref.dtype) - ref) / spacing


def test_exp_float32_within_2_ulp(simd):
    t = np.concatenate([
        np.linspace(-103.9, 0, 2_000_001, dtype=np.float32),
        -np.abs(np.random.default_rng(0).standard_normal(500_000, dtype=np.float32)),
        np.array([0.0, -0.0, -1e-30, -1e-7, -87.3, -87.34, -88.0, -103.0], np.float32),
    ])
    y = np.empty_like(t)
    _kernels.exp(x=t, y=y)
    ref = np.exp(t.astype(np.longdouble))
    err = _ulp_error(y, ref, np.float32)
    assert err.max() <= 2.0, (err.max(), t[np.argmax(err)])


def test_exp_float64_within_1_ulp(simd):
    if np.finfo(np.longdouble).nmant < 60:
        pytest.skip("needs an 80-bit long double reference")
    t = np.concatenate([
        np.linspace(-745.0, 0, 2_000_001),
        -np.abs(np.random.default_rng(1).standard_normal(500_000)),
        np.array([0.0, -1e-300, -1e-16, -708.0, -708.4, -709.0, -744.0]),
    ])
    y = np.empty_like(t)
    _kernels.exp(x=t, y=y)
    ref = np.exp(t.astype(np.longdouble))
    err = _ulp_error(y, ref, np.float64)
    assert err.max() <= 1.0, (err.max(), t[np.argmax(err)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(dtype, simd):
    t = np.array([-np.inf, np.nan, -1000.0, 0.0, 1.0, 10.0, 1000.0, np.inf], dtype)
    y = np.empty_like(t)
    _kernels.exp(x=t, y=y)
    assert y[0] == 0 and np.isnan(y[1]) and y[2] == 0 and y[3] == 1
    np.testing.assert_allclose(y[4:6], np.exp(t[4:6]), rtol=4 * np.finfo(dtype).eps)
    assert y[6] == np.inf and y[7] == np.inf


def _worst_relative_error(y, ref):
    return float(np.max(np.abs(y.astype(np.longdouble) - ref) / ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [10, 100, 1000, 10_000, 100_000, 1 << 20])
def test_softmax_error_no_worse_than_scipy(n, dtype, simd):
    """Pairwise-quality sums: worst relative error <= 1.25x SciPy's (SPEC 4)."""
    rng = np.random.default_rng(n)
    rows = 4 if n <= 100_000 else 1
    x = rng.uniform(-20, 20, (rows, n)).astype(dtype)
    xl = x.astype(np.longdouble)
    e = np.exp(xl - xl.max(axis=-1, keepdims=True))
    ref = e / e.sum(axis=-1, keepdims=True)
    ours = _worst_relative_error(fs.softmax(x), ref)
    theirs = _worst_relative_error(scipy_special.softmax(x, axis=-1), ref)
    assert ours <= 1.25 * theirs, (ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simd_paths_agree_with_scalar(dtype, simd):
    """Each path against the lowest one, the portable scalar C (SPEC 4)."""
    x = np.random.default_rng(3).uniform(-30, 30, (64, 3001)).astype(dtype)

    def results():
        return fs.softmax(x), fs.log_softmax(x), fs.logsumexp(x), fs.softmax(x, axis=0)

    got = results()
    _runtime.set_simd(_runtime.available_simd()[0])   # the fixture restores the path
    scalar = results()
    eps = np.finfo(dtype).eps
    for a, b in zip(got, scalar):
        np.testing.assert_allclose(a, b, rtol=8 * eps, atol=8 * eps, err_msg=simd)
