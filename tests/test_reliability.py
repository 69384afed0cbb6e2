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

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _reference, _runtime

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


# --------------------------------------------------------------- Ctrl-C ----

INTERRUPT_SCRIPT = """
import os, signal, sys, threading, time
import numpy as np
import fastsoftmax as fs

# a call of seconds: 2**28 float32 along axis 0 on the portable path and
# one thread (column tiles, two exps per element); values that exp works on
x = np.empty((1 << 14, 1 << 14), np.float32)
x[:] = np.random.default_rng(0).standard_normal(1 << 14, dtype=np.float32) * 4
y = np.empty_like(x)
y.fill(0.0)   # its page faults now, not in the timed call
sent = []

def interrupt():
    time.sleep(0.2)
    sent.append(time.perf_counter())
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt).start()
start = time.perf_counter()
try:
    fs.{name}(x, axis=0, {out}num_threads=1)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - sent[0], time.perf_counter() - start)
else:
    print("finished", time.perf_counter() - start)
"""


@pytest.mark.parametrize("name, out", [("softmax", "out=y, "), ("logsumexp", "")])
def test_ctrl_c_interrupts_a_long_call_promptly(name, out):
    # Ctrl-C was honoured only when a call ended; the loops now check for a
    # pending signal between chunks of 64 MiB
    res = run_python(INTERRUPT_SCRIPT.format(name=name, out=out),
                     env={"FASTSOFTMAX_SIMD": "scalar"}, timeout=120)
    assert res.returncode == 0, res.stderr
    word, *times = res.stdout.split()
    assert word == "interrupted", res.stdout
    latency, _elapsed = map(float, times)
    assert latency < 0.5, res.stdout   # from the signal to the exception


def _unaligned(a):
    """A copy of ``a`` whose data starts one byte past an element boundary,
    as ``np.frombuffer`` at an odd offset or an unpickled buffer gives."""
    buf = np.empty(a.nbytes + 1, dtype=np.uint8)
    u = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_arrays_give_the_aligned_results(dtype, simd):
    # the kernels read through typed pointers: unaligned inputs are copied,
    # an unaligned out= is written through a buffer of the kernels' own
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 10)).astype(dtype)
    t = rng.integers(0, 10, 40)
    w = rng.random(10).astype(dtype)
    ux, ut, uw = _unaligned(x), _unaligned(t), _unaligned(w)
    for func in (fs.softmax, fs.log_softmax, fs.logsumexp):
        np.testing.assert_array_equal(func(ux), func(x))
    y = fs.softmax(x)
    np.testing.assert_array_equal(fs.softmax_backward(_unaligned(y), ux), fs.softmax_backward(y, x))
    out = _unaligned(np.zeros_like(x))
    assert fs.softmax(ux, out=out) is out
    np.testing.assert_array_equal(out, y)
    want = fs.cross_entropy(x, t, weight=w, return_grad=True)
    got = fs.cross_entropy(ux, ut, weight=uw, return_grad=True, out=_unaligned(np.zeros_like(x)))
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(fs.cross_entropy(ux, ut, reduction="none"),
                                  fs.cross_entropy(x, t, reduction="none"))


@pytest.mark.parametrize("num_threads", [None, 1, 2, np.int64(2), "bad"])
def test_large_unaligned_arrays_copied_in_parallel(num_threads):
    # past 2 MiB a contiguous unaligned input is copied in 1 MiB blocks over
    # the call's threads (a size that is no multiple of the block, and a
    # num_threads as the call gives it, checked only afterwards)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1237, 1003)).astype(np.float32)
    ux = _unaligned(x)
    if num_threads == "bad":
        with pytest.raises(ValueError, match="num_threads"):
            fs.softmax(ux, num_threads=num_threads)
        return
    np.testing.assert_array_equal(fs.softmax(ux, num_threads=num_threads), fs.softmax(x))
    np.testing.assert_array_equal(fs.logsumexp(ux, num_threads=num_threads), fs.logsumexp(x))
    t = rng.integers(0, 1003, 1237)
    want = fs.cross_entropy(x, t, return_grad=True)
    got = fs.cross_entropy(ux, t, return_grad=True, num_threads=num_threads)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    # not contiguous: NumPy's copy, in C order
    uf = _unaligned(np.asfortranarray(x))
    np.testing.assert_array_equal(fs.softmax(uf, axis=0, num_threads=num_threads),
                                  fs.softmax(x, axis=0))


@pytest.mark.skipif(fs.get_config()["backend"] != "compiled", reason="needs the compiled extension")
@pytest.mark.parametrize("n", [0, 1, (1 << 20) - 1, 1 << 20, (3 << 20) + 5])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_copy_bytes(n, threads):
    from fastsoftmax import _loops

    src = np.random.default_rng(n).integers(0, 256, n + 3, dtype=np.uint8)[3:]
    dst = np.zeros(n + 1, np.uint8)[1:]
    _loops.copy_bytes(src, dst, threads)
    np.testing.assert_array_equal(dst, src)
    with pytest.raises(ValueError):
        _loops.copy_bytes(src, np.zeros(n + 1, np.uint8), threads)
