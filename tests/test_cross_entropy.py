"""Tests of the fused cross-entropy: the generator's cases (every option,
layout and dtype) compared with the NumPy twin in ``_reference`` and with
PyTorch, and central differences, on every SIMD path this CPU has and on 1
and 2 threads."""

import functools
import itertools

import numpy as np
import pytest
from cases import REDUCTIONS, TARGETS, cases

import fastsoftmax as fs
from fastsoftmax import _reference, _runtime
from fastsoftmax.testing import check_gradient

try:
    import torch
except ImportError:
    torch = None

# float32 results are rounded float32 (exp within 2 ulp, sums in double):
# a few ulp relative to the largest value; float64 likewise.  float16 is
# computed in float32 and rounded once (as the forward functions).
RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _assert_close(actual, desired, dtype, what):
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, what
    finite = np.isfinite(desired)
    rtol = RTOL[np.dtype(dtype)]
    scale = np.max(np.abs(desired[finite]), initial=0.0)
    # an all-zero result (one class: p - q cancels exactly) keeps the double
    # rounding of the kernel's O(1) terms
    atol = rtol * scale if scale > 0 else 16 * np.finfo(np.float64).eps
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=what)
    np.testing.assert_array_equal(actual[~finite], desired[~finite], err_msg=what)
    np.testing.assert_allclose(actual[finite], desired[finite], rtol=rtol, atol=atol,
                               err_msg=what)


def make_case(shape, axis, dtype, kind, ignore, seed):
    """Logits and targets for one case; ``ignore`` puts ignore_index on some samples."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    n = shape[axis]
    sample_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    if kind == "soft":
        q = rng.random(shape)
        target = (q / q.sum(axis=axis, keepdims=True)).astype(dtype)
        return logits, target, -100
    target = rng.integers(0, n, size=sample_shape)
    ignore_index = -100
    if ignore:
        ignore_index = 1  # a real class that is ignored: the kernel must not use it
        mask = rng.random(sample_shape) < 0.3
        target = np.where(mask, ignore_index, target)
    return logits, np.asarray(target, dtype=np.int64), ignore_index


def torch_cross_entropy(logits, target, axis=-1, *, weight=None, sample_weight=None,
                        ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Loss and gradient from torch autograd, computed in float64.

    torch has no ``sample_weight``: with one, the samples' own losses are
    weighted and reduced here by the rule fastsoftmax documents (the mean
    divides by the sum of ``sample_weight`` times the target class weight).
    """
    if torch is None:
        pytest.skip("PyTorch is not installed")
    torch.set_num_threads(1)  # its thread pool would compete with the kernels' own
    F = torch.nn.functional
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    unbatched = x.ndim == 1
    if unbatched:
        # a batch of one (torch's 1-D backward with label smoothing fails on shapes)
        x, t, axis = x[None], t[None], 1
        sw = None if sw is None else sw[None]
    x = np.moveaxis(x, axis, 1)
    soft = t.dtype.kind == "f"
    t = np.moveaxis(t.astype(np.float64), axis, 1) if soft else t.astype(np.int64)
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    tt = torch.tensor(np.ascontiguousarray(t))
    wt = None if weight is None else torch.tensor(np.ascontiguousarray(weight, dtype=np.float64))
    kw = {"weight": wt, "ignore_index": ignore_index, "label_smoothing": label_smoothing}
    if sw is None:
        loss = F.cross_entropy(xt, tt, reduction=reduction, **kw)
    else:
        swt = torch.tensor(np.ascontiguousarray(sw))
        loss = F.cross_entropy(xt, tt, reduction="none", **kw) * swt
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            if soft:
                denom = swt.sum()
            else:
                keep = tt != ignore_index
                w_t = keep.double() if wt is None else torch.where(
                    keep, wt[torch.where(keep, tt, 0)], 0.0)
                denom = (w_t * swt).sum()
            loss = loss.sum() / denom
    loss.sum().backward()
    grad = np.moveaxis(xt.grad.numpy(), 1, axis)
    loss = loss.detach().numpy()
    if unbatched:
        grad = grad[0]
        loss = loss[0] if reduction == "none" else loss
    return loss, grad


