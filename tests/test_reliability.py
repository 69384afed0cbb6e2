"""Reliability: nothing hangs, crashes, leaks or turns to NaN.

* regressions, one per defect found by trying the package as a hostile
  user would (fork, huge thread counts, non-finite weights, no classes,
  ``np.matrix`` outputs, environment variables);
* property tests (hypothesis) of every public function against the NumPy
  twin ``_reference``, over shapes with size-1 and empty dimensions, every
  kind of axis, C/F order and strided views, values up to +-1e30, -inf/NaN/
  +inf entries and masks, 1 or 2 threads, and every SIMD path this machine
  has.  ``FASTSOFTMAX_HYPOTHESIS_EXAMPLES`` sets the
  total number of examples (default 300; the reliability job of
  ``.ci/run`` runs 12000);
* 8 Python threads on shared inputs, memory that stays flat over 10^5
  calls, and (``-m large``, opt-in) arrays of more than 2^31 elements.
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from cases import tolerance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastsoftmax as fs
from fastsoftmax import _reference, _runtime
from fastsoftmax._validation import normalize_axes

# Subprocesses run with the environment of this one, minus fastsoftmax's
# own variables (a test sets the ones it needs).
ENV = {k: v for k, v in os.environ.items() if not k.startswith("FASTSOFTMAX_")}


def run_python(code, *args, env=None, timeout=120, cwd=None):
    """Run ``code`` as a script in a fresh interpreter; fail (not hang) if
    it has not finished after ``timeout`` seconds, killing everything it
    started.  Returns the CompletedProcess."""
    path = os.path.join(cwd, "script.py") if cwd else None
    if path:
        with open(path, "w") as f:
            f.write(textwrap.dedent(code))
        argv = [sys.executable, path, *map(str, args)]
    else:
        argv = [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, **(env or {})}, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and any child it forked
        proc.communicate()
        pytest.fail(f"hung: no result after {timeout} s ({' '.join(map(str, args))})")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# ------------------------------------------------------------------ fork --

FORK_SCRIPT = """
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import fastsoftmax as fs
from fastsoftmax import _runtime


def work(_=None):
    x = np.random.default_rng(1).standard_normal((256, 1024))
    y = fs.softmax(x)                     # large enough for the default threads
    ok = (np.allclose(y.sum(-1), 1.0) and np.array_equal(fs.softmax(x, num_threads=4), y)
          and np.allclose(fs.logsumexp(x, axis=0, num_threads=2), np.log(np.exp(x).sum(0))))
    return (bool(ok), _runtime.threads_for(None, x.size), _runtime.threads_for(4, x.size),
            fs.get_config()["default_num_threads"])


if __name__ == "__main__":
    how = sys.argv[1]
    x = np.random.default_rng(0).standard_normal((512, 1024))
    fs.softmax(x, num_threads=2)          # the parent starts OpenMP's threads
    if how == "os.fork":
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, repr(work()).encode())
            os._exit(0)
        os.close(w)
        result = os.read(r, 1000).decode()
        os.waitpid(pid, 0)
    elif how == "executor":
        with ProcessPoolExecutor(2) as pool:
            result = repr(pool.submit(work).result())
    else:
        with mp.get_context(how).Pool(2) as pool:
            result = repr(pool.apply(work))
    fs.softmax(x, num_threads=2)          # and the parent still runs in parallel
    print(result)
