"""The fast path of small calls gives exactly what the general path gives.

C-contiguous float32/float64 ndarrays along the last axis, without
``where=``, ``out=`` or ``dtype=`` (and, for cross_entropy, int64 class
indices without weights) go straight to the row loops
(``_validation.fast_rows``); below ``SERIAL_THRESHOLD`` elements on one
thread, the loop layer's small entries (``softmax_small``, ...) pick and
run them from the call's own arguments.  Every call here is made twice, once as it
comes and once with ``_validation.FAST_PATH`` switched off, and both give
the same results to the bit, or the same exception with the same message:
the generator's cases (most of which are not for the fast path, and must
not be taken by it), and cases made for it.
"""

import numpy as np
import pytest
from cases import FORWARD, VALUES, cases, make_values

import fastsoftmax as fs
from fastsoftmax import _cross_entropy, _forward, _runtime, _validation

pytestmark = pytest.mark.skipif(not _validation.FAST_PATH,
                                reason="the fast path runs only with the compiled backend")


def _call(f, args, kwargs, fast, monkeypatch):
    """``f(*args, **kwargs)`` with the fast path on or off: its result, or
    the type and message of the exception it raised."""
    monkeypatch.setattr(_validation, "FAST_PATH", fast)
    try:
        return f(*args, **kwargs)
    except Exception as exc:  # every exception is compared
        return type(exc), str(exc)


def _assert_identical(fast, general, what):
    """Same types, shapes and dtypes, and the same bytes."""
    if isinstance(general, tuple) and isinstance(general[0], type):
        assert fast == general, what                      # the same exception
        return
    fast = fast if isinstance(fast, tuple) else (fast,)
    general = general if isinstance(general, tuple) else (general,)
    assert len(fast) == len(general), what
    for a, b in zip(fast, general):
        assert type(a) is type(b), what
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, what
        assert a.tobytes() == b.tobytes(), what


def _both(f, args, kwargs, monkeypatch):
    # kwargs copied: a call must not see what the other did to them
    fast = _call(f, args, dict(kwargs), True, monkeypatch)
    general = _call(f, args, dict(kwargs), False, monkeypatch)
    return fast, general


@pytest.mark.parametrize("name", FORWARD + ("cross_entropy",))
def test_generator_cases_agree(name, monkeypatch):
    f = getattr(fs, name)
    for case in cases(name):
        fast, general = _both(f, case.args, case.kwargs, monkeypatch)
        _assert_identical(fast, general, case.id)