def torch_reads_ignored_non_finite(logits, target, axis=-1, *, ignore_index=-100, **_):
    """True where PyTorch would turn an ignored sample's non-finite logits
    into NaN; fastsoftmax does not read them (documented)."""
    target = np.asarray(target)
    if target.dtype.kind == "f":
        return False
    x = np.moveaxis(np.asarray(logits, dtype=np.float64), axis, -1)
    return not np.isfinite(x[target == ignore_index]).all()


@functools.cache
def oracles():
    """The NumPy twin's and PyTorch's loss and gradient on every case,
    computed once and shared by every SIMD path and thread count."""
    out = []
    for case in cases("cross_entropy"):
        by_reference = _reference.cross_entropy(*case.args, **case.kwargs, return_grad=True)
        by_torch = None
        if torch is not None and not torch_reads_ignored_non_finite(*case.args, **case.kwargs):
            by_torch = torch_cross_entropy(*case.args, **case.kwargs)
        out.append((by_reference, by_torch))
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_against_reference_and_torch(target, simd, num_threads):
    for case, (by_reference, by_torch) in zip(cases("cross_entropy"), oracles()):
        if case.factors["target"] != target:
            continue
        x = case.args[0]
        dtype = x.dtype.newbyteorder("=") if x.dtype.kind == "f" else np.dtype(np.float64)
        reduction = case.kwargs["reduction"]
        kwargs = case.kwargs
        loss, grad = fs.cross_entropy(*case.args, **kwargs, return_grad=True,
                                      num_threads=num_threads)
        assert grad.shape == x.shape and grad.dtype == dtype, case.id
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == dtype, case.id
        else:
            assert type(loss) is dtype.type, case.id
        for oracle, by in (("reference", by_reference), ("torch", by_torch)):
            if by is None:
                continue
            o_loss, o_grad = by
            _assert_close(loss, o_loss, dtype, f"loss vs {oracle}: {case.id}")
            _assert_close(grad, o_grad, dtype, f"grad vs {oracle}: {case.id}")
        alone = fs.cross_entropy(*case.args, **kwargs, num_threads=num_threads)
        np.testing.assert_array_equal(alone, loss, err_msg="loss without the gradient: " + case.id)


def test_strided_weight():
    x = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([0, 1, 2, 1])
    w = np.array([0.5, 9.0, 1.0, 9.0, 2.0, 9.0])[::2]
    loss, grad = fs.cross_entropy(x, t, weight=w, return_grad=True)
    r_loss, r_grad = _reference.cross_entropy(x, t, weight=w, return_grad=True)
    _assert_close(loss, r_loss, np.float64, "loss")
    _assert_close(grad, r_grad, np.float64, "grad")


def test_soft_target_at_neginf_logit():
    # -inf where the target has probability 0.3: -log p = +inf (PyTorch,
    # the NumPy twin); the gradient is finite
    x = np.array([[0.0, -np.inf, 1.0], [0.0, 1.0, 2.0]])
    q = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    loss, grad = fs.cross_entropy(x, q, reduction="none", return_grad=True)
    r_loss, r_grad = _reference.cross_entropy(x, q, reduction="none", return_grad=True)
    _assert_close(grad, r_grad, np.float64, "grad")
    _assert_close(loss, r_loss, np.float64, "loss")


@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_no_classes(impl):
    # logits with no class: an index target can only be ignore_index
    func = fs.cross_entropy if impl == "compiled" else _reference.cross_entropy
    x = np.zeros((5, 0))
    for t in (np.full(5, -100), np.zeros((5, 0))):
        loss, grad = func(x, t, reduction="sum", return_grad=True)
        assert loss == 0 and grad.shape == (5, 0)
        np.testing.assert_array_equal(func(x, t, reduction="none"), np.zeros(5))
    assert np.isnan(func(x, np.full(5, -100)))       # nothing left to average


