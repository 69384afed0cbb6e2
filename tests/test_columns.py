"""The column-tile kernels (a reduction axis with ``inner > 1``): every
function along a middle axis, at inner sizes around the vector widths and
the tile widths (tiles of up to 512 columns, split in halves for threads),
and the cross-entropy with its class axis first, in the middle and last,
against the NumPy twin and PyTorch, on every SIMD path and 1 and 2 threads.
"""

import itertools
import tracemalloc

import numpy as np
import pytest
from cases import assert_matches, tolerance

import fastsoftmax as fs
from fastsoftmax import _reference, _runtime

# vectors of 8 / 16 lanes and their tails, tiles of 256 / 512 columns
INNERS = (1, 3, 15, 16, 17, 255, 256, 257, 600)
# one row, two, and more than a block of rows between two statistics folds
LENGTHS = (1, 2, 37)
FORWARD = ("softmax", "log_softmax", "logsumexp")


def column_values(n, inner, dtype, kind, rng):
    """(2, n, inner) values along axis 1: ``normal``; ``rising`` (every row a
    new maximum: the shift moves at every step); ``jumps`` (maxima far past
    the first rows); ``special``: one column each of NaN, +inf, all -inf, a
    -inf among finite values and one dominating entry, amid normal ones."""
    x = rng.standard_normal((2, n, inner)) * 3
    if kind == "rising":
        x += np.arange(n)[:, None] * 2.5
    elif kind == "jumps":
        x[:, n // 2:] += 60
        x[:, -1] += 200
    elif kind == "special" and inner > 5:
        x[0, n // 2, 0] = np.nan
        x[0, -1, 1] = np.inf
        x[0, :, 2] = -np.inf
        x[1, 0, 3] = -np.inf
        x[1, n // 2, 4] = 50.0
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", LENGTHS)
def test_forward_columns(n, dtype, simd, num_threads):
    rng = np.random.default_rng(n)
    for inner, kind, name in itertools.product(INNERS, ("normal", "rising", "jumps", "special"),
                                               FORWARD):
        x = column_values(n, inner, dtype, kind, rng)
        actual = getattr(fs, name)(x, axis=1, num_threads=num_threads)
        desired = getattr(_reference, name)(x, axis=1)
        assert_matches(actual, desired, f"{name} inner={inner} {kind}")


@pytest.mark.parametrize("offset", [0, 1])
def test_streamed_columns(offset, simd, num_threads):
    # outputs past STREAM_BYTES go out with non-temporal stores: into a fresh
    # aligned array, and into an out= whose rows start off a line boundary
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1100, 2051)).astype(np.float32)[:, offset:offset + 2048]
    x = np.ascontiguousarray(x)
    buf = np.empty(x.size + 16, np.float32)
    out = buf[offset:offset + x.size].reshape(x.shape)
    for name in ("softmax", "log_softmax"):
        desired = getattr(_reference, name)(x, axis=0)
        assert_matches(getattr(fs, name)(x, axis=0, num_threads=num_threads), desired, name)
        assert getattr(fs, name)(x, axis=0, out=out, num_threads=num_threads) is out
        assert_matches(out, desired, name + " out=")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bad_column_leaves_its_neighbours_alone(dtype, simd, num_threads):
    rng = np.random.default_rng(1)
    x = column_values(300, 600, dtype, "special", rng)
    clean = x.copy()
    clean[0, :, :3] = clean[1, :, 3:5] = 0.0
    for name in FORWARD:
        f = getattr(fs, name)
        bad, good = f(x, axis=1, num_threads=num_threads), f(clean, axis=1, num_threads=num_threads)
        # only the special columns differ, and nothing else turned NaN
        bad[0, ..., :3] = good[0, ..., :3]
        bad[1, ..., 3:5] = good[1, ..., 3:5]
        np.testing.assert_array_equal(bad, good, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_columns(dtype, simd, num_threads):
    rng = np.random.default_rng(2)
    for n, inner in itertools.product(LENGTHS, INNERS):
        x = column_values(n, inner, dtype, "normal", rng)
        dy = rng.standard_normal(x.shape).astype(dtype)
        for name, forward in (("softmax_backward", _reference.softmax),
                              ("log_softmax_backward", _reference.log_softmax)):
            y = forward(x, axis=1)
            actual = getattr(fs, name)(dy, y, axis=1, num_threads=num_threads)
            assert_matches(actual, getattr(_reference, name)(dy, y, axis=1),
                           f"{name} n={n} inner={inner}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_column_dominated_by_one_entry(dtype, simd):
    # log(s) near s = 1 keeps the small terms, as in the rows
    x = np.full((2, 1000, 40), -40.0, dtype)
    x[:, 0] = 0.0
    desired = np.log1p(999 * np.exp(np.float64(-40.0)))
    np.testing.assert_allclose(fs.logsumexp(x, axis=1), desired, rtol=1e-6)
    np.testing.assert_allclose(fs.logsumexp(x[:, :2], axis=1), np.exp(np.float64(-40.0)),
                               rtol=1e-6)


# ------------------------------------------------------------ cross-entropy --

# (shape, class axis): first, middle and, as a control, last; inner sizes
# around the vector and tile widths
CE_SHAPES = [((5, 3, 17), 0), ((3, 5, 17), 1), ((2, 7, 257), 1), ((4, 3, 2, 5), 1),
             ((4, 3, 2, 5), 2), ((2, 21, 600), -2), ((1, 4, 16), 1), ((6, 40), 0), ((3, 9), 1)]
CE_OPTIONS = list(itertools.product(("index", "soft"), (False, True), (0.0, 0.3),
                                    ("mean", "sum", "none"), (False, True), (False, True)))


def ce_inputs(shape, axis, dtype, target_kind, ignore, rng):
    ax = axis % len(shape)
    n, sample_shape = shape[ax], shape[:ax] + shape[ax + 1:]
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if target_kind == "index":
        t = rng.integers(0, n, sample_shape)
        if ignore:
            t.flat[::3] = -100
    else:
        q = rng.random(shape)
        t = (q / q.sum(ax, keepdims=True)).astype(dtype)
    return x, t, n, sample_shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CE_SHAPES)
def test_cross_entropy_class_axis(shape, axis, dtype, simd, num_threads):
    rng = np.random.default_rng(3)
    for target_kind, weighted, smoothing, reduction, sample_weighted, ignore in CE_OPTIONS:
        if target_kind == "soft" and ignore:
            continue
        x, t, n, sample_shape = ce_inputs(shape, axis, dtype, target_kind, ignore, rng)
        kwargs = {"axis": axis, "reduction": reduction, "label_smoothing": smoothing,
                  "weight": rng.random(n).astype(dtype) if weighted else None,
                  "sample_weight": rng.random(sample_shape) if sample_weighted else None}
        what = f"{target_kind} w={weighted} eps={smoothing} {reduction} sw={sample_weighted}"
        loss, grad = fs.cross_entropy(x, t, return_grad=True, num_threads=num_threads, **kwargs)
        ref_loss, ref_grad = _reference.cross_entropy(x, t, return_grad=True, **kwargs)
        assert_matches(loss, ref_loss, what)
        assert_matches(grad, ref_grad, what)
        # the loss alone is the same loss
        assert_matches(fs.cross_entropy(x, t, num_threads=num_threads, **kwargs), ref_loss, what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CE_SHAPES[:6])
def test_cross_entropy_class_axis_against_torch(shape, axis, dtype, simd):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, t, n, _ = ce_inputs(shape, axis, dtype, "index", True, rng)
    weight = rng.random(n).astype(dtype)
    loss, grad = fs.cross_entropy(x, t, axis=axis, weight=weight, label_smoothing=0.2,
                                  return_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(xt.movedim(axis, 1), torch.from_numpy(t),
                                           weight=torch.from_numpy(weight), label_smoothing=0.2)
    tl.backward()
    tol = tolerance(dtype)
    np.testing.assert_allclose(loss, tl.item(), **tol)
    np.testing.assert_allclose(grad, xt.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_class_axis_special_samples(dtype, simd, num_threads):
    # NaN / +inf / all -inf logits give that sample a NaN loss and gradient;
    # an ignored sample gives 0 even over NaN logits; the others are untouched
    rng = np.random.default_rng(5)
    x, t, _, _ = ce_inputs((2, 6, 40), 1, dtype, "index", False, rng)
    x[0, 2, 0] = np.nan
    x[0, 4, 1] = np.inf
    x[0, :, 2] = -np.inf
    x[1, :, 3] = np.nan
    t[1, 3] = -100
    x[1, t[1, 5], 5] = -np.inf         # the target's logit: an infinite loss
    loss, grad = fs.cross_entropy(x, t, axis=1, reduction="none", return_grad=True,
                                  num_threads=num_threads)
    ref_loss, ref_grad = _reference.cross_entropy(x, t, axis=1, reduction="none",
                                                  return_grad=True)
    assert_matches(loss, ref_loss, "loss")
    assert_matches(grad, ref_grad, "grad")
    assert np.isnan(loss[0, :3]).all() and loss[1, 3] == 0 and loss[1, 5] == np.inf
    assert (grad[1, :, 3] == 0).all()


def test_cross_entropy_class_axis_writes_in_place():
    # C-contiguous logits with the class axis in the middle: the gradient
    # goes straight into a C-contiguous out= of their shape, and nothing of
    # the logits' size is allocated (they used to be copied, class axis last)
    rng = np.random.default_rng(6)
    x, t, _, _ = ce_inputs((4, 21, 3000), 1, np.float32, "index", True, rng)
    out = np.empty_like(x)
    ref_loss, ref_grad = _reference.cross_entropy(x, t, axis=1, return_grad=True)
    tracemalloc.start()
    try:
        loss, grad = fs.cross_entropy(x, t, axis=1, return_grad=True, out=out)
        loss_only = fs.cross_entropy(x, t, axis=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grad is out
    assert_matches(grad, ref_grad, "grad")
    assert_matches(loss, ref_loss, "loss")
    assert_matches(loss_only, ref_loss, "loss alone")
    assert peak < x.nbytes // 4, peak


def _specials(x, t, cols):
    """In the (N, C, inner) logits x (targets t), at sample columns ``cols``
    of N-block 0: a NaN, a +inf, all -inf, an ignored target over NaN
    logits, a -inf at the target, a dominating target; the rest normal."""
    a, b, c, d, e, f = cols
    x[0, 1, a] = np.nan
    x[0, 2, b] = np.inf
    x[0, :, c] = -np.inf
    x[0, :, d] = np.nan
    t[0, d] = -100
    x[0, t[0, e], e] = -np.inf
    x[0, t[0, f], f] = 40.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inner,cols", [(37, (32, 33, 34, 35, 36, 31)),   # the tail of a vector
                                        (21, (3, 5, 6, 7, 9, 10))])       # all in one vector
def test_cross_entropy_class_axis_special_lanes(inner, cols, dtype, simd, num_threads):
    # special samples beside ordinary ones in the same vector, and in the
    # lanes of a partial last vector, under every option
    rng = np.random.default_rng(8)
    for target_kind, weighted, smoothing in itertools.product(("index", "soft"), (False, True),
                                                              (0.0, 0.3)):
        x, t, n, sample_shape = ce_inputs((2, 6, inner), 1, dtype, "index", False, rng)
        _specials(x, t, cols)
        if target_kind == "soft":
            t = np.eye(n, dtype=dtype)[np.where(t < 0, 0, t)].transpose(0, 2, 1).copy()
        kwargs = {"axis": 1, "reduction": "none", "label_smoothing": smoothing,
                  "weight": rng.uniform(0.5, 2, n).astype(dtype) if weighted else None}
        what = f"{target_kind} w={weighted} eps={smoothing}"
        loss, grad = fs.cross_entropy(x, t, return_grad=True, num_threads=num_threads, **kwargs)
        ref_loss, ref_grad = _reference.cross_entropy(x, t, return_grad=True, **kwargs)
        assert_matches(loss, ref_loss, what)
        assert_matches(grad, ref_grad, what)
        assert_matches(fs.cross_entropy(x, t, num_threads=num_threads, **kwargs), ref_loss, what)
        # the ordinary samples of the vectors that hold the special ones are finite
        ordinary = np.ones(sample_shape, bool)
        ordinary[0, list(cols)] = False
        assert np.isfinite(loss[ordinary]).all()
        assert np.isfinite(grad.transpose(0, 2, 1)[ordinary]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [200, 1000, 3000])
def test_cross_entropy_class_axis_many_classes(n, dtype, simd):
    # sums of exps past the few-class range of the vector log; tiles cut into
    # sub-tiles whose exps fit the scratch, or (3000 float32 classes) too
    # many classes for it, the exps computed again
    rng = np.random.default_rng(n)
    equal = np.zeros((1, n, 19), dtype)
    t = rng.integers(0, n, (1, 19))
    np.testing.assert_allclose(fs.cross_entropy(equal, t, axis=1, reduction="none"),
                               np.full((1, 19), np.log(n), dtype), rtol=4 * np.finfo(dtype).eps)
    x, t, _, _ = ce_inputs((2, n, 600 if n < 3000 else 40), 1, dtype, "index", True, rng)
    for weighted, smoothing in itertools.product((False, True), (0.0, 0.3)):
        kwargs = {"axis": 1, "label_smoothing": smoothing,
                  "weight": rng.uniform(0.5, 2, n).astype(dtype) if weighted else None}
        loss, grad = fs.cross_entropy(x, t, return_grad=True, **kwargs)
        ref_loss, ref_grad = _reference.cross_entropy(x, t, return_grad=True, **kwargs)
        assert_matches(loss, ref_loss, f"w={weighted} eps={smoothing}")
        assert_matches(grad, ref_grad, f"w={weighted} eps={smoothing}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile", [32, 8])
def test_cross_entropy_class_axis_streamed_matches(tile, dtype, simd, num_threads):
    # large gradients leave the column kernel with non-temporal stores, each
    # row a masked head and whole aligned lines; on a small input, into a
    # buffer one element off a line boundary, that path gives the same bits
    # (tiles of 8: narrower than the head)
    rng = np.random.default_rng(9)
    outer, n, inner = 3, 7, 48
    x = (rng.standard_normal((outer, n, inner)) * 3).astype(dtype)
    t = rng.integers(0, n, (outer, inner))
    t[0, 5] = -1
    q = rng.random((outer, n, inner)).astype(dtype)
    w = rng.uniform(0.5, 2, n).astype(dtype)
    sw = rng.uniform(0.5, 2, outer * inner)
    for soft, weight, eps in itertools.product((False, True), (None, w), (0.0, 0.2)):
        out = []
        for stream in (False, True):
            loss = np.empty(outer * inner)
            buf = np.empty(x.size + 1, dtype)
            grad = buf[1:]
            total = _runtime.kernels.cross_entropy(
                logits=x.reshape(-1), target=None if soft else t.reshape(-1),
                target_probs=q.reshape(-1) if soft else None, weight=weight,
                weight_sum=float(n if weight is None else weight.sum()), label_smoothing=eps,
                row_scale=sw, scale=0.5, loss=loss, grad=grad, n_rows=outer, n=n,
                num_threads=num_threads, stream=stream, inner=inner, tile=tile)
            out.append((total, loss, grad.reshape(x.shape).copy()))
        np.testing.assert_array_equal(out[0][2], out[1][2])
        np.testing.assert_array_equal(out[0][1], out[1][1])
        ref_loss, ref_grad = _reference.cross_entropy(
            x, q if soft else np.where(t < 0, -100, t), axis=1, weight=weight,
            label_smoothing=eps, reduction="none", return_grad=True)
        tol = tolerance(dtype)
        np.testing.assert_allclose(out[1][1], ref_loss.reshape(-1), **tol)
        np.testing.assert_allclose(out[1][0], np.sum(ref_loss.reshape(-1) * sw), **tol)
        np.testing.assert_allclose(out[1][2], ref_grad * 0.5 * sw.reshape(outer, 1, inner), **tol)