"""


@pytest.mark.parametrize("how", ["os.fork", "fork", "spawn", "forkserver", "executor"])
def test_child_process_works_after_parallel_parent(how, tmp_path):
    """A child process computes correctly and does not hang, whatever the
    start method, after the parent ran a 2-thread call (GNU OpenMP's
    threads do not survive fork(): a forked child runs serially)."""
    import multiprocessing as mp
    if how not in ("os.fork", "executor") and how not in mp.get_all_start_methods():
        pytest.skip(f"no {how!r} start method here")
    if how == "os.fork" and not hasattr(os, "fork"):
        pytest.skip("no os.fork")
    proc = run_python(FORK_SCRIPT, how, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    ok, default_threads, explicit_threads, config_threads = eval(proc.stdout.strip())
    assert ok
    if how in ("os.fork", "fork"):
        assert (default_threads, explicit_threads, config_threads) == (1, 1, 1)


def test_forked_child_is_serial_here():
    """In this process nothing is forked; in a forked child every count is 1."""
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork")
    assert not _runtime.in_forked_child()
    code = """
        import os
        import fastsoftmax as fs
        from fastsoftmax import _runtime
        pid = os.fork()
        if pid == 0:
            ok = (_runtime.in_forked_child() and _runtime.threads_for(2**40, 2**30) == 1
                  and _runtime.threads_for(None, 2**30) == 1 and _runtime.max_threads() == 1)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), _runtime.in_forked_child())
    """
    assert run_python(code, timeout=60).stdout.split() == ["0", "False"]


# ----------------------------------------------------------- num_threads --

HUGE_THREADS = [40000, 100000, 2**31 - 1, 2**31, 2**63, 10**30]


def test_huge_num_threads_is_capped():
    """Huge thread counts neither kill the process (GNU OpenMP exits on
    40000 threads, crashes on 100000) nor leak an OverflowError: they are
    capped at the usable CPUs.  In a subprocess: before the cap this killed
    the interpreter."""
    code = f"""
        import numpy as np
        import fastsoftmax as fs
        from fastsoftmax import _runtime
        x = np.random.default_rng(0).standard_normal((64, 1000))
        y, t = fs.softmax(x, num_threads=1), np.arange(64) % 1000
        for n in {HUGE_THREADS!r}:
            assert _runtime.threads_for(n, x.size) == _runtime.max_threads(), n
            assert np.array_equal(fs.softmax(x, num_threads=n), y)
            assert np.array_equal(fs.log_softmax(x.T, axis=0, num_threads=n),
                                  fs.log_softmax(x.T, axis=0, num_threads=1))
            assert np.array_equal(fs.logsumexp(x, num_threads=n), fs.logsumexp(x, num_threads=1))
            assert np.array_equal(fs.softmax_backward(x, y, num_threads=n),
                                  fs.softmax_backward(x, y, num_threads=1))
            assert fs.cross_entropy(x, t, num_threads=n) == fs.cross_entropy(x, t, num_threads=1)
        print("ok")
    """
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_max_threads_is_the_usable_cpus():
    expected = _runtime.usable_cpus() if fs.get_config()["openmp"] else 1
    assert _runtime.max_threads() <= expected
    assert _runtime.threads_for(10**6, 10**9) == _runtime.max_threads()
    assert _runtime.threads_for(1, 10**9) == 1


@pytest.mark.parametrize("bad", [0, -1, -(2**63), 1.5, 2.0, "2", True, np.float64(2)])
def test_bad_num_threads_is_value_error(bad):
    for call in (lambda: fs.softmax(np.zeros(3), num_threads=bad),
                 lambda: fs.logsumexp(np.zeros(3), num_threads=bad),
                 lambda: fs.softmax_backward(np.zeros(3), np.zeros(3), num_threads=bad),
                 lambda: fs.cross_entropy(np.zeros((2, 3)), np.zeros(2, int), num_threads=bad),
                 lambda: _reference.softmax(np.zeros(3), num_threads=bad)):
        with pytest.raises(ValueError, match="num_threads"):
            call()


def test_omp_thread_limit_is_reported():
    """OMP_THREAD_LIMIT caps every parallel region; get_config says so."""
    code = "import fastsoftmax as fs; print(fs.get_config()['default_num_threads'])"
    assert run_python(code, env={"OMP_THREAD_LIMIT": "1"}).stdout.strip() == "1"


# --------------------------------------------------------------- weights --

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["weight", "sample_weight"])
@pytest.mark.parametrize("cross_entropy", [fs.cross_entropy, _reference.cross_entropy],
                         ids=["compiled", "reference"])
def test_non_finite_weights_are_rejected(bad, which, cross_entropy):
    """A NaN weight would make the whole loss NaN, even for a class that is
    never a target."""
    logits = np.zeros((4, 3))
    target = np.array([0, 2, 2, 0])
    w = np.ones(3) if which == "weight" else np.ones(4)
    w[1] = bad
    with pytest.raises(ValueError, match=rf"{which} must be finite; {which}\[1\]"):
        cross_entropy(logits, target, **{which: w})


def test_float32_weight_overflowing_to_inf_is_rejected():
    with pytest.raises(ValueError, match="weight must be finite"):
        fs.cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 1]),
                         weight=np.array([1.0, 1e39, 1.0]))


# ------------------------------------------------------------ no classes --

# PyTorch 2.13 on logits of shape (5, 0): any class index is out of range
# (IndexError); all targets ignored: mean NaN, sum 0, none zeros, and NaN
# everywhere with label smoothing (label_smoothing / C); probability
# targets: mean NaN (divided by size / C = 0 / 0), sum 0, none zeros.
NO_CLASS_LOSS = {
    ("ignored", 0.0): (np.nan, 0.0, 0.0),
    ("ignored", 0.1): (np.nan, np.nan, np.nan),
    ("probs", 0.0): (np.nan, 0.0, 0.0),
    ("probs", 0.1): (np.nan, 0.0, 0.0),
}


@pytest.mark.parametrize("cross_entropy", [fs.cross_entropy, _reference.cross_entropy],
                         ids=["compiled", "reference"])
@pytest.mark.parametrize("kind, label_smoothing", list(NO_CLASS_LOSS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_classes_as_pytorch(cross_entropy, kind, label_smoothing, dtype):
    logits = np.zeros((5, 0), dtype)
    target = np.full(5, -100) if kind == "ignored" else np.zeros((5, 0), dtype)
    for reduction, expected in zip(("mean", "sum", "none"), NO_CLASS_LOSS[kind, label_smoothing]):
        loss, grad = cross_entropy(logits, target, reduction=reduction,
                                   label_smoothing=label_smoothing, return_grad=True)
        assert grad.shape == (5, 0) and grad.dtype == dtype
        assert np.asarray(loss).dtype == dtype
        expected = np.full(5 if reduction == "none" else (), expected)
        np.testing.assert_array_equal(loss, expected)


@pytest.mark.parametrize("cross_entropy", [fs.cross_entropy, _reference.cross_entropy],
                         ids=["compiled", "reference"])
def test_zero_classes_index_target_is_index_error(cross_entropy):
    with pytest.raises(IndexError, match=r"target 0 at position .0,. .*no classes"):
        cross_entropy(np.zeros((5, 0)), np.zeros(5, int))


def test_zero_classes_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for kind, label_smoothing in NO_CLASS_LOSS:
        t = (torch.full((5,), -100) if kind == "ignored"
             else torch.zeros(5, 0, dtype=torch.float64))
        for reduction in ("mean", "sum", "none"):
            expected = F.cross_entropy(torch.zeros(5, 0, dtype=torch.float64), t,
                                       reduction=reduction, label_smoothing=label_smoothing)
            got = fs.cross_entropy(np.zeros((5, 0)), t.numpy(), reduction=reduction,
                                   label_smoothing=label_smoothing)
            np.testing.assert_array_equal(got, expected.numpy())  # -0.0 == 0.0
    with pytest.raises(IndexError):
        F.cross_entropy(torch.zeros(5, 0), torch.zeros(5, dtype=torch.long))


# ---------------------------------------------------- -inf with target mass --

@pytest.mark.parametrize("n", [2, 40, 300, 5000])
def test_neg_inf_logit_with_target_mass_gives_inf_loss(n):
    """The loss is +inf, as PyTorch, not NaN (a compensated sum of an
    infinite term), for probability targets and for label smoothing."""
    x = np.zeros((2, n))
    x[:, 0] = -np.inf
    q = np.full((2, n), 1.0 / n)
    for loss in (fs.cross_entropy(x, q), fs.cross_entropy(x, np.array([1, 1]), label_smoothing=0.1),
                 _reference.cross_entropy(x, q)):
        assert loss == np.inf


# --------------------------------------------------------------- out= ----

@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_out_is_type_error_naming_out():
    x = np.zeros((2, 3))
    out = np.asmatrix(np.empty((2, 3)))
    for call in (lambda: fs.softmax(x, out=out), lambda: fs.log_softmax(x, out=out),
                 lambda: fs.softmax_backward(x, x, out=out),
                 lambda: fs.log_softmax_backward(x, x, out=out),
                 lambda: _reference.softmax(x, out=out)):
        with pytest.raises(TypeError, match=r"out= .*numpy\.matrix"):
            call()


def test_ndarray_subclasses_that_keep_shapes_are_fine_as_out(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 4))
    out = np.memmap(tmp_path / "out.bin", dtype=np.float64, mode="w+", shape=(3, 4))
    assert fs.softmax(x, out=out) is out
    np.testing.assert_allclose(out, _reference.softmax(x), rtol=1e-12)


# ----------------------------------------------------- environment, docs --

def test_invalid_backend_variable_warns():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import fastsoftmax as fs; print(fs.get_config()['backend'])")
    proc = run_python(code, env={"FASTSOFTMAX_BACKEND": "numpyy"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "compiled"
    assert "RuntimeWarning" in proc.stderr and "FASTSOFTMAX_BACKEND='numpyy'" in proc.stderr


@pytest.mark.parametrize("value, backend", [("compiled", "compiled"), ("NumPy", "numpy")])
def test_valid_backend_variable_is_quiet(value, backend):
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import fastsoftmax as fs; print(fs.get_config()['backend'])")
    proc = run_python(code, env={"FASTSOFTMAX_BACKEND": value})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == backend


def test_log_softmax_of_a_posinf_row_is_all_nan_as_pytorch():
    """The semantics page: PyTorch's convention (SciPy gives -inf beside the +inf)."""
    x = np.array([np.inf, 1.0, -np.inf])
    assert np.isnan(fs.log_softmax(x)).all() and np.isnan(_reference.log_softmax(x)).all()
    torch = pytest.importorskip("torch")
    assert torch.log_softmax(torch.tensor(x), 0).isnan().all()