def test_sample_weight_matches_sklearn(simd, num_threads):
    sk_loss = pytest.importorskip("sklearn._loss.loss")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6)) * 2
    y = rng.integers(0, 6, 50)
    sw = rng.uniform(0, 2, 50)
    half = sk_loss.HalfMultinomialLoss(n_classes=6)
    # sklearn: per-sample sw * (logsumexp(x) - x_y), gradient sw * (softmax(x) - onehot)
    per_sample = half.loss(y.astype(np.float64), x, sw)
    gradient = half.gradient(y.astype(np.float64), x, sw)
    loss, grad = fs.cross_entropy(x, y, sample_weight=sw, reduction="sum", return_grad=True,
                                  num_threads=num_threads)
    np.testing.assert_allclose(loss, per_sample.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, gradient, rtol=1e-12, atol=1e-15)
    loss, grad = fs.cross_entropy(x, y, sample_weight=sw, reduction="mean", return_grad=True,
                                  num_threads=num_threads)
    np.testing.assert_allclose(loss, per_sample.sum() / sw.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, gradient / sw.sum(), rtol=1e-12, atol=1e-15)
    loss = fs.cross_entropy(x, y, sample_weight=sw, reduction="none", num_threads=num_threads)
    np.testing.assert_allclose(loss, per_sample, rtol=1e-12)


