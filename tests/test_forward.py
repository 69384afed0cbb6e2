"""softmax, log_softmax and logsumexp against the NumPy reference and SciPy,
on every awkward input, every SIMD path, 1 and 2 threads."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from cases import FORWARD, assert_matches, cases, expected, tolerance

import fastsoftmax as fs

scipy_special = pytest.importorskip("scipy.special")


@pytest.mark.parametrize("name", FORWARD)
def test_against_reference(name, simd, num_threads):
    fast = getattr(fs, name)
    for case, desired in zip(cases(name), expected(name)):
        actual = fast(*case.args, **case.kwargs, num_threads=num_threads)
        assert_matches(actual, desired, case.id)


def test_threads_give_identical_results(simd, rng):
    """Rows are split between threads, and long rows within in fixed parts:
    results are bitwise equal."""
    for shape, axis in [((300, 1000), -1), ((40, 300, 20), 1), ((3000, 7), 0), ((3, 70001), -1),
                        ((2**18 + 5,), -1)]:
        x = rng.standard_normal(shape).astype(np.float32)
        for f in (fs.softmax, fs.log_softmax, fs.logsumexp):
            np.testing.assert_array_equal(f(x, axis, num_threads=1), f(x, axis, num_threads=2))


@pytest.mark.parametrize("axis", [-1, 0, 1, None, (0, 1), (1, 2), ()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_scipy(axis, dtype, simd, rng):
    x = (rng.standard_normal((6, 50, 9)) * 4).astype(dtype)
    tol = tolerance(dtype)
    np.testing.assert_allclose(fs.softmax(x, axis), scipy_special.softmax(x, axis), **tol)
    np.testing.assert_allclose(fs.log_softmax(x, axis), scipy_special.log_softmax(x, axis), **tol)
    np.testing.assert_allclose(fs.logsumexp(x, axis), scipy_special.logsumexp(x, axis), **tol)
    np.testing.assert_allclose(fs.logsumexp(x, axis, keepdims=True),
                               scipy_special.logsumexp(x, axis, keepdims=True), **tol)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 1000, 5000, 70001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_lengths_against_scipy(n, dtype, simd, rng):
    """Every tail length and both row strategies (in-cache and one-pass)."""
    x = (rng.standard_normal((3, n)) * 10).astype(dtype)
    tol = tolerance(dtype)
    np.testing.assert_allclose(fs.softmax(x), scipy_special.softmax(x, axis=-1), **tol)
    np.testing.assert_allclose(fs.log_softmax(x), scipy_special.log_softmax(x, axis=-1), **tol)
    np.testing.assert_allclose(fs.logsumexp(x), scipy_special.logsumexp(x, axis=-1), **tol)
    xt = np.ascontiguousarray(x.T)          # the column kernels, n rows deep
    np.testing.assert_allclose(fs.softmax(xt, axis=0), scipy_special.softmax(xt, axis=0), **tol)


def test_large_output_streams_correctly(simd, output_pages):
    """Outputs past the streaming threshold take the non-temporal store path
    (into pages in memory) or ordinary stores (into fresh pages)."""
    x = np.random.default_rng(1).standard_normal((1100, 1001)).astype(np.float64)
    assert x.nbytes > fs._runtime.STREAM_BYTES
    np.testing.assert_allclose(fs.softmax(x[:, 1:]), scipy_special.softmax(x[:, 1:], axis=-1),
                               rtol=1e-12)
    np.testing.assert_allclose(fs.log_softmax(x), scipy_special.log_softmax(x, axis=-1),
                               rtol=1e-12, atol=1e-13)
    # rows of 1001 doubles into a buffer one element off: every head length
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        buf = np.empty(xd.size + 1, dtype)
        out = buf[1:].reshape(xd.shape)
        for f, ref in ((fs.softmax, scipy_special.softmax),
                       (fs.log_softmax, scipy_special.log_softmax)):
            f(xd, out=out)
            np.testing.assert_allclose(out, ref(xd, axis=-1), **tolerance(dtype))


@pytest.mark.parametrize("n", [3, 10, 32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_classes_stream_from_any_offset(n, dtype, simd, output_pages):
    """Rows of few classes past the streaming threshold, into outputs at
    every element offset from a cache line: the rows before the first
    block that starts on a line go as a part of a block, the rest stream."""
    rng = np.random.default_rng(4)
    itemsize = np.dtype(dtype).itemsize
    n_rows = fs._runtime.STREAM_BYTES // (n * itemsize) + 37
    x = rng.standard_normal((n_rows, n)).astype(dtype)
    want = scipy_special.softmax(x.astype(np.float64), axis=-1)
    want_log = scipy_special.log_softmax(x.astype(np.float64), axis=-1)
    buf = np.empty(x.size + 64 // itemsize, dtype)
    for offset in range(64 // itemsize):
        out = buf[offset:offset + x.size].reshape(x.shape)
        fs.softmax(x, out=out)
        np.testing.assert_allclose(out, want, **tolerance(dtype))
        fs.log_softmax(x, out=out)
        np.testing.assert_allclose(out, want_log, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_rows_shared_between_threads(dtype, simd, output_pages, rng):
    """Rows longer than ROW_CACHE_BYTES, fewer than four a thread, are shared
    between the threads in parts of PART_BYTES: the same bits as on one
    thread whatever the count, and right with the deciding entries in any
    part, into outputs at any offset from a line."""
    itemsize = np.dtype(dtype).itemsize
    part = fs._loops.PART_BYTES // itemsize
    n = 17 * part + 3                                 # a short last part
    assert n * itemsize > fs._loops.ROW_CACHE_BYTES and 8 * n * itemsize > fs._runtime.STREAM_BYTES
    x = (rng.standard_normal((8, n)) * 4).astype(dtype)
    x[1, :part + 5] = -np.inf                         # parts of -inf only, then a rising maximum
    x[1, 4 * part] = 30.0
    x[2] = -60.0                                      # one term dominates: log1p of the others
    x[2, 3 * part + 7] = 0.0
    x[3, 3 * part - 1] = np.nan                       # a NaN in one part
    x[4, -1] = np.inf                                 # +inf in the last part
    x[5, 2] = np.inf                                  # +inf and NaN in different parts
    x[5, 4 * part + 1] = np.nan
    x[6] = rng.uniform(-2000, 0, n)                   # outside the fast exp's range
    x[7] = -np.inf                                    # all -inf
    assert fs._loops.rows_split(x.shape[0], n, itemsize == 8, 3)
    buf = np.empty(x.size + 1, dtype)
    for name in FORWARD:
        want = getattr(fs._reference, name)(x)
        one = getattr(fs, name)(x, num_threads=1)
        np.testing.assert_allclose(one, want, **tolerance(dtype))
        np.testing.assert_array_equal(getattr(fs, name)(x, num_threads=2), one)
        before = fs._loops.set_split_rows(0)          # the same rows, one a thread
        try:
            assert not fs._loops.rows_split(x.shape[0], n, itemsize == 8, 2)
            np.testing.assert_array_equal(getattr(fs, name)(x, num_threads=2), one)
        finally:
            fs._loops.set_split_rows(before)
        for nt in (2, 3, 5):                          # past this machine's cores, too
            if name == "logsumexp":
                got = np.empty(x.shape[0], dtype)
                fs._loops.logsumexp_rows(x, got, x.shape[0], n, nt)
            else:
                got = buf[1:].reshape(x.shape)
                fs._loops.softmax_rows(x, got, x.shape[0], n, name == "log_softmax", nt,
                                       fs._layout.streams(got))
            np.testing.assert_array_equal(got, one, err_msg=f"{name} on {nt} threads")


# ---------------------------------------------------------------- semantics --

def test_nonfinite_rules(simd):
    x = np.array([[1.0, np.nan, 2.0], [1.0, np.inf, 2.0], [-np.inf] * 3, [0.0, -np.inf, 0.0],
                  [np.inf, np.nan, 0.0]])
    y = fs.softmax(x)
    assert np.isnan(y[:3]).all() and np.isnan(y[4]).all()
    np.testing.assert_array_equal(y[3], [0.5, 0.0, 0.5])
    ly = fs.log_softmax(x)
    assert np.isnan(ly[:3]).all()
    np.testing.assert_allclose(ly[3], [np.log(0.5), -np.inf, np.log(0.5)])
    lse = fs.logsumexp(x)
    assert np.isnan(lse[0]) and lse[1] == np.inf and lse[2] == -np.inf and np.isnan(lse[4])


def test_mask_rules(simd):
    x = np.array([[1e30, 1.0, 2.0], [5.0, 6.0, 7.0]])
    where = np.array([[False, True, True], [False, False, False]])
    y = fs.softmax(x, where=where)
    np.testing.assert_allclose(y[0], [0.0, *scipy_special.softmax([1.0, 2.0])])
    np.testing.assert_array_equal(y[1], 0.0)
    ly = fs.log_softmax(x, where=where)
    assert ly[0, 0] == -np.inf and (ly[1] == -np.inf).all()
    lse = fs.logsumexp(x, where=where)
    assert lse[1] == -np.inf
    np.testing.assert_allclose(lse[0], np.logaddexp(1.0, 2.0))


def test_mask_errors():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="boolean"):
        fs.softmax(x, where=np.ones((2, 3), int))
    with pytest.raises(ValueError, match="broadcast"):
        fs.softmax(x, where=np.ones((3, 2), bool))


def test_empty_and_zero_d():
    assert fs.softmax(np.zeros((0, 5))).shape == (0, 5)
    assert fs.log_softmax(np.zeros((5, 0))).shape == (5, 0)
    np.testing.assert_array_equal(fs.logsumexp(np.zeros((3, 0))), [-np.inf] * 3)
    assert fs.logsumexp(np.zeros((0, 3))).shape == (0,)
    assert fs.logsumexp(np.zeros((3, 0)), axis=0).shape == (0,)
    assert fs.softmax(np.float64(3.0)) == 1.0
    assert fs.softmax(np.float32(3.0)).dtype == np.float32
    assert fs.log_softmax(2.0) == 0.0
    assert fs.logsumexp(2.0) == 2.0
    np.testing.assert_array_equal(fs.softmax(np.array([3.0, 4.0]), axis=()), [1.0, 1.0])


def test_dtype_rules():
    assert fs.softmax(np.zeros(3, np.float16)).dtype == np.float16
    assert fs.softmax(np.zeros(3, np.float32)).dtype == np.float32
    assert fs.softmax(np.zeros(3, np.int8)).dtype == np.float64
    assert fs.softmax([True, False]).dtype == np.float64
    assert fs.softmax([1, 2, 3]).dtype == np.float64
    assert fs.softmax(np.zeros(3), dtype=np.float32).dtype == np.float32
    assert fs.softmax(np.zeros(3, np.float32), dtype="float16").dtype == np.float16
    assert fs.logsumexp(np.zeros((2, 3), np.float16)).dtype == np.float16
    for bad in (np.zeros(3, complex), np.array(["a", "b"]), np.array([1, "a"], object),
                np.array(["2020-01-01"], "datetime64[D]")):
        with pytest.raises(TypeError, match=str(bad.dtype).replace("[", r"\[").replace("]", r"\]")):
            fs.softmax(bad)
    with pytest.raises(TypeError, match="dtype"):
        fs.softmax(np.zeros(3), dtype=np.int32)


def test_axis_errors():
    x = np.zeros((2, 3))
    with pytest.raises(np.exceptions.AxisError):
        fs.softmax(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        fs.logsumexp(x, axis=(0, -3))
    with pytest.raises(ValueError, match="repeated"):
        fs.softmax(x, axis=(1, -1))
    with pytest.raises(TypeError):
        fs.softmax(x, axis=1.0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, np.float64(2.0)])
def test_num_threads_validation(bad):
    with pytest.raises(ValueError, match="num_threads"):
        fs.softmax(np.zeros(3), num_threads=bad)


def test_num_threads_accepts_numpy_ints():
    np.testing.assert_allclose(fs.softmax(np.zeros(4), num_threads=np.int64(2)), 0.25)


# --------------------------------------------------------------------- out= --

@pytest.mark.parametrize("f", [fs.softmax, fs.log_softmax])
def test_out_argument(f, rng):
    x = rng.standard_normal((5, 7))
    expected = f(x)
    out = np.empty_like(x)
    assert f(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    out_f = np.empty_like(x, order="F")
    assert f(x, out=out_f) is out_f
    np.testing.assert_array_equal(out_f, expected)
    out_strided = np.empty((5, 14))[:, ::2]
    f(x, out=out_strided)
    np.testing.assert_array_equal(out_strided, expected)
    with pytest.raises(ValueError, match="shape"):
        f(x, out=np.empty((7, 5)))
    with pytest.raises(TypeError, match="dtype"):
        f(x, out=np.empty((5, 7), np.float32))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(x, out=ro)
    out16 = np.empty((5, 7), np.float16)
    f(x.astype(np.float16), out=out16)
    np.testing.assert_allclose(out16, f(x.astype(np.float16)))


@pytest.mark.parametrize("f", [fs.softmax, fs.log_softmax])
@pytest.mark.parametrize("axis", [-1, 0])
def test_in_place_and_overlap(f, axis, rng, simd):
    x = rng.standard_normal((6, 9))
    expected = f(x, axis)
    y = x.copy()
    assert f(y, axis, out=y) is y
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    # partial overlap: out starts one row after the input in the same buffer
    buf = rng.standard_normal(7 * 9)
    xin = buf[: 6 * 9].reshape(6, 9)
    expected = f(xin.copy(), axis)
    out = buf[9:].reshape(6, 9)
    f(xin, axis, out=out)
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_readonly_input_is_fine():
    x = np.arange(6.0).reshape(2, 3)
    x.flags.writeable = False
    np.testing.assert_allclose(fs.softmax(x).sum(-1), 1.0)


# -------------------------------------------------------------- threads, GIL --

def test_gil_released_during_kernel():
    """A Python thread keeps running while a long kernel call is in C."""
    x = np.random.default_rng(0).standard_normal((2000, 4096)).astype(np.float64)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        deltas = []
        for _ in range(3):
            before = counter[0]
            fs.softmax(x, num_threads=1)
            deltas.append(counter[0] - before)
    finally:
        stop.set()
        t.join()
    # with the GIL held for the whole call the spinner would barely move
    assert max(deltas) > 1000, deltas


def test_default_threads_follow_omp_num_threads():
    code = "import fastsoftmax as fs; print(fs.get_config()['default_num_threads'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**_env(), "OMP_NUM_THREADS": "1"}).stdout
    assert out.strip() == "1"


def test_default_threads_follow_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fs.get_config()["openmp"]:
        pytest.skip("built without OpenMP")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fs.get_config()["default_num_threads"] == 1


def _env():
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("FASTSOFTMAX_")}


# ----------------------------------------------------- configuration, paths --

@pytest.mark.parametrize("path", fs._runtime.ISA_NAMES)
def test_simd_env_var_selects_path(path):
    if path not in fs._runtime.available_simd():
        pytest.skip(f"{path} is not available on this CPU and build")
    code = ("import fastsoftmax as fs, numpy as np; c = fs.get_config(); "
            "x = np.linspace(-5, 5, 1001).reshape(7, 143); "
            "print(c['simd'], float(np.abs(fs.softmax(x).sum(-1) - 1).max()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**_env(), "FASTSOFTMAX_SIMD": path}).stdout.split()
    assert out[0] == path
    assert float(out[1]) < 1e-14


def test_simd_env_var_higher_than_available_warns():
    available = fs._runtime.available_simd()
    higher = fs._runtime.ISA_NAMES[len(available):]
    if not higher:
        pytest.skip("this CPU and build run every SIMD path")
    code = "import fastsoftmax as fs; print(fs.get_config()['simd'])"
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, check=True, env={**_env(), "FASTSOFTMAX_SIMD": higher[0]})
    assert proc.stdout.strip() == fs.get_config()["simd_available"]
    assert higher[0] in proc.stderr


def test_numpy_backend_on_purpose():
    code = ("import fastsoftmax as fs, numpy as np; print(fs.get_config()['backend'], "
            "float(fs.softmax(np.zeros(4))[0]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**_env(), "FASTSOFTMAX_BACKEND": "numpy"}).stdout.split()
    assert out == ["numpy", "0.25"]


def test_show_config(capsys):
    fs.show_config()
    text = capsys.readouterr().out
    for key in ("simd", "openmp", "default_num_threads", "compile_flags"):
        assert key in text
    cfg = fs.get_config()
    assert cfg["backend"] == "compiled"
    assert cfg["simd"] in fs._runtime.available_simd()


def test_fallback_without_extension_warns():
    """If the compiled module cannot be imported the package still works,
    on the NumPy reference, and says so with a RuntimeWarning."""
    code = (
        "import sys, warnings\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'fastsoftmax._loops':\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import fastsoftmax as fs\n"
        "print(fs.get_config()['backend'], [str(x.category.__name__) for x in w],\n"
        "      float(fs.softmax([0.0, 0.0])[0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_env()).stdout
    assert out.split()[0] == "numpy"
    assert "RuntimeWarning" in out and out.split()[-1] == "0.5"


def test_default_threads_follow_affinity():
    import os
    if not hasattr(os, "sched_setaffinity") or not fs.get_config()["openmp"]:
        pytest.skip("no affinity control or no OpenMP")
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "import fastsoftmax as fs; print(fs.get_config()['default_num_threads'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=_env()).stdout
    assert out.strip() == "1"


@pytest.mark.parametrize("n", [3, 40, 70001])
@pytest.mark.parametrize("others", [-np.inf, np.inf, 1.0])
def test_nan_is_never_lost(n, others, simd, rng):
    """A NaN anywhere decides the row, whatever the maximum pass saw."""
    for pos in (0, 1, n // 2, n - 1):
        x = np.full((2, n), others)
        x[1] = rng.standard_normal(n)
        x[0, pos] = np.nan
        assert np.isnan(fs.logsumexp(x)[0]), pos
        assert np.isnan(fs.softmax(x)[0]).all() and np.isnan(fs.log_softmax(x)[0]).all(), pos
        assert np.isnan(fs.logsumexp(x.T, axis=0)[0]), pos
        np.testing.assert_allclose(fs.softmax(x)[1], scipy_special.softmax(x[1]), rtol=1e-12)


@pytest.mark.parametrize("n", [1000, 70001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_outside_the_fast_exp_range(n, dtype, simd, rng):
    """Rows whose spread sends exp(x - max) below the normal range (and -inf
    entries) take the range-checked exp, in-cache and one-pass rows alike."""
    x = rng.uniform(-2000, 0, (3, n)).astype(dtype)
    x[1, ::7] = -np.inf
    x[2] = rng.standard_normal(n)
    x[2, 5] = -800.0
    for f, ref in ((fs.softmax, fs._reference.softmax),
                   (fs.log_softmax, fs._reference.log_softmax),
                   (fs.logsumexp, fs._reference.logsumexp)):
        np.testing.assert_allclose(f(x), ref(x), **tolerance(dtype))
    y = fs.log_softmax(x)
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_allclose(fs.log_softmax_backward(dy, y),
                               fs._reference.log_softmax_backward(dy, y), **tolerance(dtype))