# ------------------------------------------------------ property tests ----

EXAMPLES = int(os.environ.get("FASTSOFTMAX_HYPOTHESIS_EXAMPLES", "300"))
# the budget is shared by the six functions
# float16 results overflow to inf with NumPy's warning, in both paths
OVERFLOW_WARNING = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
PROPERTY = settings(max_examples=max(1, EXAMPLES // 6), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])

# sizes that cross the kernels' vector tails (8, 16, 17), blocks (256) and
# column tiles; 0 and 1 are the awkward ones
DIMS = st.sampled_from([1, 2, 3, 0, 4, 7, 8, 16, 17, 33, 64, 300])
MAX_SIZE = 40000
DTYPES = [np.float64, np.float32, np.float16, np.int32]
SCALES = [1.0, 30.0, 1e3, 1e30]
LAYOUTS = ["C", "F", "strided", "reversed", "sliced", "transposed"]


@st.composite
def shapes(draw, min_ndim=0, max_ndim=4):
    ndim = draw(st.integers(min_ndim, max_ndim))
    shape = []
    for _ in range(ndim):
        d = draw(DIMS)
        if np.prod(shape + [d]) > MAX_SIZE:
            d = 1
        shape.append(d)
    return tuple(shape)


@st.composite
def axes(draw, ndim):
    """An int (maybe negative), None, or a tuple of distinct axes (maybe empty)."""
    if ndim == 0:
        return draw(st.sampled_from([-1, 0, None]))
    kind = draw(st.sampled_from(["int", "none", "tuple"]))
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    if kind == "none":
        return None
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in picked)


def layout(x, how):
    """The same values in another memory layout (a view where possible)."""
    if x.ndim == 0:
        return x
    if how == "C":
        return np.ascontiguousarray(x)
    if how == "F":
        return np.asfortranarray(x)
    if how == "strided":                 # every other element of a bigger array
        return np.repeat(x, 2, axis=-1)[..., ::2]
    if how == "reversed":               # negative strides along every axis
        flip = (slice(None, None, -1),) * x.ndim
        return np.ascontiguousarray(x[flip])[flip]
    if how == "sliced":                 # a window of a larger array along axis 0
        big = np.concatenate([x[:1], x, x[:1]]) if x.shape[0] else x
        return big[1:-1] if x.shape[0] else big
    if how == "transposed":
        return np.ascontiguousarray(x.T).T
    raise ValueError(how)


@st.composite
def values(draw, shape, dtype):
    """Random values of ``dtype`` and ``shape`` at a random scale, with -inf,
    NaN and +inf entries sprinkled in (or none), maybe a leading block of
    -inf along axis 0, in a random layout."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    max_scale = 1e3 if dtype in (np.float16, np.int32) else 1e30
    scale = draw(st.sampled_from([s for s in SCALES if s <= max_scale]))
    x = np.asarray(rng.standard_normal(shape) * scale)
    if x.size:
        for special in (-np.inf, np.nan, np.inf):
            p = draw(st.sampled_from([0.0, 0.0, 0.02, 0.3]))
            x[rng.random(shape) < p] = special
        if x.ndim and draw(st.booleans()):
            x[: draw(st.integers(1, x.shape[0]))] = -np.inf
    if np.dtype(dtype).kind == "i":
        x = np.nan_to_num(x, nan=0, posinf=60, neginf=-60)
    x = x.astype(dtype)
    return layout(x, draw(st.sampled_from(LAYOUTS)))


@st.composite
def masks(draw, shape):
    kind = draw(st.sampled_from(["none", "none", "random", "broadcast", "slab", "nothing"]))
    if kind == "none" or not shape:
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "random":
        return rng.random(shape) < draw(st.sampled_from([0.1, 0.5, 0.9]))
    if kind == "broadcast":
        return rng.random(shape[-1:]) < 0.6
    if kind == "nothing":
        return np.zeros(shape, bool)
    where = np.ones(shape, bool)      # a fully masked slab along axis 0
    where[: draw(st.integers(0, shape[0]))] = False
    return where


@st.composite
def forward_cases(draw):
    shape = draw(shapes())
    dtype = draw(st.sampled_from(DTYPES))
    x = draw(values(shape, dtype))
    return x, draw(axes(x.ndim)), draw(masks(shape)), draw(st.sampled_from([None, 1, 2]))


def assert_same(actual, expected, rtol, atol, what="", scale=None):
    """Same shape and dtype; NaN and infinities in the same places; the
    finite values close: within ``rtol`` of themselves, or of ``scale``
    (entry by entry) where the result comes from cancelling terms."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    assert actual.dtype == expected.dtype, what
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"NaN places {what}")
    finite = np.isfinite(e)
    np.testing.assert_array_equal(a[~finite], e[~finite], err_msg=f"infinities {what}")
    if scale is not None:
        bound = atol + rtol * np.maximum(np.abs(e), np.broadcast_to(scale, e.shape))
        with np.errstate(invalid="ignore"):
            bad = finite & ~(np.abs(a - e) <= bound)
        assert not bad.any(), (f"{what}: {int(bad.sum())} entries differ, e.g. at "
                               f"{np.argwhere(bad)[0]}: {a[bad][0]!r} != {e[bad][0]!r}")
        return
    np.testing.assert_allclose(a[finite], e[finite], rtol=rtol, atol=atol, err_msg=what)