@pytest.mark.parametrize("kind", ["index", "soft"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_by_central_differences(kind, reduction, simd):
    x, t, ignore_index = make_case((4, 3, 5), -1, np.float64, kind, kind == "index", seed=2)
    sw = np.random.default_rng(1).uniform(0.5, 2, (4, 3))
    v = np.random.default_rng(4).standard_normal((4, 3))
    kw = {"weight": np.array([0.5, 1.0, 2.0, 1.5, 0.7]), "sample_weight": sw,
              "ignore_index": ignore_index, "reduction": reduction, "label_smoothing": 0.2}

    def f(z):
        loss = fs.cross_entropy(z, t, **kw)
        return np.sum(loss * v) if reduction == "none" else loss

    layer = fs.CrossEntropyLoss(**kw)
    layer.forward(x, t)
    grad = layer.backward(v if reduction == "none" else 1.0)
    # step ~ cbrt(float64 eps): with 1e-6 one ulp of a loss near 40 alone
    # moves a difference quotient by 3.5e-9, beyond atol
    report = check_gradient(f, grad, x, eps=1e-5, rtol=1e-6, atol=1e-9)
    assert report["passed"], report


def test_layer_backward_scales_the_kept_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = rng.integers(0, 4, 6)
    for reduction in ("mean", "sum"):
        layer = fs.CrossEntropyLoss(reduction=reduction)
        loss = layer.forward(x, t)
        ref_loss, ref_grad = fs.cross_entropy(x, t, reduction=reduction, return_grad=True)
        assert loss == ref_loss
        np.testing.assert_array_equal(layer.backward(), ref_grad)
        np.testing.assert_allclose(layer.backward(2.5), 2.5 * ref_grad, rtol=1e-6)
        assert layer.backward().dtype == np.float32
    layer = fs.CrossEntropyLoss(reduction="none", axis=0)
    layer.forward(x.T, t)
    dy = rng.standard_normal(6)
    _, ref_grad = fs.cross_entropy(x.T, t, axis=0, reduction="none", return_grad=True)
    np.testing.assert_allclose(layer.backward(dy), ref_grad * dy, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        layer.backward(1.0)
    with pytest.raises(RuntimeError):
        fs.CrossEntropyLoss().backward()


def test_non_finite_logits(simd):
    x = np.array([[0.0, np.nan, 1.0],        # NaN -> NaN
                  [np.inf, 0.0, 1.0],        # +inf -> NaN
                  [-np.inf, -np.inf, -np.inf],  # all -inf -> NaN
                  [0.0, -np.inf, 1.0],       # -inf at the target -> +inf
                  [0.0, -np.inf, 1.0],       # -inf elsewhere -> finite
                  [np.nan, 0.0, 0.0]])       # ignored: not read, 0
    t = np.array([0, 1, 2, 1, 0, -100])
    loss, grad = fs.cross_entropy(x, t, reduction="none", return_grad=True)
    assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
    assert loss[3] == np.inf and np.isfinite(grad[3:]).all()
    assert np.isfinite(loss[4]) and loss[5] == 0 and (grad[5] == 0).all()
    t_loss, t_grad = torch_cross_entropy(x[:5], t[:5], reduction="none")
    _assert_close(loss[:5], t_loss, np.float64, "loss")
    _assert_close(grad[:5], t_grad, np.float64, "grad")
    r_loss, r_grad = _reference.cross_entropy(x, t, reduction="none", return_grad=True)
    _assert_close(loss, r_loss, np.float64, "loss vs reference")
    _assert_close(grad, r_grad, np.float64, "grad vs reference")


def test_all_ignored_and_empty():
    x = np.zeros((3, 4))
    t = np.full(3, -100)
    loss, grad = fs.cross_entropy(x, t, return_grad=True)
    assert np.isnan(loss) and (grad == 0).all()
    assert fs.cross_entropy(x, t, reduction="sum") == 0
    empty = np.zeros((0, 4), dtype=np.float32)
    loss, grad = fs.cross_entropy(empty, np.zeros(0, dtype=np.int64), return_grad=True)
    assert np.isnan(loss) and grad.shape == (0, 4) and loss.dtype == np.float32
    assert fs.cross_entropy(empty, np.zeros(0, dtype=np.int64), reduction="none").shape == (0,)


def test_dtypes_follow_the_forward_rules():
    x = np.array([[1, 2, 3], [0, 0, 0]])
    t = np.array([2, 0], dtype=np.int32)
    loss, grad = fs.cross_entropy(x, t, return_grad=True)
    assert type(loss) is np.float64 and grad.dtype == np.float64
    loss16, grad16 = fs.cross_entropy(x.astype(np.float16), t, return_grad=True)
    assert type(loss16) is np.float16 and grad16.dtype == np.float16
    np.testing.assert_allclose(float(loss16), float(loss), rtol=1e-3)
    loss, grad = fs.cross_entropy(x.astype(np.float32), t.astype(np.uint8), return_grad=True)
    assert type(loss) is np.float32 and grad.dtype == np.float32


def test_layouts_give_the_same_result():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5))
    t = rng.integers(0, 5, 8)
    base_loss, base_grad = fs.cross_entropy(x, t, return_grad=True)
    for view in (np.asfortranarray(x), x[::-1][::-1], np.repeat(x, 2, axis=1)[:, ::2]):
        loss, grad = fs.cross_entropy(view, t, return_grad=True)
        assert loss == base_loss
        np.testing.assert_array_equal(grad, base_grad)
    loss, grad = fs.cross_entropy(x.T, t, axis=0, return_grad=True)
    assert loss == base_loss
    np.testing.assert_array_equal(grad, base_grad.T)


BAD = [
    ({"target": np.zeros(5, dtype=int)}, ValueError, r"shape \(5,\).*\(4, 3\)"),
    ({"target": np.zeros(4)}, ValueError, "probability targets"),
    ({"target": np.zeros((4, 3), dtype=complex)}, TypeError, "complex"),
    ({"target": np.array(["a"] * 4)}, TypeError, "dtype"),
    ({"target": np.zeros(4, dtype=bool)}, TypeError, "bool"),
    ({"target": np.array([0, 1, 3, 2])}, IndexError, r"target 3 at position \(2,\)"),
    ({"target": np.array([0, -1, 2, 2])}, IndexError, r"target -1 at position \(1,\)"),
    ({"target": np.array([0, 10**15, 2, -10**12])}, IndexError, "target 1000000000000000"),
    ({"target": np.array([0, 2**63 + 5, 1, 2], dtype=np.uint64)}, IndexError,
     "9223372036854775813"),
    ({"weight": np.ones(4)}, ValueError, r"weight must have shape \(3,\)"),
    ({"weight": np.array([1.0, -1.0, 1.0])}, ValueError, "non-negative"),
    ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
    ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ({"label_smoothing": float("nan")}, ValueError, "label_smoothing"),
    ({"reduction": "avg"}, ValueError, "reduction"),
    ({"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
    ({"sample_weight": -np.ones(4)}, ValueError, "sample_weight"),
    ({"axis": (0, 1)}, TypeError, "axis"),
    ({"ignore_index": 1.5}, TypeError, "ignore_index"),
    ({"num_threads": 0}, ValueError, "num_threads"),
    ({"normalizer": 2.0, "reduction": "sum"}, ValueError, "normalizer"),
    ({"normalizer": -1.0}, ValueError, "normalizer"),
    ({"normalizer": float("inf")}, ValueError, "normalizer"),
    ({"normalizer": "2"}, TypeError, "normalizer"),
    ({"normalizer": True}, TypeError, "normalizer"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD, ids=[str(i) for i in range(len(BAD))])
@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_bad_input_raises(kwargs, exc, match, impl):
    func = fs.cross_entropy if impl == "compiled" else _reference.cross_entropy
    kw = {"target": np.array([0, 1, 2, 0])}
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        func(np.zeros((4, 3)), **kw)


def test_kernel_never_reads_outside_the_row():
    # the kernel treats any index outside [0, n) as an ignored row
    x = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([-(2**62), 3, 2**62, 1], dtype=np.int64)
    loss = np.full(4, np.nan)
    grad = np.full((4, 3), np.nan)
    _runtime.kernels.cross_entropy(logits=x.reshape(-1), target=t, target_probs=None, weight=None,
                                   weight_sum=3.0, label_smoothing=0.0, row_scale=None,
                                   scale=1.0, loss=loss, grad=grad.reshape(-1), n_rows=4, n=3,
                                   num_threads=1, stream=False)
    assert (loss[:3] == 0).all() and (grad[:3] == 0).all()
    np.testing.assert_allclose(loss[3], fs.cross_entropy(x[3], np.int64(1)), rtol=1e-15)


@pytest.mark.parametrize("n", [10, 301, 70001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_streamed_gradient_matches(n, dtype, simd, num_threads):
    # large outputs are written with non-temporal stores from a per-thread
    # scratch row; on a small input that path must give the same gradient bits
    # (the losses' sums may differ in order: streaming starts at an aligned lane)
    rng = np.random.default_rng(n)
    n_rows = 5
    x = rng.standard_normal((n_rows, n)).astype(dtype)
    t = rng.integers(0, n, n_rows).astype(np.int64)
    t[1] = -1
    q = rng.random((n_rows, n)).astype(dtype)
    w = rng.uniform(0.5, 2, n).astype(dtype)
    sw = rng.uniform(0.5, 2, n_rows)
    for soft, weight, eps in itertools.product((False, True), (None, w), (0.0, 0.2)):
        out = []
        for stream in (False, True):
            loss = np.empty(n_rows)
            # offset the gradient by one element so the streamed rows start unaligned
            buf = np.empty(n_rows * n + 1, dtype=dtype)
            grad = buf[1:]
            _runtime.kernels.cross_entropy(
                logits=x.reshape(-1), target=None if soft else t,
                target_probs=q.reshape(-1) if soft else None, weight=weight,
                weight_sum=float(n if weight is None else weight.sum()), label_smoothing=eps,
                row_scale=sw, scale=0.5, loss=loss, grad=grad, n_rows=n_rows, n=n,
                num_threads=num_threads, stream=stream)
            out.append((loss, grad.reshape(n_rows, n).copy()))
        _assert_close(out[1][0], out[0][0], dtype, "streamed loss vs cached")
        np.testing.assert_array_equal(out[0][1], out[1][1])
        ref_loss, ref_grad = _reference.cross_entropy(
            x, q if soft else np.where(t < 0, -100, t), weight=weight, label_smoothing=eps,
            reduction="none", return_grad=True)
        _assert_close(out[1][0], ref_loss.astype(np.float64), dtype, "streamed loss")
        scale = (0.5 * sw)[:, None]
        _assert_close(out[1][1], ref_grad.astype(np.float64) * scale, dtype, "streamed grad")


@pytest.mark.parametrize("ignore_index", [-100, 0, 2, 7, 2**40])
@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.uint8, np.uint64])
def test_ignore_index_anywhere(ignore_index, tdtype):
    # ignore_index below, inside or above the class range, in any integer dtype
    if (ignore_index < 0 and np.dtype(tdtype).kind == "u") or \
            ignore_index > np.iinfo(tdtype).max:
        pytest.skip("ignore_index not representable in the target dtype")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4))
    t = rng.integers(0, 4, 12)
    t[[1, 5, 6]] = ignore_index
    t = t.astype(tdtype)
    w = np.array([0.5, 1.0, 2.0, 3.0])
    for reduction in REDUCTIONS:
        kw = {"weight": w, "ignore_index": ignore_index, "reduction": reduction,
              "label_smoothing": 0.1}
        loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
        r_loss, r_grad = _reference.cross_entropy(x, t, return_grad=True, **kw)
        t_loss, t_grad = torch_cross_entropy(x, t.astype(np.int64), weight=w,
                                             ignore_index=ignore_index, reduction=reduction,
                                             label_smoothing=0.1)
        for actual, desired in ((loss, r_loss), (grad, r_grad), (loss, t_loss), (grad, t_grad)):
            _assert_close(actual, desired, np.float64, f"ignore_index={ignore_index}")


@pytest.mark.parametrize("layout", ["rows", "class_axis_contiguous", "F"])
def test_gradient_into_out(layout, simd, num_threads):
    # out= receives the gradient: written in place when its class axis is
    # contiguous, copied in otherwise; either way it is what comes back
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5, 70)).astype(np.float32)
    t = rng.integers(0, 5, (6, 70))
    want_loss, want = fs.cross_entropy(x, t, axis=1, return_grad=True, num_threads=num_threads)
    out = {"rows": np.empty_like(x),
           "class_axis_contiguous": np.empty((6, 70, 5), np.float32).transpose(0, 2, 1),
           "F": np.empty_like(x, order="F")}[layout]
    loss, grad = fs.cross_entropy(x, t, axis=1, return_grad=True, out=out, num_threads=num_threads)
    assert grad is out and loss == want_loss
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("shift", [1, 5, -3])
@pytest.mark.parametrize("options", [{}, {"sample_weight": True}])
def test_gradient_into_out_overlapping_the_logits(shift, options, simd):
    # out= that overlaps the logits in part (not the logits themselves) is
    # written only after every logit is read: the same result as disjoint
    rng = np.random.default_rng(8)
    n_rows, n = 40, 7
    buf = rng.standard_normal(n_rows * n + abs(shift))
    start = max(0, -shift)
    x = buf[start:start + n_rows * n].reshape(n_rows, n)
    out = buf[start + shift:start + shift + n_rows * n].reshape(n_rows, n)
    t = rng.integers(0, n, n_rows)
    kw = {"sample_weight": rng.random(n_rows)} if options else {}
    want_loss, want = fs.cross_entropy(x.copy(), t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, out=out, **kw)
    assert grad is out and loss == want_loss
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("where", [0, 40000, 99999])
def test_targets_counted_over_threads(where):
    # the fast path counts the targets before the kernel, shared over the
    # threads past 2**15 rows: a bad target in any share is reported, and
    # ignored ones in any share leave the mean's normaliser
    rng = np.random.default_rng(9)
    x = rng.standard_normal((100000, 3)).astype(np.float32)
    t = rng.integers(0, 3, 100000)
    t[where] = 3
    with pytest.raises(IndexError, match=f"position \\({where},\\)"):
        fs.cross_entropy(x, t, num_threads=2)
    t[where] = -100
    t[::7] = -100
    kept = t != -100
    loss = fs.cross_entropy(x, t, num_threads=2)
    want = fs.cross_entropy(x[kept], t[kept], reduction="sum", num_threads=1) / kept.sum()
    np.testing.assert_allclose(loss, want, rtol=1e-6)


