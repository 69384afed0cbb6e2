"""The C layer's generated declarations and dispatch table."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fastsoftmax import _runtime
from fastsoftmax._layout import aligned_empty, streams

# the source tree's generator (beside tests/: a checkout or an unpacked sdist)
GEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fastsoftmax",
                   "csrc", "gen_pxd.py")


def test_pxd_is_generated_from_the_kernel_list():
    # _csrc.pxd must be what gen_pxd.py makes of kernel_list.h today
    res = subprocess.run([sys.executable, GEN, "--check"], capture_output=True, text=True)
    assert res.returncode == 0, "fastsoftmax/_csrc.pxd is stale: run fastsoftmax/csrc/gen_pxd.py"


def test_every_kernel_of_the_list_is_reachable():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_pxd", GEN)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with open(gen.LIST) as f:
        names = [name for name, _ in gen.kernels(f.read())]
    assert names[:2] == ["softmax_rows", "softmax_cols"]
    assert "cross_entropy_rows" in names and "exp_array" in names
    with open(gen.PXD) as f:
        pxd = f.read()
    for name in names:
        assert pxd.count(f"(*{name})(") == 2, name  # float32 and float64


def test_selection_never_exceeds_the_cpu():
    best = _runtime.kernels.cpu_isa()
    previous = _runtime.current_simd()
    try:
        for level in range(len(_runtime.ISA_NAMES)):
            got = _runtime.kernels.select_isa(level)
            assert got == min(level, best)
            assert _runtime.kernels.current_isa() == got
    finally:
        _runtime.set_simd(previous)


def test_column_tiles_after_a_leading_block_of_minus_inf(simd):
    # the column kernels' online sums once computed exp(-inf - (-inf)) = NaN
    # for a block of rows whose running maximum was still -inf
    import numpy as np

    import fastsoftmax as fs

    for dtype in (np.float32, np.float64):
        for n_rows in (17, 40):
            x = np.zeros((n_rows, 600), dtype)
            x[:16] = -np.inf
            want = np.full(600, 1.0 / (n_rows - 16))
            np.testing.assert_allclose(fs.softmax(x, axis=0)[-1], want, rtol=1e-6)
            np.testing.assert_allclose(fs.logsumexp(x, axis=0), np.log(n_rows - 16), rtol=1e-6)
            np.testing.assert_allclose(fs.log_softmax(x, axis=0)[-1], np.log(want), rtol=1e-6)
            np.testing.assert_allclose(fs.softmax(np.asfortranarray(x.T))[:, -1], want, rtol=1e-6)
            mask = np.arange(n_rows)[:, None] >= 16
            got = fs.softmax(np.ones((n_rows, 600), dtype), axis=0, where=mask)
            np.testing.assert_allclose(got[-1], want, rtol=1e-6)
            assert not np.isnan(got).any()


def test_row_kernels_stream_or_not_alike(simd):
    # the row kernels choose per row between registers, cached passes and
    # one online pass, and between streamed and cached stores: every choice
    # must give the same bits, at any alignment of the output
    import numpy as np

    from fastsoftmax import _reference

    kernels = _runtime.kernels
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
                  1000, 1024, 70001]:
            rows = max(2, 4000 // n)
            x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
            x[0, n // 2] = -np.inf
            want = _reference.softmax(x)
            for log in (False, True):
                got = []
                for stream, offset in ((False, 0), (True, 0), (True, 1)):
                    y = np.empty(rows * n + 16, dtype)[offset:offset + rows * n]
                    kernels.softmax(x=x.reshape(-1), y=y, outer=rows, n=n, inner=1, log=log,
                                    num_threads=2, stream=stream, tile=1)
                    got.append(y.reshape(rows, n))
                for g in got[1:]:
                    np.testing.assert_array_equal(g, got[0], err_msg=f"n={n} log={log}")
                with np.errstate(divide="ignore"):
                    ref = np.log(want) if log else want
                tol = 3e-6 if dtype == np.float32 else 1e-14
                np.testing.assert_allclose(got[0], ref, rtol=tol, atol=tol, err_msg=f"n={n}")


def test_logsumexp_keeps_the_terms_beside_a_dominant_maximum(simd):
    # m + log1p(sum of the others): logsumexp([0, -40]) = 4.248e-18 (SciPy's
    # gh-18295), on rows, on column tiles and in log_softmax
    import numpy as np

    import fastsoftmax as fs

    want = np.log1p(np.exp(-40.0))
    for dtype in (np.float32, np.float64):
        for extra in (0, 1, 200):
            row = np.concatenate([[0.0, -40.0], np.full(extra, -np.inf), [0.0][:0]]).astype(dtype)
            np.testing.assert_allclose(fs.logsumexp(row), want, rtol=1e-6)
            np.testing.assert_allclose(fs.log_softmax(row)[0], -want, rtol=1e-6)
            cols = np.repeat(row[:, None], 70, axis=1)
            np.testing.assert_allclose(fs.logsumexp(cols, axis=0), want, rtol=1e-6)
            np.testing.assert_allclose(fs.log_softmax(cols, axis=0)[0], -want, rtol=1e-6)
        # ties at the maximum: log(2 + e^-40) = log 2 + log1p(e^-40 / 2)
        two = np.array([0.0, 0.0, -40.0], dtype)
        np.testing.assert_allclose(fs.logsumexp(two), np.log(2) + np.log1p(np.exp(-40.0) / 2),
                                   rtol=1e-7 if dtype == np.float64 else 1e-6)
        masked = fs.logsumexp(np.array([5.0, 0.0, -40.0], dtype),
                              where=np.array([False, True, True]))
        np.testing.assert_allclose(masked, want, rtol=1e-6)


def test_log_softmax_shift_is_exact_far_from_zero(simd):
    # (x - m) - log(s), not x - (m + log s): m + log s rounded at 1352 in
    # float32 is off by up to 6e-5, larger than the answer's own error
    import numpy as np

    import fastsoftmax as fs

    for n in (2, 100, 1000):
        x = np.full(n, -1359.883, np.float32)
        x[0] = -1352.7653
        want = fs._reference.log_softmax(x.astype(np.float64))
        np.testing.assert_allclose(fs.log_softmax(x), want, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(fs.log_softmax(x[:, None], axis=0)[:, 0], want, rtol=2e-6,
                                   atol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="asks Linux's mincore")
def test_pages_resident_tells_fresh_from_used_memory():
    resident = _runtime.kernels.pages_resident
    a = np.empty(64 << 20, np.uint8)  # past any malloc threshold: fresh from mmap
    assert resident(a.ctypes.data, a.nbytes) == 0
    a[a.size // 2:] = 1
    assert resident(a.ctypes.data, a.nbytes) == 1
    assert resident(a.ctypes.data, 100) == -1  # under 3 pages: not asked


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="asks Linux's mincore")
def test_fresh_row_outputs_are_not_streamed():
    y = aligned_empty((16384, 1024), np.float32)  # 64 MiB: fresh from mmap
    assert not streams(y)                  # rows: ordinary stores into fresh pages
    assert streams(y, inner=4, columns=True)  # column tiles stream either way
    y.fill(0)
    assert streams(y)
    assert not streams(y, inner=4)         # (the column kernels that never stream)
    assert not streams(np.zeros((8, 1024), np.float32))  # under STREAM_BYTES