def _tol(dtype):
    tol = tolerance(dtype)
    return tol["rtol"], tol["atol"]


# every SIMD path this machine has, drawn per example
SIMD = st.sampled_from(_runtime.available_simd() or ("none",))


@contextlib.contextmanager
def simd_path(name):
    """Run the block on SIMD path ``name``, then restore the one in use."""
    if name == "none":
        yield
        return
    before = _runtime.current_simd()
    _runtime.set_simd(name)
    try:
        yield
    finally:
        _runtime.set_simd(before)


FORWARD = {"softmax": fs.softmax, "log_softmax": fs.log_softmax, "logsumexp": fs.logsumexp}


@pytest.mark.parametrize("name", FORWARD)
@OVERFLOW_WARNING
@PROPERTY
@given(case=forward_cases(), simd=SIMD)
def test_forward_property(name, case, simd):
    x, axis, where, num_threads = case
    expected = getattr(_reference, name)(x, axis, where=where)
    with simd_path(simd):
        actual = FORWARD[name](x, axis, where=where, num_threads=num_threads)
    assert_same(actual, expected, *_tol(np.asarray(expected).dtype))


@pytest.mark.parametrize("log", [False, True], ids=["softmax_backward", "log_softmax_backward"])
@OVERFLOW_WARNING
@PROPERTY
@given(case=forward_cases(), data=st.data(), simd=SIMD)
def test_backward_property(log, case, data, simd):
    """At the reference's forward output (NaN rows included), for an upstream
    gradient at any scale, with NaN entries or without."""
    x, axis, where, num_threads = case
    forward = _reference.log_softmax if log else _reference.softmax
    y = forward(x, axis, where=where)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dy_scale = data.draw(st.sampled_from(SCALES[:3] if y.dtype == np.float16 else SCALES))
    dy = np.asarray(rng.standard_normal(y.shape) * dy_scale).astype(y.dtype)
    if dy.size and data.draw(st.booleans()):
        dy[rng.random(y.shape) < 0.05] = np.nan
    dy = layout(dy, data.draw(st.sampled_from(LAYOUTS)))
    fast = fs.log_softmax_backward if log else fs.softmax_backward
    ref = _reference.log_softmax_backward if log else _reference.softmax_backward
    expected = ref(dy, y, axis, where=where)
    with simd_path(simd):
        actual = fast(dy, y, axis, where=where, num_threads=num_threads)
    rtol, atol = _tol(expected.dtype)
    assert_same(actual, expected, rtol, atol, scale=_backward_terms(dy, y, axis, log))


