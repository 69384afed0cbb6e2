"""linear_cross_entropy and LinearCrossEntropyLoss: the chunked classifier
head against the package's own cross_entropy on the whole logits, the NumPy
twin, and PyTorch (the naive path and its own fused one, skipped when
PyTorch is absent); and cross_entropy writing its gradient over its logits,
which the chunks rely on."""

import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _linear_cross_entropy, _reference
from fastsoftmax._linear_cross_entropy import chunk_rows

RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _problem(rng, dtype, n_rows=37, n_features=11, n_classes=23, probs=False, bias=True):
    x = rng.standard_normal((n_rows, n_features)).astype(dtype)
    w = (rng.standard_normal((n_classes, n_features)) / 2).astype(dtype)
    b = rng.standard_normal(n_classes).astype(dtype) if bias else None
    if probs:
        target = rng.dirichlet(np.ones(n_classes), n_rows).astype(dtype)
    else:
        target = rng.integers(0, n_classes, n_rows)
        target[:9] = -100          # a whole chunk of 7 rows, and two more, ignored
        target[20:21] = -100
    return x, w, b, target


def _want(x, w, b, target, **options):
    """Loss and gradients through fastsoftmax.cross_entropy on the whole
    logits, products in float64."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    logits = x64 @ w64.T + (0 if b is None else b.astype(np.float64))
    loss, g = fs.cross_entropy(logits, target, return_grad=True, **options)
    return loss, (g @ w64, g.T @ x64, None if b is None else g.sum(axis=0))


def _close(got, want, rtol, what=""):
    want = np.asarray(want, dtype=np.float64)
    atol = rtol * max(1.0, float(np.nanmax(np.abs(want)))) if want.size else 0
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol,
                               err_msg=what)


OPTIONS = {
    "plain": {},
    "weight": {"weight": "w"},
    "smoothing": {"label_smoothing": 0.1},
    "weight+smoothing": {"weight": "w", "label_smoothing": 0.3},
    "sample_weight": {"sample_weight": "s"},
    "all": {"weight": "w", "sample_weight": "s", "label_smoothing": 0.2},
}


def _options(rng, name, n_rows, n_classes):
    options = dict(OPTIONS[name])
    if "weight" in options:
        options["weight"] = rng.random(n_classes) + 0.5
    if "sample_weight" in options:
        options["sample_weight"] = rng.random(n_rows) * 2
    return options


@pytest.mark.parametrize("chunk_size", [1, 7, 16, None, 100])
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probs", [False, True], ids=["index", "probs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_cross_entropy_on_the_logits(dtype, probs, reduction, option, chunk_size, rng):
    x, w, b, target = _problem(rng, dtype, probs=probs, bias=chunk_size != 16)
    options = _options(rng, option, x.shape[0], w.shape[0])
    loss, grads = fs.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                          return_grad=True, chunk_size=chunk_size, **options)
    want_loss, want_grads = _want(x, w, b, target, reduction=reduction, **options)
    rtol = RTOL[dtype]
    assert np.asarray(loss).dtype == dtype and np.shape(loss) == np.shape(want_loss)
    _close(loss, want_loss, rtol, "loss")
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, want_grads):
        if want is None:
            assert got is None
            continue
        assert got.dtype == dtype and got.shape == want.shape
        _close(got, want, rtol, name)
    # the loss alone is the same loss
    alone = fs.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                    chunk_size=chunk_size, **options)
    _close(alone, loss, rtol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_the_numpy_twin(reduction, rng, num_threads):
    x, w, b, target = _problem(rng, np.float64)
    options = {"weight": rng.random(23), "label_smoothing": 0.1, "num_threads": num_threads}
    got = fs.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                  return_grad=True, chunk_size=5, **options)
    want = _reference.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                           return_grad=True, **options)
    _close(got[0], want[0], 1e-12)
    for g, v in zip(got[1], want[1]):
        _close(g, v, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_simd_path(dtype, simd, num_threads, rng):
    # long enough rows for the vector loops, the streamed stores and the scratch row
    x, w, b, target = _problem(rng, dtype, n_rows=45, n_features=9, n_classes=3001)
    for option in ("plain", "weight+smoothing"):
        options = _options(rng, option, 45, 3001)
        got = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                      chunk_size=16, num_threads=num_threads, **options)
        want = _want(x, w, b, target, **options)
        _close(got[0], want[0], RTOL[dtype])
        for g, v in zip(got[1], want[1]):
            _close(g, v, RTOL[dtype])


def test_every_row_ignored_gives_nan_mean_and_zero_gradients(rng):
    x, w, b, _ = _problem(rng, np.float64)
    target = np.full(37, -100)
    loss, grads = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                          chunk_size=10)
    assert np.isnan(loss)
    assert all(np.all(g == 0) for g in grads)          # as PyTorch's naive path
    assert fs.linear_cross_entropy(x, w, target, reduction="sum") == 0


def test_empty_batch(rng):
    x, w, b, _ = _problem(rng, np.float32, n_rows=0)
    target = np.zeros(0, np.int64)
    loss, (gx, gw, gb) = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True)
    assert np.isnan(loss) and gx.shape == (0, 11)
    assert np.all(gw == 0) and np.all(gb == 0)
    assert fs.linear_cross_entropy(x, w, target, reduction="none").shape == (0,)


def test_one_sample(rng):
    x, w, b, target = _problem(rng, np.float64, probs=False)
    for reduction in ("mean", "none"):
        loss, (gx, gw, _) = fs.linear_cross_entropy(x[30], w, target[30], linear_bias=b,
                                                     reduction=reduction, return_grad=True)
        want_loss, (wx, ww, _) = _want(x[30:31], w, b, target[30:31], reduction=reduction)
        assert np.shape(loss) == () and gx.shape == (11,)
        _close(loss, np.reshape(want_loss, ()), 1e-12)
        _close(gx, wx[0], 1e-12)
        _close(gw, ww, 1e-12)


def test_float16_is_computed_in_float32(rng):
    x, w, b, target = _problem(rng, np.float16)
    loss, grads = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                          chunk_size=8)
    want_loss, want_grads = fs.linear_cross_entropy(
        x.astype(np.float32), w.astype(np.float32), target, linear_bias=b.astype(np.float32),
        return_grad=True, chunk_size=8)
    assert loss.dtype == np.float16 and all(g.dtype == np.float16 for g in grads)
    assert loss == want_loss.astype(np.float16)
    for g, v in zip(grads, want_grads):
        np.testing.assert_array_equal(g, v.astype(np.float16))


def test_integer_inputs_promote_to_float64(rng):
    x = rng.integers(-3, 4, (6, 5))
    w = rng.integers(-3, 4, (4, 5))
    target = rng.integers(0, 4, 6)
    loss, grads = fs.linear_cross_entropy(x, w, target, return_grad=True)
    assert loss.dtype == np.float64 and grads[0].dtype == np.float64
    _close(loss, fs.cross_entropy((x @ w.T).astype(np.float64), target), 1e-12)


def test_layouts_are_equivalent(rng):
    x, w, b, target = _problem(rng, np.float64)
    want = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True, chunk_size=8)
    for xl, wl in ((np.asfortranarray(x), np.asfortranarray(w)),
                   (np.repeat(x, 2, axis=1)[:, ::2], w[::-1][::-1])):
        got = fs.linear_cross_entropy(xl, wl, target, linear_bias=b, return_grad=True,
                                      chunk_size=8)
        _close(got[0], want[0], 1e-12)
        for g, v in zip(got[1], want[1]):
            _close(g, v, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_out_buffers_are_written_and_returned(dtype, rng):
    x, w, b, target = _problem(rng, dtype)
    out = (np.full(x.shape, np.nan, dtype), np.full(w.shape, np.nan, dtype),
           np.full(b.shape, np.nan, dtype))
    _, grads = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                       chunk_size=10, out=out)
    assert all(g is o for g, o in zip(grads, out))
    want = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                   chunk_size=10)
    for g, v in zip(grads, want[1]):
        np.testing.assert_array_equal(g, v)
    # a strided grad_x, and None for a buffer to allocate
    gx = np.zeros((x.shape[0], 2 * x.shape[1]), dtype)[:, ::2]
    _, grads = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                       chunk_size=10, out=(gx, None, None))
    assert grads[0] is gx
    np.testing.assert_array_equal(gx, want[1][0])


def test_bad_arguments(rng):
    x, w, b, target = _problem(rng, np.float32)
    lce = fs.linear_cross_entropy
    with pytest.raises(ValueError, match=r"\(37, 11\) has 11 features.*\(23, 12\)"):
        lce(x, np.zeros((23, 12), np.float32), target)
    with pytest.raises(ValueError, match="shape \\(N, H\\)"):
        lce(x[None], w, target)
    with pytest.raises(ValueError, match="linear_weight must have shape"):
        lce(x, w[None], target)
    with pytest.raises(ValueError, match="linear_bias must have shape \\(23,\\)"):
        lce(x, w, target, linear_bias=b[:5])
    with pytest.raises(ValueError, match="class-index target must have shape \\(37,\\)"):
        lce(x, w, target[:5])
    with pytest.raises(ValueError, match="probability targets must have the logits' shape"):
        lce(x, w, np.zeros((37, 5), np.float32))
    bad = target.copy()
    bad[3] = 23
    with pytest.raises(IndexError, match="target 23 at position \\(3,\\)"):
        lce(x, w, bad)
    with pytest.raises(TypeError, match="complex"):
        lce(x.astype(np.complex64), w, target)
    with pytest.raises(TypeError, match="chunk_size"):
        lce(x, w, target, chunk_size=2.0)
    with pytest.raises(ValueError, match="chunk_size"):
        lce(x, w, target, chunk_size=0)
    with pytest.raises(ValueError, match="reduction"):
        lce(x, w, target, reduction="avg")
    with pytest.raises(ValueError, match="num_threads"):
        lce(x, w, target, num_threads=0)


def test_bad_out_buffers(rng):
    x, w, b, target = _problem(rng, np.float32)
    lce = fs.linear_cross_entropy
    good = (np.empty_like(x), np.empty_like(w), np.empty_like(b))
    with pytest.raises(ValueError, match="return_grad=True"):
        lce(x, w, target, linear_bias=b, out=good)
    with pytest.raises(TypeError, match="tuple"):
        lce(x, w, target, return_grad=True, out=good[0])
    with pytest.raises(ValueError, match="shape"):
        lce(x, w, target, return_grad=True, out=(good[0][1:], None))
    with pytest.raises(TypeError, match="dtype"):
        lce(x, w, target, return_grad=True, out=(good[0].astype(np.float64), None))
    readonly = np.empty_like(w)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        lce(x, w, target, return_grad=True, out=(None, readonly))
    with pytest.raises(ValueError, match="no linear_bias"):
        lce(x, w, target, return_grad=True, out=good)
    with pytest.raises(ValueError, match="grad_weight shares memory with linear_weight"):
        lce(x, w, target, return_grad=True, out=(None, w))
    with pytest.raises(ValueError, match="grad_x shares memory with x"):
        lce(x, w, target, return_grad=True, out=(x, None))


def test_chunk_rows():
    assert chunk_rows(8192, 32000, 4) == 2736     # 3 chunks, 334 MiB of float32 logits
    assert chunk_rows(8192, 32000, 8) == 1376     # at most 384 MiB of float64: 6 chunks
    assert chunk_rows(3073, 10, 4) == 1552        # 1552 + 1521, not 3072 + 1
    assert chunk_rows(3072, 10, 4) == 3072        # one chunk: all the rows, whatever their number
    assert chunk_rows(1000, 1 << 20, 4) == 96     # a cap of 96 rows: 10 chunks of 96, then 40
    assert chunk_rows(1000, 100 << 20, 4) == 1    # a cap under 16 rows is not rounded
    assert chunk_rows(100, 10, 4) == 100
    assert chunk_rows(5, 1 << 30, 8) == 1         # a row of logits beyond the cap
    assert chunk_rows(0, 10, 4) == 1


def test_the_logits_are_never_built(rng):
    """Peak NumPy allocation during the call: the chunk buffer and one V x H
    product, far below the whole logits (tracemalloc sees NumPy's
    allocations)."""
    n_rows, n_features, n_classes, chunk = 4000, 16, 3000, 250
    x, w, b, target = _problem(rng, np.float32, n_rows, n_features, n_classes)
    fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True, chunk_size=chunk)
    tracemalloc.start()
    try:
        fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,
                                chunk_size=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = 4 * (x.size + w.size + b.size)
    logits = 4 * n_rows * n_classes
    budget = 4 * (chunk * n_classes + w.size) + 64 * 4 * n_rows + (1 << 16)
    assert peak - outputs <= budget < logits / 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_weight_is_added_up_in_blocks_of_classes(dtype, monkeypatch, num_threads, rng):
    # blocks of 4 classes: the 23 classes in five blocks and a ragged one
    monkeypatch.setattr(_linear_cross_entropy, "PRODUCT_BYTES", 4 * 11 * np.dtype(dtype).itemsize)
    x, w, b, target = _problem(rng, dtype)
    options = _options(rng, "all", 37, 23)
    got = fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True, chunk_size=10,
                                  num_threads=num_threads, **options)
    want = _want(x, w, b, target, **options)
    _close(got[0], want[0], RTOL[dtype])
    for g, v in zip(got[1], want[1]):
        _close(g, v, RTOL[dtype])


def test_no_scratch_the_size_of_the_weight(monkeypatch, rng):
    """Peak NumPy allocation: the chunk buffer, one block of the grad_weight
    sums and each thread's column sums; no V x H product."""
    n_rows, n_features, n_classes, chunk = 4000, 256, 3000, 250
    block = 1 << 16
    monkeypatch.setattr(_linear_cross_entropy, "PRODUCT_BYTES", block)
    x, w, b, target = _problem(rng, np.float32, n_rows, n_features, n_classes)
    call = lambda: fs.linear_cross_entropy(x, w, target, linear_bias=b, return_grad=True,  # noqa: E731
                                           chunk_size=chunk, num_threads=2)
    call()
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = 4 * (x.size + w.size + b.size)
    budget = 4 * chunk * n_classes + block + 64 * 4 * n_rows + 2 * 4 * n_classes + (1 << 16)
    assert peak - outputs <= budget < 4 * (chunk * n_classes + w.size)


