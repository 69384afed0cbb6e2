"""fastsoftmax.dask on a two-process ``distributed.LocalCluster``.

Each lazy function is compared with the one-call function of the same name
(row chunks: identical results) or with a float64 reference (an axis split
over chunks: within 2e-6 for float32), on chunks of unequal sizes and an
empty chunk.  The top-level functions refuse dask inputs instead of
computing them.
"""

import logging

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _cross_entropy, _reference

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
fsd = pytest.importorskip("fastsoftmax.dask")

# rows in chunks of unequal sizes, one of them empty
ROW_CHUNKS = (13, 0, 40, 7)
N_ROWS = sum(ROW_CHUNKS)


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, as a small cluster; the
    default scheduler while this module's tests run."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _data(rng, shape, dtype):
    x = rng.standard_normal(shape) * 4
    if np.dtype(dtype).kind in "iub":
        return (x * 3).astype(dtype)
    return x.astype(dtype)


def _ok(actual, expected, rtol):
    """Equal NaN and infinity positions; finite values within rtol."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(actual) * np.sign(actual),
                                  np.isinf(expected) * np.sign(expected))
    fin = np.isfinite(expected)
    np.testing.assert_allclose(actual[fin], expected[fin], rtol=rtol, atol=0)


# ---------------------------------------------------------------------------
# Row chunks: one map_blocks, the one-call result exactly.

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_row_chunks_equal_one_call(client, rng, name, dtype):
    x = _data(rng, (N_ROWS, 33), dtype)
    dx = da.from_array(x, chunks=(ROW_CHUNKS, 33))
    got = getattr(fsd, name)(dx).compute()
    want = getattr(fs, name)(x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_unsplit_axis_options_equal_one_call(client, rng, name):
    """axis 0 of a column-chunked array, where= as a dask array, dtype=,
    keepdims: the one-call result exactly."""
    x = _data(rng, (20, 6, 30), np.float32)
    dx = da.from_array(x, chunks=(20, 2, (10, 0, 20)))
    mask = rng.random(x.shape) < 0.7
    mask[:, 0, 0] = False  # a row with no entry left
    dmask = da.from_array(mask, chunks=(5, 6, 15))  # other chunks: realigned
    kw = {"keepdims": True} if name == "logsumexp" else {}
    got = getattr(fsd, name)(dx, axis=0, where=dmask, dtype=np.float64, **kw).compute()
    want = getattr(fs, name)(x, axis=0, where=mask, dtype=np.float64, **kw)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# A split axis: per-block partials, combined.

@pytest.mark.parametrize("axis", [-1, 0, (0, 1), None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_split_axis_within_2e6_of_float64(client, rng, name, dtype, axis):
    x = _data(rng, (N_ROWS, 50), dtype)
    dx = da.from_array(x, chunks=(ROW_CHUNKS, (20, 0, 17, 13)))
    got = getattr(fsd, name)(dx, axis=axis).compute()
    want = getattr(_reference, name)(x.astype(np.float64), axis=axis)
    assert got.dtype == np.dtype(dtype)
    # float64: log_softmax near 0 keeps an absolute error of a few eps * |lse|
    _ok(got, want, rtol=2e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_split_middle_axis_with_mask(client, rng, name):
    """The middle axis of a 3-D array, split into unequal chunks, with a
    dask mask: within 2e-6 of float64 (where= as the one call)."""
    x = _data(rng, (6, 20, 7), np.float32)
    mask = rng.random(x.shape) < 0.8
    dx = da.from_array(x, chunks=(3, (5, 0, 15), 4))
    got = getattr(fsd, name)(dx, axis=1, where=da.from_array(mask, chunks=(2, 10, 7)))
    want = getattr(_reference, name)(x.astype(np.float64), axis=1, where=mask)
    _ok(got.compute(), want, rtol=2e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_split_axis_non_finite_and_masks_as_one_call(client, rng, name):
    """NaN, +inf, all -inf, a block of -inf, rows with nothing left after
    where=: the one-call values (NaN where it has NaN, 0 or -inf where it
    has them)."""
    x = _data(rng, (8, 12), np.float64)
    x[0, 1] = np.nan
    x[1, 10] = np.inf
    x[2] = -np.inf
    x[3, :4] = -np.inf          # the row's first block is all -inf
    x[4, 5] = np.inf            # +inf in the second block only
    mask = np.ones(x.shape, bool)
    mask[5] = False             # nothing left
    mask[6, 4:8] = False        # the second block masked out
    mask[7, :] = False
    mask[7, 9] = True           # one entry left, in the last block
    dx = da.from_array(x, chunks=(3, 4))
    for where in (None, mask):
        dwhere = None if where is None else da.from_array(where, chunks=(4, 6))
        with np.errstate(invalid="ignore"):
            got = getattr(fsd, name)(dx, where=dwhere).compute()
            want = getattr(fs, name)(x, where=where)
        _ok(got, want, rtol=1e-13)


def test_split_axis_moves_only_partials(client, rng):
    """The graph of a split axis never rechunks or concatenates the data:
    each output block depends on its input block and on row-sized partials."""
    dx = da.from_array(_data(rng, (40, 60), np.float32), chunks=(20, 15))
    y = fsd.softmax(dx)
    names = {k[0] if isinstance(k, tuple) else k for k in dict(y.__dask_graph__())}
    assert not any("rechunk" in n or "concatenate" in n for n in names), names
    partials = [layer for name, layer in y.dask.layers.items() if name.startswith("_partial")]
    assert partials


def test_empty_arrays(client):
    x = np.empty((0, 5), np.float32)
    dx = da.from_array(x, chunks=(1, 2))
    assert fsd.softmax(dx).compute().shape == (0, 5)
    np.testing.assert_array_equal(fsd.logsumexp(da.zeros((3, 0), chunks=(2, 1)), axis=-1),
                                  np.full(3, -np.inf))


# ---------------------------------------------------------------------------
# Cross-entropy: a divisor from the targets, one pass per block.

def _targets(rng, n_classes, probs, ignore_index=-100):
    if probs:
        return fs.softmax(rng.standard_normal((N_ROWS, n_classes)) * 2)
    t = rng.integers(0, n_classes, N_ROWS)
    t[::9] = ignore_index
    return t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probs", [False, True], ids=["index", "probs"])
@pytest.mark.parametrize("options", ["plain", "weighted", "smoothed", "sample_weight"])
def test_cross_entropy_as_one_call(client, rng, dtype, reduction, probs, options):
    c = 11
    logits = _data(rng, (N_ROWS, c), dtype)
    kw = {
        "plain": {},
        "weighted": {"weight": rng.random(c) + 0.1, "label_smoothing": 0.2},
        "smoothed": {"label_smoothing": 0.3, "ignore_index": 3},
        "sample_weight": {"sample_weight": rng.random(N_ROWS), "weight": rng.random(c)},
    }[options]
    target = _targets(rng, c, probs, kw.get("ignore_index", -100))
    dlogits = da.from_array(logits, chunks=(ROW_CHUNKS, c))
    dtarget = da.from_array(target, chunks=((30, 0, 30),) + ((c,) if probs else ()))
    dkw = dict(kw)
    if "sample_weight" in kw:
        dkw["sample_weight"] = da.from_array(kw["sample_weight"], chunks=25)
    loss, grad = fsd.cross_entropy(dlogits, dtarget, reduction=reduction, return_grad=True,
                                   **dkw)
    loss_only = fsd.cross_entropy(dlogits, dtarget, reduction=reduction, **dkw)
    loss, grad, loss_only = dask.compute(loss, grad, loss_only)
    want_loss, want_grad = fs.cross_entropy(logits, target, reduction=reduction,
                                            return_grad=True, **kw)
    ref_loss, ref_grad = _reference.cross_entropy(logits.astype(np.float64), target,
                                                  reduction=reduction, return_grad=True, **kw)
    assert loss.dtype == want_loss.dtype and grad.dtype == want_grad.dtype
    assert np.shape(loss) == np.shape(want_loss)
    np.testing.assert_array_equal(loss_only, loss)
    # the one call's own result: loss within 1e-7, gradient within 1e-6
    np.testing.assert_allclose(loss, want_loss, rtol=1e-7, atol=0)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=0)
    if dtype == np.float64:
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-7, atol=0)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-15)


def test_cross_entropy_other_class_axis_and_split_classes(client, rng):
    """Class axis 1 of 3-D logits, the class axis split (then rechunked
    into one chunk), class weights as a dask array: the one-call result."""
    logits = _data(rng, (6, 9, 10), np.float64)
    target = rng.integers(0, 9, (6, 10))
    weight = rng.random(9)
    dlogits = da.from_array(logits, chunks=(4, 3, 5))
    loss, grad = dask.compute(*fsd.cross_entropy(
        dlogits, target, axis=1, weight=da.from_array(weight, chunks=4), return_grad=True))
    want_loss, want_grad = fs.cross_entropy(logits, target, axis=1, weight=weight,
                                            return_grad=True)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-14)


def test_cross_entropy_nothing_left_as_one_call(client):
    """Every target ignored: a NaN mean (nothing to divide by) and a zero
    gradient (ignored rows are not read), as the one call."""
    target = np.full(4, -100)
    loss, grad = dask.compute(*fsd.cross_entropy(da.zeros((4, 3), chunks=2), target,
                                                 return_grad=True))
    want_loss, want_grad = fs.cross_entropy(np.zeros((4, 3)), target, return_grad=True)
    assert np.isnan(loss) and np.isnan(want_loss)
    np.testing.assert_array_equal(grad, want_grad)


def test_cross_entropy_one_kernel_call_per_block(rng, monkeypatch):
    """One pass: each block of the logits gets one kernel call, which gives
    both its loss and its gradient (counted in this process, on the
    synchronous scheduler, with dask's graph optimisations on)."""
    calls = []
    one_call = _cross_entropy.cross_entropy

    def counted(*args, **kwargs):
        calls.append(kwargs["return_grad"])
        return one_call(*args, **kwargs)

    monkeypatch.setattr(_cross_entropy, "cross_entropy", counted)
    logits = da.from_array(_data(rng, (60, 8), np.float32), chunks=(15, 8))
    loss, grad = fsd.cross_entropy(logits, rng.integers(0, 8, 60), return_grad=True)
    dask.compute(loss, grad, scheduler="sync")
    assert calls == [True] * 4


def test_cross_entropy_checks_as_one_call(client, rng):
    dlogits = da.zeros((4, 3), chunks=2)
    for target, error in ((np.zeros(5, int), ValueError), (np.zeros(4, complex), TypeError)):
        with pytest.raises(error) as lazy:
            fsd.cross_entropy(dlogits, target)
        with pytest.raises(error) as eager:
            fs.cross_entropy(np.zeros((4, 3)), target)
        assert str(lazy.value) == str(eager.value)
    with pytest.raises(ValueError, match="reduction"):
        fsd.cross_entropy(dlogits, np.zeros(4, int), reduction="avg")
    # values are checked by the blocks, when they run
    loss = fsd.cross_entropy(dlogits, da.from_array(np.array([0, 1, 7, 2]), chunks=2))
    with pytest.raises(IndexError, match="target 7"):
        loss.compute()


# ---------------------------------------------------------------------------
# Laziness, checks, threads.

def _bomb(block):
    raise AssertionError("computed")


def test_lazy_until_computed(client):
    x = da.zeros((10, 10), chunks=5).map_blocks(_bomb, dtype=np.float64)
    for y in (fsd.softmax(x), fsd.log_softmax(x, axis=0), fsd.logsumexp(x, axis=None),
              fsd.cross_entropy(x, np.zeros(10, int), return_grad=True)[1]):
        assert isinstance(y, da.Array)


@pytest.mark.parametrize("call", [
    lambda x: fs.softmax(x), lambda x: fs.log_softmax(x), lambda x: fs.logsumexp(x),
    lambda x: fs.softmax(np.zeros((4, 4)), where=x > 0),
    lambda x: fs.softmax_backward(x, np.zeros((4, 4))),
    lambda x: fs.log_softmax_backward(np.zeros((4, 4)), x),
    lambda x: fs.softmax_jacobian(x),
    lambda x: fs.cross_entropy(x, np.zeros(4, int)),
    lambda x: fs.cross_entropy(np.zeros((4, 4)), x[:, 0].astype(int)),
    lambda x: fs.special.softmax(x), lambda x: fs.special.logsumexp(x),
    lambda x: fs.Softmax().forward(x),
], ids=["softmax", "log_softmax", "logsumexp", "where", "softmax_backward",
        "log_softmax_backward", "softmax_jacobian", "ce_logits", "ce_target",
        "special.softmax", "special.logsumexp", "layer"])
def test_top_level_refuses_dask_arrays(call):
    x = da.zeros((4, 4), chunks=2).map_blocks(_bomb, dtype=np.float64)
    with pytest.raises(TypeError, match=r"fastsoftmax\.dask"):
        call(x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_checks_as_one_call(name):
    f, fd = getattr(fs, name), getattr(fsd, name)
    for args, kw in (((np.zeros(3, complex),), {}), ((np.zeros((2, 3)),), {"axis": 2}),
                     ((np.zeros((2, 3)),), {"where": np.zeros(3, int)}),
                     ((np.zeros((2, 3)),), {"where": np.zeros(2, bool)}),
                     ((np.zeros((2, 3)),), {"num_threads": 0})):
        with pytest.raises(Exception) as eager:
            f(*args, **kw)
        with pytest.raises(type(eager.value)) as lazy:
            fd(*(da.from_array(a) for a in args), **kw)
        assert str(lazy.value) == str(eager.value)


def test_task_threads(client):
    # a one-thread worker: fastsoftmax's default, which OMP_NUM_THREADS=1 makes 1
    assert client.submit(fsd.task_threads, pure=False).result() is None
    assert client.submit(lambda: fs.get_config()["default_num_threads"], pure=False).result() == 1
    assert fsd.task_threads(3) == 3
    task = dask.delayed(fsd.task_threads, pure=False)()
    assert task.compute(scheduler="threads") == 1
    assert task.compute(scheduler="sync") is None