def _backward_terms(dy, y, axis, log):
    """The size of the terms each entry of dx is computed from.  dx cancels
    (dy_i - sum(dy * y)), so rounding errors, the reference's float32 sums
    included, are relative to these, not to dx."""
    axes = normalize_axes(axis, y.ndim)
    with np.errstate(invalid="ignore", over="ignore"):
        dy = np.abs(np.nan_to_num(np.asarray(dy, np.float64), nan=0, posinf=0, neginf=0))
        y = np.nan_to_num(np.asarray(y, np.float64), nan=0)
        if log:
            return dy + np.exp(y) * np.sum(dy, axis=axes, keepdims=True)
        return dy + np.abs(y) * (dy + np.sum(dy * np.abs(y), axis=axes, keepdims=True))


@st.composite
def cross_entropy_cases(draw):
    shape = draw(shapes(min_ndim=1, max_ndim=3))
    dtype = draw(st.sampled_from(DTYPES))
    logits = draw(values(shape, dtype))
    axis = draw(st.integers(-logits.ndim, logits.ndim - 1))
    n = shape[axis]
    sample_shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ignore_index = draw(st.sampled_from([-100, 0, 1]))
    if draw(st.booleans()):                            # class indices
        target = rng.integers(0, max(n, 1), size=sample_shape)
        target[(rng.random(sample_shape) < 0.2) | (n == 0)] = ignore_index
    else:                                              # class probabilities
        q = rng.random(shape)
        target = q / np.maximum(q.sum(axis=axis, keepdims=True), 1e-300)
        target = target.astype(dtype if np.dtype(dtype).kind == "f" else np.float64)
    weight = None
    if draw(st.booleans()):
        weight = rng.random(n) * 2
        weight[rng.random(n) < 0.2] = 0
    sample_weight = rng.random(sample_shape) if draw(st.booleans()) else None
    options = dict(axis=axis, weight=weight, sample_weight=sample_weight,
                   ignore_index=ignore_index,
                   reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                   label_smoothing=draw(st.sampled_from([0.0, 0.1, 1.0])), return_grad=True)
    return logits, target, options, draw(st.sampled_from([None, 1, 2]))