def test_out_errors():
    x = np.zeros((4, 3))
    t = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="return_grad"):
        fs.cross_entropy(x, t, out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        fs.cross_entropy(x, t, return_grad=True, out=np.empty((3, 4)))
    with pytest.raises(TypeError, match="dtype"):
        fs.cross_entropy(x, t, return_grad=True, out=np.empty((4, 3), np.float32))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fs.cross_entropy(x, t, return_grad=True, out=ro)


@pytest.mark.parametrize("kind", ["index", "soft"])
@pytest.mark.parametrize("options", [{}, {"weight": True, "label_smoothing": 0.1},
                                     {"sample_weight": True}])
@pytest.mark.parametrize("impl", ["compiled", "reference"])
def test_chunks_with_the_batch_normalizer_add_up(kind, options, impl, simd, num_threads):
    # a batch cut into row chunks, each given the batch's normaliser: the
    # chunks' "mean" losses sum to the batch's, their gradients are its rows
    # (chunks of unequal sizes, one empty, one with every target ignored)
    rng = np.random.default_rng(11)
    x, t, ignore_index = make_case((37, 9), -1, np.float64, kind, True, 3)
    if kind == "index":
        t[5:12] = ignore_index
    kw = {"ignore_index": ignore_index, "label_smoothing": options.get("label_smoothing", 0.0)}
    if options.get("weight"):
        kw["weight"] = rng.random(9) + 0.5
    sw = rng.random(37) if options.get("sample_weight") else None
    func = fs.cross_entropy if impl == "compiled" else _reference.cross_entropy
    extra = {"num_threads": num_threads}
    want_loss, want_grad = func(x, t, sample_weight=sw, return_grad=True, **kw, **extra)
    if kind == "index":
        w = kw.get("weight", np.ones(9))
        keep = t != ignore_index
        norm = float(np.sum(np.where(keep, w[np.where(keep, t, 0)], 0) * (1 if sw is None else sw)))
    else:
        norm = float(37 if sw is None else np.sum(sw))
    total, grads = 0.0, []
    for lo, hi in ((0, 5), (5, 12), (12, 12), (12, 30), (30, 37)):
        loss, grad = func(x[lo:hi], t[lo:hi], sample_weight=None if sw is None else sw[lo:hi],
                          return_grad=True, normalizer=norm, **kw, **extra)
        total += float(loss)
        grads.append(grad)
    np.testing.assert_allclose(total, want_loss, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate(grads), want_grad, rtol=1e-12, atol=1e-15)


def test_zero_normalizer_gives_nan():
    x = np.zeros((4, 3))
    t = np.array([0, 1, 2, 0])
    for func in (fs.cross_entropy, _reference.cross_entropy):
        loss, grad = func(x, t, return_grad=True, normalizer=0)
        assert np.isnan(loss) and np.isnan(grad).all()


@pytest.mark.parametrize("ignore_index", [-(2**63), -2**31 - 1, 2**31, 2**40, 2**63 - 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_classes_extreme_ignore_index(ignore_index, dtype, simd, num_threads):
    # The one-row-per-lane kernel converts a block's int64 targets to lanes
    # at once: indices far outside the classes are ignored, in blocks where
    # ignored, special (NaN, +inf, all -inf) and ordinary rows sit side by
    # side, and in the rows left over after the last full block of lanes.
    rng = np.random.default_rng(11)
    n_rows, n = 37, 10
    x = (rng.standard_normal((n_rows, n)) * 3).astype(dtype)
    x[3, 4] = np.nan
    x[4, 0] = np.inf
    x[5] = -np.inf
    x[n_rows - 2, 1] = np.nan
    t = rng.integers(0, n, n_rows)
    t[[0, 2, 5, 17, 18, n_rows - 1]] = ignore_index
    sw = rng.random(n_rows) + 0.5
    for kw in ({"reduction": "mean"}, {"reduction": "none", "sample_weight": sw},
               {"reduction": "sum", "label_smoothing": 0.2}):
        kw = dict(kw, ignore_index=ignore_index)
        for return_grad in (False, True):
            got = fs.cross_entropy(x, t, return_grad=return_grad, num_threads=num_threads, **kw)
            want = _reference.cross_entropy(x, t, return_grad=return_grad, **kw)
            got, want = (got, want) if return_grad else ((got,), (want,))
            for a, b in zip(got, want):
                _assert_close(a, b, dtype, f"{kw} return_grad={return_grad}")


@pytest.mark.parametrize("tdtype", ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", ">i4", ">u2"])
def test_target_range_in_every_integer_dtype(tdtype):
    # the range check views signed targets as unsigned (a negative index
    # lies above the classes): every integer dtype and byte order, the bad
    # index reported by value and position, good targets as int64 ones
    x = np.random.default_rng(3).standard_normal((6, 5))
    t = np.array([0, 4, 1, 3, 2, 2])
    want = fs.cross_entropy(x, t, reduction="none")
    np.testing.assert_array_equal(fs.cross_entropy(x, t.astype(tdtype), reduction="none"), want)
    bad = [5, 127] + ([-1, -101] if np.dtype(tdtype).kind == "i" else [])
    for value in bad:
        tb = t.copy()
        tb[4] = value
        with pytest.raises(IndexError, match=rf"target {value} at position \(4,\)"):
            fs.cross_entropy(x, tb.astype(tdtype))


@pytest.mark.parametrize("n", [3, 7, 10, 16, 32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_streamed_few_classes_from_any_offset(n, dtype, simd, num_threads):
    # Streamed, the few-class kernel first takes the rows up to where a block
    # of lanes starts on a line (when some do): from every element offset of
    # the gradient, the same bits as stored through the cache, and each row's
    # loss too (only the total's order of summing changes)
    from fastsoftmax._layout import aligned_empty

    rng = np.random.default_rng(n)
    n_rows = 83
    x = (rng.standard_normal((n_rows, n)) * 3).astype(dtype)
    x[40, 1] = np.nan
    t = rng.integers(0, n, n_rows).astype(np.int64)
    t[[0, 5, 41, n_rows - 1]] = -1
    sw = rng.uniform(0.5, 2, n_rows)
    base = aligned_empty((n_rows * n + 16,), dtype)
    for offset, eps in itertools.product(range(16), (0.0, 0.2)):
        out = []
        for stream in (False, True):
            loss = np.empty(n_rows)
            grad = base[offset:offset + n_rows * n]
            total = _runtime.kernels.cross_entropy(
                logits=x.reshape(-1), target=t, target_probs=None, weight=None,
                weight_sum=float(n), label_smoothing=eps, row_scale=sw, scale=0.5, loss=loss,
                grad=grad, n_rows=n_rows, n=n, num_threads=num_threads, stream=stream)
            out.append((total, loss, grad.reshape(n_rows, n).copy()))
        what = f"offset {offset}, eps {eps}"
        np.testing.assert_array_equal(out[0][2], out[1][2], err_msg=what)
        np.testing.assert_array_equal(out[0][1], out[1][1], err_msg=what)
        assert np.isnan(out[0][0]) and np.isnan(out[1][0]), what   # row 40 is NaN
        ref_loss, ref_grad = _reference.cross_entropy(
            x, np.where(t < 0, -100, t), label_smoothing=eps, reduction="none", return_grad=True)
        _assert_close(out[1][1], ref_loss.astype(np.float64), dtype, what)
        _assert_close(out[1][2], ref_grad.astype(np.float64) * (0.5 * sw)[:, None], dtype, what)
