"""Property-based tests of every public function against the NumPy twin
(hypothesis).  FASTSOFTMAX_HYPOTHESIS_EXAMPLES sets the total number of
examples: a few hundred by default, 12000 in CI's reliability job."""

import contextlib
import os
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