def _fast_inputs(rng):
    """(x, axis) pairs the fast path takes: every value kind, 1-D to 3-D,
    axis -1 and its positive spelling, read-only, and past the serial
    threshold."""
    shapes = [(1,), (10,), (32, 10), (4, 1), (3, 300), (2, 3, 17), (64, 1000)]
    for i, shape in enumerate(shapes):
        for dtype in (np.float32, np.float64):
            kind = VALUES[i % len(VALUES)]
            x = make_values(shape, kind, rng).astype(dtype)
            yield x, -1
            yield make_values(shape, "normal", rng).astype(dtype), len(shape) - 1
    x = rng.standard_normal((5, 7)).astype(np.float32)
    x.flags.writeable = False
    yield x, -1
    # C-contiguous as NumPy has it: the stride of a length-1 axis does not count
    yield np.lib.stride_tricks.as_strided(x[0], (1, 7), (12, 4)), -1
    yield np.lib.stride_tricks.as_strided(x[:, :1], (5, 1, 1), (28, 3, 5)), 2
    # on both sides of the small entries' size limit
    for size in (_runtime.SERIAL_THRESHOLD - 8, _runtime.SERIAL_THRESHOLD):
        yield rng.standard_normal((size // 8, 8)), -1


@pytest.mark.parametrize("name", FORWARD)
def test_forward_fast_cases_agree(name, simd, num_threads, rng, monkeypatch):
    f = getattr(fs, name)
    for x, axis in _fast_inputs(rng):
        for kwargs in ({}, {"num_threads": num_threads}, {"num_threads": 10**30}):
            fast, general = _both(f, (x, axis), kwargs, monkeypatch)
            _assert_identical(fast, general, f"{name} {x.shape} {x.dtype} axis={axis}")


def _index_cases(rng):
    """(logits, target, kwargs) the fast path takes, every reduction and
    both kinds of ignore_index outside the classes."""
    for shape in [(10,), (32, 10), (9, 7), (2, 3, 17), (128, 128), (64, 1000)]:
        for dtype in (np.float32, np.float64):
            logits = rng.standard_normal(shape).astype(dtype) * 3
            target = rng.integers(0, shape[-1], shape[:-1])
            ignored = np.where(rng.random(shape[:-1]) < 0.3, -100, target)
            for reduction in ("mean", "sum", "none"):
                for return_grad in (False, True):
                    kwargs = {"reduction": reduction, "return_grad": return_grad}
                    yield logits, target, kwargs
                    yield logits, ignored, dict(kwargs, label_smoothing=0.2)
            # every sample ignored: nothing to divide by
            yield logits, np.full(shape[:-1], shape[-1] + 3), {"ignore_index": shape[-1] + 3,
                                                               "return_grad": True}
    # read-only arrays; smoothing as the ints 0 and 1; ignore_index far out
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    target = rng.integers(0, 5, 6)
    logits.flags.writeable = target.flags.writeable = False
    for smoothing in (0, 1):
        yield logits, target, {"label_smoothing": smoothing, "return_grad": True}
    yield logits, np.where(target > 2, -(2**63), target), {"ignore_index": -(2**63),
                                                          "reduction": "none"}
    yield logits, target, {"ignore_index": 2**70, "return_grad": True}
    # on both sides of the small entries' size limit
    for n_rows in (_runtime.SERIAL_THRESHOLD // 8 - 1, _runtime.SERIAL_THRESHOLD // 8):
        yield (rng.standard_normal((n_rows, 8)), rng.integers(0, 8, n_rows),
               {"return_grad": True})
    logits = rng.standard_normal((4, 5))
    logits[1, 2] = np.nan
    logits[2] = -np.inf
    logits[3, 0] = np.inf
    yield logits, np.array([0, 1, 2, 3]), {"return_grad": True, "label_smoothing": 1}


def test_cross_entropy_fast_cases_agree(simd, num_threads, rng, monkeypatch):
    for logits, target, kwargs in _index_cases(rng):
        for extra in ({}, {"num_threads": num_threads}):
            fast, general = _both(fs.cross_entropy, (logits, target), dict(kwargs, **extra),
                                  monkeypatch)
            _assert_identical(fast, general, f"{logits.shape} {logits.dtype} {kwargs}")


def test_cross_entropy_into_out_agrees(simd, num_threads, rng, monkeypatch):
    # out= a fresh array, or the logits themselves: the fast path writes the
    # same gradient bytes as the general path, into out, and returns out
    for logits, target, kwargs in _index_cases(rng):
        if not kwargs.get("return_grad") or logits.ndim == 0 or not logits.flags.writeable:
            continue
        kwargs = dict(kwargs, num_threads=num_threads)
        for in_place in (False, True):
            results = []
            for fast in (True, False):
                x = logits.copy()
                out = x if in_place else np.empty_like(x)
                result = _call(fs.cross_entropy, (x, target), dict(kwargs, out=out), fast,
                               monkeypatch)
                if not isinstance(result[0], type):
                    assert result[1] is out
                results.append(result)
            _assert_identical(*results, f"{logits.shape} {logits.dtype} {kwargs} {in_place}")


def test_streamed_output_agrees(monkeypatch, output_pages):
    """Outputs past STREAM_BYTES are written with non-temporal stores (or,
    fresh, with ordinary ones) on both paths."""
    x = np.random.default_rng(0).standard_normal(
        (4, _runtime.STREAM_BYTES // 4 // 4 + 64)).astype(np.float32)
    target = np.arange(4)
    for f, args, kwargs in [(fs.softmax, (x,), {}), (fs.log_softmax, (x,), {}),
                            (fs.cross_entropy, (x, target), {"return_grad": True})]:
        fast, general = _both(f, args, kwargs, monkeypatch)
        _assert_identical(fast, general, f.__name__)


BAD_CROSS_ENTROPY = [
    ({"target": np.array([0, 10])}, IndexError),
    ({"target": np.array([0, -1])}, IndexError),
    ({"target": np.array([0, -100]), "ignore_index": -1}, IndexError),
    ({"num_threads": 0}, ValueError),
    ({"num_threads": -2}, ValueError),
    ({"num_threads": 1.5}, ValueError),
    ({"reduction": "avg"}, ValueError),
    ({"label_smoothing": 1.5}, ValueError),
    ({"label_smoothing": float("nan")}, ValueError),
    ({"label_smoothing": True}, TypeError),
    ({"ignore_index": 1.0}, TypeError),
    ({"normalizer": 2.0, "reduction": "sum"}, ValueError),
    ({"target": np.array([0, 1, 2])}, ValueError),
    ({"target": np.array([[0, 1]])}, ValueError),
    ({"axis": 2}, np.exceptions.AxisError),
    ({"axis": 2**70}, np.exceptions.AxisError),
    ({"label_smoothing": 2}, ValueError),
    ({"target": np.array([0, 10**10])}, IndexError),
]


@pytest.mark.parametrize("change, error", BAD_CROSS_ENTROPY,
                         ids=[str(c) for c, _ in BAD_CROSS_ENTROPY])
def test_bad_cross_entropy_calls_raise_alike(change, error, monkeypatch):
    kwargs = {"logits": np.zeros((2, 10), np.float32), "target": np.array([0, 1])}
    kwargs.update(change)
    fast, general = _both(fs.cross_entropy, (), kwargs, monkeypatch)
    assert general[0] is error
    _assert_identical(fast, general, str(change))


BAD_FORWARD = [
    ({"num_threads": 0}, ValueError),
    ({"num_threads": True}, ValueError),
    ({"num_threads": "2"}, ValueError),
    ({"axis": 2}, np.exceptions.AxisError),
    ({"axis": 1.0}, TypeError),
    ({"axis": True}, TypeError),
    ({"axis": 2**70}, np.exceptions.AxisError),
    ({"axis": -(2**70)}, np.exceptions.AxisError),
    ({"num_threads": -(2**70)}, ValueError),
]


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("change, error", BAD_FORWARD, ids=[str(c) for c, _ in BAD_FORWARD])
def test_bad_forward_calls_raise_alike(name, change, error, monkeypatch):
    kwargs = dict({"x": np.zeros((2, 10), np.float32)}, **change)
    fast, general = _both(getattr(fs, name), (), kwargs, monkeypatch)
    assert general[0] is error
    _assert_identical(fast, general, str(change))


class _Taken(Exception):
    pass


def _general_path_raises(monkeypatch):
    """Make the general path's checks raise _Taken."""
    def refuse(*args, **kwargs):
        raise _Taken

    for module, name in [(_forward, "check_forward"), (_forward, "check_logsumexp"),
                         (_cross_entropy, "check_cross_entropy")]:
        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_common_calls_take_the_fast_path(dtype, monkeypatch):
    _general_path_raises(monkeypatch)
    x = np.ones((32, 10), dtype)
    for name in FORWARD:
        getattr(fs, name)(x)
        getattr(fs, name)(x[0], axis=0, num_threads=2)
    fs.cross_entropy(x, np.arange(32) % 10, return_grad=True)
    fs.cross_entropy(x, np.arange(32) % 10, return_grad=True, out=np.empty_like(x))
    y = x.copy()
    fs.cross_entropy(y, np.arange(32) % 10, return_grad=True, out=y)
    fs.cross_entropy(x[0], np.array(3), reduction="none", label_smoothing=0.1)


class _Subclass(np.ndarray):
    pass


def _unaligned(shape, dtype):
    """An array of ``dtype`` one byte off its alignment."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    return np.frombuffer(np.ones(size * dtype.itemsize + 1, np.uint8), dtype, size,
                         offset=1).reshape(shape)


OTHER_CALLS = {
    "float16": (np.ones((3, 4), np.float16), {}),
    "int": (np.ones((3, 4), np.int64), {}),
    "bool": (np.ones((3, 4), bool), {}),
    "0-d": (np.array(1.0), {}),
    "empty": (np.ones((0, 4)), {}),
    "empty rows": (np.ones((3, 0)), {}),
    "F-order": (np.asfortranarray(np.ones((3, 4))), {}),
    "strided": (np.ones((3, 8))[:, ::2], {}),
    "byteswapped": (np.ones((3, 4), ">f8"), {}),
    "byteswapped float32": (np.ones((3, 4), ">f4"), {}),
    "metadata dtype": (np.ones((3, 4), np.dtype(np.float32, metadata={"unit": "m"})), {}),
    "unaligned": (_unaligned((3, 4), np.float64), {}),
    "unaligned float32": (_unaligned((3, 4), np.float32), {}),
    "subclass": (np.ones((3, 4), np.float32).view(_Subclass), {}),
    "longdouble": (np.ones((3, 4), np.longdouble), {}),
    "complex": (np.ones((3, 4), np.complex64), {}),
    "datetime": (np.zeros((3, 4), "datetime64[s]"), {}),
    "object": (np.ones((3, 4), object), {}),
    "list": ([[1.0, 2.0], [3.0, 4.0]], {}),
    "matrix": (lambda: np.asmatrix(np.ones((3, 4))), {}),
    "masked": (np.ma.masked_array(np.ones((3, 4)), mask=np.eye(3, 4, dtype=bool)), {}),
    "axis 0": (np.ones((3, 4)), {"axis": 0}),
    "axis numpy int": (np.ones((3, 4)), {"axis": np.int64(-1)}),
    "axis None": (np.ones((3, 4)), {"axis": None}),
    "num_threads numpy int": (np.ones((3, 4)), {"num_threads": np.int64(1)}),
    "num_threads bool": (np.ones((3, 4)), {"num_threads": True}),
    "axis huge": (np.ones((3, 4)), {"axis": 2**70}),
    "where": (np.ones((3, 4)), {"where": np.ones(4, bool)}),
    "dtype": (np.ones((3, 4)), {"dtype": np.float32}),
}


# np.matrix is made in the test, where its warning is expected
_MATRIX_WARNING = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@_MATRIX_WARNING
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("what", list(OTHER_CALLS))
def test_other_calls_take_the_general_path(name, what, monkeypatch):
    _general_path_raises(monkeypatch)
    x, kwargs = OTHER_CALLS[what]
    x = x() if callable(x) else x
    with pytest.raises(_Taken):
        getattr(fs, name)(x, **kwargs)


OTHER_CROSS_ENTROPY = {
    "int32 target": {"target": np.zeros(3, np.int32)},
    "uint8 target": {"target": np.zeros(3, np.uint8)},
    "list target": {"target": [0, 1, 2]},
    "strided target": {"target": np.zeros(6, np.int64)[::2]},
    "unaligned target": {"target": _unaligned((3,), np.int64)},
    "subclass target": {"target": np.zeros(3, np.int64).view(_Subclass)},
    "byteswapped target": {"target": np.zeros(3, ">i8")},
    "F-order target": {"logits": np.ones((2, 3, 4)), "target": np.zeros((3, 2), np.int64).T},
    "logits subclass": {"logits": np.ones((3, 4)).view(_Subclass)},
    "unaligned logits": {"logits": _unaligned((3, 4), np.float64)},
    "ignore_index huge": {"ignore_index": 2**70},
    "ignore_index bool": {"ignore_index": True},
    "smoothing bool": {"label_smoothing": False},
    "reduction bytes": {"reduction": b"mean"},
    "num_threads numpy int": {"num_threads": np.int64(1)},
    "probabilities": {"target": np.full((3, 4), 0.25)},
    "ignore_index a class": {"ignore_index": 2},
    "weight": {"weight": np.ones(4)},
    "sample_weight": {"sample_weight": np.ones(3)},
    "normalizer": {"normalizer": 3.0},
    "out F-order": {"return_grad": True, "out": np.empty((3, 4), order="F")},
    "out unaligned": {"return_grad": True, "out": _unaligned((3, 4), np.float64)},
    "out float32": {"return_grad": True, "out": np.empty((3, 4), np.float32)},
    "out without the gradient": {"out": np.empty((3, 4))},
    "out in part the logits": {"logits": (_buf := np.ones(13))[:12].reshape(3, 4),
                               "out": _buf[1:].reshape(3, 4), "return_grad": True},
    "return_grad 1": {"return_grad": 1},
    "smoothing numpy float": {"label_smoothing": np.float64(0.1)},
    "class axis 0": {"logits": np.ones((4, 3)), "axis": 0},
    "float16": {"logits": np.ones((3, 4), np.float16)},
    "matrix": {"logits": lambda: np.asmatrix(np.ones((3, 4)))},
    "no samples": {"logits": np.ones((0, 4)), "target": np.zeros(0, np.int64)},
}


@_MATRIX_WARNING
@pytest.mark.parametrize("what", list(OTHER_CROSS_ENTROPY))
def test_other_cross_entropy_calls_take_the_general_path(what, monkeypatch):
    _general_path_raises(monkeypatch)
    kwargs = {"logits": np.ones((3, 4)), "target": np.zeros(3, np.int64)}
    kwargs.update({k: v() if callable(v) else v for k, v in OTHER_CROSS_ENTROPY[what].items()})
    with pytest.raises(_Taken):
        fs.cross_entropy(**kwargs)


def _readonly(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("entry, out_shape, extra", [("softmax_rows", (2, 5), (False, 1, False)),
                                                     ("logsumexp_rows", (2,), (1,))])
def test_thin_entries_refuse_wrong_buffers(entry, out_shape, extra):
    """The loop layer checks the buffers' format, size and writeability, so
    that a wrong call is an error, never a read or write past an array's end."""
    func = getattr(_runtime.kernels, entry)
    x = np.ones((2, 5), np.float32)
    func(x, np.empty(out_shape, np.float32), 2, 5, *extra)
    for bad_x, bad_out in [(x[:1], np.empty(out_shape, np.float32)),
                           (x, np.empty(out_shape)),
                           (x.astype(np.float16), np.empty(out_shape, np.float16)),
                           (x.astype(np.int32), np.empty(out_shape, np.int32)),
                           (x, np.empty((1,), np.float32)),
                           (x[:, ::2], np.empty(out_shape, np.float32)),
                           (x, _readonly(np.empty(out_shape, np.float32)))]:
        with pytest.raises((ValueError, BufferError)):
            func(bad_x, bad_out, 2, 5, *extra)


def test_cross_entropy_entry_refuses_wrong_buffers():
    ce = _runtime.kernels.cross_entropy_index_rows
    logits, target = np.zeros((2, 5)), np.array([0, 1])
    assert ce(logits, target, 2, 5, -100, 0.0, True, None, None, 1, False) == \
        pytest.approx((2 * np.log(5), 2))
    assert ce(logits, np.array([0, 7]), 2, 5, -100, 0.0, True, None, None, 1, False)[1] == -1
    for args in [(logits, target.astype(np.int32)), (logits[:1], target),
                 (logits.astype(np.float16), target)]:
        with pytest.raises((ValueError, BufferError)):
            ce(*args, 2, 5, -100, 0.0, True, None, None, 1, False)
    for loss, grad in [(np.zeros(2, np.float32), None), (np.zeros(1), None),
                       (None, np.zeros((2, 5), np.float32)), (None, np.zeros((2, 4)))]:
        with pytest.raises((ValueError, BufferError)):
            ce(logits, target, 2, 5, -100, 0.0, True, loss, grad, 1, False)


def _small_entry_calls(x, num_threads):
    """Each small entry of the loop layer called as its public function calls it."""
    k, threshold = _runtime.kernels, _runtime.SERIAL_THRESHOLD
    target = np.zeros(x.shape[:-1], np.int64)
    return {
        "softmax": lambda: k.softmax_small(x, -1, num_threads, False, threshold),
        "log_softmax": lambda: k.softmax_small(x, -1, num_threads, True, threshold),
        "logsumexp": lambda: k.logsumexp_small(x, -1, num_threads, threshold),
        "cross_entropy": lambda: k.cross_entropy_small(x, target, -1, -100, "mean", 0.0, True,
                                                       num_threads, threshold),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 16, _runtime.SERIAL_THRESHOLD - 8,
                                  _runtime.SERIAL_THRESHOLD, 4 * _runtime.SERIAL_THRESHOLD])
@pytest.mark.parametrize("num_threads", [None, 1, 2, 10**30])
def test_small_entries_take_only_one_thread_calls(dtype, size, num_threads):
    """The small entries run on the calling thread, so they take a call only
    where the thread policy (``_runtime.threads_for``) gives it one thread
    whatever the machine, OMP_NUM_THREADS or threadpoolctl say: below
    SERIAL_THRESHOLD elements with num_threads None or 1.  And only
    outputs too small to be streamed."""
    x = np.ones((size // 8, 8) if size >= 8 else (size,), dtype)
    assert x.size == size
    taken = x.size < _runtime.SERIAL_THRESHOLD and num_threads in (None, 1)
    if taken:
        assert _runtime.threads_for(num_threads, x.size) == 1
        assert x.nbytes <= _runtime.STREAM_BYTES
    for name, call in _small_entry_calls(x, num_threads).items():
        assert (call() is not None) == taken, name


def test_small_calls_take_the_small_entries(monkeypatch):
    """The common calls below SERIAL_THRESHOLD on one thread take neither
    the general path nor the Python layer's fast path."""
    _general_path_raises(monkeypatch)

    def refuse(*args, **kwargs):
        raise _Taken

    for module, name in [(_forward, "fast_rows"), (_cross_entropy, "fast_rows"),
                         (_cross_entropy, "_index_rows")]:
        monkeypatch.setattr(module, name, refuse)
    for x in (np.ones(10, np.float32), np.ones((32, 10)), np.ones((2, 3, 7), np.float32)):
        for num_threads in (None, 1):
            for name in FORWARD:
                getattr(fs, name)(x, num_threads=num_threads)
                getattr(fs, name)(x, axis=x.ndim - 1, num_threads=num_threads)
            target = np.zeros(x.shape[:-1], np.int64)
            for reduction in ("mean", "sum", "none"):
                fs.cross_entropy(x, target, num_threads=num_threads, reduction=reduction)
                fs.cross_entropy(x, target, return_grad=True, ignore_index=-1,
                                 label_smoothing=0.5, reduction=reduction)