@OVERFLOW_WARNING
@PROPERTY
@given(case=cross_entropy_cases(), simd=SIMD)
def test_cross_entropy_property(case, simd):
    logits, target, options, num_threads = case
    loss_ref, grad_ref = _reference.cross_entropy(logits, target, **options)
    with simd_path(simd):
        loss, grad = fs.cross_entropy(logits, target, num_threads=num_threads, **options)
    rtol, atol = _tol(grad_ref.dtype)
    # every sample's loss is a sum of non-negative terms: no cancellation
    assert_same(loss, loss_ref, rtol, atol, "loss")
    finite = np.abs(grad_ref[np.isfinite(grad_ref)].astype(np.float64))
    assert_same(grad, grad_ref, rtol, atol * max(1.0, finite.max(initial=0.0)), "grad")


# ---------------------------------------------------------------- threads --

def test_eight_python_threads_on_shared_inputs():
    """Eight Python threads call every function on the same read-only
    inputs, serially and with OpenMP threads of their own, at once: every
    result is bit-identical to the one computed alone."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 1000)).astype(np.float32)
    x.flags.writeable = False
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dy.flags.writeable = False
    target = rng.integers(0, 1000, 64)
    where = rng.random(x.shape) < 0.8
    calls = {
        "softmax": lambda n: fs.softmax(x, num_threads=n),
        "log_softmax axis 0": lambda n: fs.log_softmax(x, axis=0, num_threads=n),
        "logsumexp masked": lambda n: fs.logsumexp(x, where=where, num_threads=n),
        "softmax_backward": lambda n: fs.softmax_backward(dy, fs.softmax(x), num_threads=n),
        "log_softmax_backward": lambda n: fs.log_softmax_backward(dy, x, num_threads=n),
        "cross_entropy": lambda n: fs.cross_entropy(x, target, return_grad=True,
                                                    num_threads=n),
    }
    expected = {name: call(1) for name, call in calls.items()}
    barrier = threading.Barrier(8)

    def same(a, b):
        if isinstance(a, tuple):
            return all(same(u, v) for u, v in zip(a, b))
        return np.array_equal(a, b)

    def worker(i):
        barrier.wait()
        for k in range(30):
            for name, call in calls.items():
                if not same(call(1 + (i + k) % 2), expected[name]):
                    return f"thread {i}, round {k}: {name} differs"
        return None

    with ThreadPoolExecutor(8) as pool:
        failures = [f for f in pool.map(worker, range(8)) if f]
    assert not failures, failures
    assert not x.flags.writeable and np.isfinite(x).all()


# ----------------------------------------------------------------- memory --

def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer holds freed memory in quarantine")
def test_memory_is_flat_over_many_calls():
    """10^5 small calls of every function (with masks, out=, weights,
    gradients, and rejected arguments) leave the resident size flat: a leak
    of 40 bytes a call would show."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 10))
    y = fs.softmax(x)
    out = np.empty_like(x)
    where = rng.random(x.shape) < 0.7
    target = np.array([1, 2, 3, -100])
    weight = rng.random(10)
    calls = [
        lambda: fs.softmax(x),
        lambda: fs.log_softmax(x, axis=0, out=out),
        lambda: fs.logsumexp(x, where=where),
        lambda: fs.softmax_backward(x, y, where=where),
        lambda: fs.log_softmax_backward(x, y, out=out),
        lambda: fs.cross_entropy(x, target, weight=weight, return_grad=True),
        lambda: fs.cross_entropy(x, y, label_smoothing=0.1),
        lambda: fs.softmax(x.T, axis=None),
    ]

    def rejected():
        try:
            fs.softmax(x, out=out[:, :3])
        except ValueError:
            pass
    calls.append(rejected)

    def run(n):
        for i in range(n):
            calls[i % len(calls)]()

    run(20000)                           # warm the allocators and caches
    before = _rss_bytes()
    run(100000)
    grown = _rss_bytes() - before
    assert grown < 4 << 20, f"resident size grew by {grown / 2**20:.1f} MiB over 10^5 calls"