# --- cross_entropy writing its gradient over its logits --------------------------------

@pytest.mark.parametrize("n_rows, n_classes", [(37, 5), (9, 100), (5, 70001), (600, 3000)],
                         ids=["few-classes", "short", "beyond-row-cache", "streamed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gradient_over_its_logits(dtype, n_rows, n_classes, simd, rng):
    logits = (rng.standard_normal((n_rows, n_classes)) * 3).astype(dtype)
    index = rng.integers(0, n_classes, n_rows)
    index[1] = -100
    probs = rng.dirichlet(np.ones(n_classes), n_rows).astype(dtype)
    weight = rng.random(n_classes) + 0.5
    for target in (index, probs):
        for options in ({}, {"label_smoothing": 0.1}, {"weight": weight, "label_smoothing": 0.2},
                        {"reduction": "none"}):
            want = fs.cross_entropy(logits, target, return_grad=True, **options)
            buffer = logits.copy()
            loss, grad = fs.cross_entropy(buffer, target, return_grad=True, out=buffer,
                                          **options)
            assert grad is buffer
            # the same sums, perhaps in another order (the exps kept elsewhere)
            eps = np.finfo(dtype).eps
            np.testing.assert_allclose(loss, want[0], rtol=8 * eps)
            np.testing.assert_allclose(grad, want[1], rtol=8 * eps, atol=8 * eps / n_classes)


# --- the layer ----------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_layer_scales_the_kept_gradients(reduction, rng):
    x, w, b, target = _problem(rng, np.float64)
    layer = fs.LinearCrossEntropyLoss(reduction=reduction, label_smoothing=0.1, chunk_size=6)
    loss = layer.forward(x, w, target, b)
    want_loss, want = fs.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                              label_smoothing=0.1, return_grad=True)
    _close(loss, want_loss, 1e-12)
    for g, v in zip(layer.backward(2.5), want):
        _close(g, 2.5 * v, 1e-12)
    with pytest.raises(ValueError, match="scalar"):
        layer.backward(np.ones(37))


def test_layer_none_with_per_sample_grad_output(rng):
    x, w, b, target = _problem(rng, np.float64)
    dy = rng.standard_normal(37)
    layer = fs.LinearCrossEntropyLoss(reduction="none", chunk_size=10)
    loss = layer.forward(x, w, target, b)
    assert loss.shape == (37,)
    # the gradients of sum(dy * loss): rows of the logits' gradient scaled by dy
    logits = x @ w.T + b
    _, g = fs.cross_entropy(logits, target, reduction="none", return_grad=True)
    g = g * dy[:, None]
    for got, want in zip(layer.backward(dy), (g @ w, g.T @ x, g.sum(axis=0))):
        _close(got, want, 1e-12)
    for got, want in zip(layer.backward(np.full(37, 3.0)), layer.backward(1.0 * np.ones(37))):
        _close(got, 3.0 * want, 1e-12)
    with pytest.raises(ValueError, match="shape"):
        layer.backward(1.0)


def test_layer_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        fs.LinearCrossEntropyLoss().backward()


# --- PyTorch ----------------------------------------------------------------------------

def _torch_case(torch, x, w, b, target, fused, reduction, **options):
    import torch.nn.functional as F

    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    if fused:
        loss = F.linear_cross_entropy(tx, tw, torch.tensor(target), linear_bias=tb,
                                      reduction=reduction,
                                      options=torch.nn.LinearCrossEntropyOptions(), **kw)
    else:
        loss = F.cross_entropy(F.linear(tx, tw, tb), torch.tensor(target), reduction=reduction,
                               **kw)
    loss.sum().backward()
    grads = (tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())
    return loss.detach().numpy(), grads


TORCH_OPTIONS = ["plain", "weight", "smoothing", "weight+smoothing"]


@pytest.mark.filterwarnings("ignore::UserWarning")   # PyTorch's fused path falls back, saying so
@pytest.mark.parametrize("fused", [False, True], ids=["naive", "fused"])
@pytest.mark.parametrize("option", TORCH_OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("probs", [False, True], ids=["index", "probs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_pytorch(dtype, probs, reduction, option, fused, rng):
    torch = pytest.importorskip("torch")
    if not hasattr(torch.nn.functional, "linear_cross_entropy"):
        pytest.skip("this PyTorch has no linear_cross_entropy")
    x, w, b, target = _problem(rng, dtype, n_rows=301, n_features=13, n_classes=97,
                               probs=probs)
    options = _options(rng, option, 301, 97)
    if "weight" in options:
        options["weight"] = options["weight"].astype(dtype)
    got_loss, got = fs.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction,
                                            return_grad=True, chunk_size=64, **options)
    want_loss, want = _torch_case(torch, x, w, b, target, fused, reduction, **options)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    _close(got_loss, want_loss, rtol, "loss")
    for name, g, v in zip(("grad_x", "grad_weight", "grad_bias"), got, want):
        _close(g, v, rtol, name)