# ------------------------------------------------------------ > 2^31 -----

def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


BIG = 2**31 + 4099                      # elements: past int32, and an odd tail


@pytest.mark.large
@pytest.mark.parametrize("case", ["rows", "one_row", "columns"])
def test_more_than_2_31_elements(case):
    """Offsets past 2^31 elements: many rows, one row longer than 2^31, and
    a column reduction over 2^31 elements.  float32, in place, about 9 GB;
    opt-in: ``python -m pytest -m large``."""
    if _available_bytes() < 4 * BIG * 1.3:
        pytest.skip("needs about 11 GB of available memory")
    if case == "rows":                  # (rows, 1000): row offsets past int32
        n = 1000
        x = np.empty((BIG // n + 1, n), np.float32)
        x[:] = np.arange(n, dtype=np.float32) % 13
        fs.softmax(x, out=x, num_threads=2)
        expected = _reference.softmax(np.arange(n, dtype=np.float32) % 13)
        for r in (0, x.shape[0] // 2, x.shape[0] - 1):
            np.testing.assert_allclose(x[r], expected, rtol=2e-5, atol=1e-7)
    elif case == "one_row":             # one row of more than 2^31 entries
        x = np.zeros(BIG, np.float32)
        x[-1] = 10.0                     # the largest entry is the very last one
        lse = float(fs.logsumexp(x, num_threads=2))
        expected = np.log(np.float64(BIG - 1) + np.exp(10.0))
        assert abs(lse - expected) < 1e-5 * expected
        fs.softmax(x, out=x, num_threads=2)
        np.testing.assert_allclose(x[[0, BIG // 2, -2, -1]],
                                   np.exp(np.array([0, 0, 0, 10.0]) - expected), rtol=1e-4)
    else:                               # axis 0 of (rows, 64): the column kernels
        inner = 64
        x = np.empty((BIG // inner + 1, inner), np.float32)
        x[:] = np.arange(inner, dtype=np.float32) / inner
        x[-1] = 50.0
        lse = fs.logsumexp(x, axis=0, num_threads=2)
        np.testing.assert_allclose(lse, np.full(inner, 50.0), rtol=1e-6)
        fs.softmax(x, axis=0, out=x, num_threads=2)
        np.testing.assert_allclose(x[-1], 1.0, rtol=1e-6)
        assert np.isfinite(x[x.shape[0] // 2]).all()
