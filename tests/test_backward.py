"""softmax_backward, log_softmax_backward, softmax_jacobian, the layers and
the gradient-checking helpers."""

import numpy as np
import pytest
from cases import BACKWARD, assert_matches, cases, expected, tolerance

import fastsoftmax as fs
from fastsoftmax.testing import check_gradient, numerical_gradient


@pytest.mark.parametrize("name", BACKWARD)
def test_against_reference(name, simd, num_threads):
    fast = getattr(fs, name)
    for case, desired in zip(cases(name), expected(name)):
        actual = fast(*case.args, **case.kwargs, num_threads=num_threads)
        assert_matches(actual, desired, case.id)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((5, 9), -1), ((5, 9), 0), ((3, 300, 4), 1),
                                        ((2, 3, 4), (0, 2)), ((4, 5), None), ((3, 70001), -1)])
def test_against_torch_autograd(dtype, shape, axis, simd):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    dims = tuple(range(len(shape))) if axis is None else axis
    # torch runs in float64: its float32 sums over long rows are the less
    # accurate side (ours are carried in double)
    for forward, backward, tfun in [(fs.softmax, fs.softmax_backward, torch.softmax),
                                    (fs.log_softmax, fs.log_softmax_backward, torch.log_softmax)]:
        xt = torch.tensor(x.astype(np.float64), requires_grad=True)
        if isinstance(dims, tuple):
            # torch takes one dim: flatten the softmax axes to the end
            perm = [d for d in range(len(shape)) if d not in dims] + list(dims)
            moved = xt.permute(perm)
            flat = moved.reshape(*moved.shape[: len(shape) - len(dims)], -1)
            yt = tfun(flat, -1).reshape(moved.shape).permute(tuple(np.argsort(perm)))
        else:
            yt = tfun(xt, dims)
        yt.backward(torch.tensor(dy.astype(np.float64)))
        y = forward(x, axis)
        np.testing.assert_allclose(y, yt.detach().numpy(), **tolerance(dtype))
        np.testing.assert_allclose(backward(dy, y, axis), xt.grad.numpy(), **tolerance(dtype))


def _losses(rng, shape):
    target = rng.random(shape)
    weights = rng.standard_normal(shape)
    return {
        "nll": lambda p: -float(np.sum(np.log(p) * target)),
        "squared_error": lambda p: float(np.sum((p - target) ** 2)),
        "linear": lambda p: float(np.sum(p * weights)),
    }, {
        "nll": lambda p: -target / p,
        "squared_error": lambda p: 2 * (p - target),
        "linear": lambda p: weights,
    }


@pytest.mark.parametrize("shape,axis", [((6,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1),
                                        ((2, 3, 4), (0, 2)), ((3, 4), None)])
def test_softmax_gradient_by_central_differences(shape, axis, simd):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    losses, dlosses = _losses(rng, shape)
    for name in losses:
        def f(v, name=name):
            return losses[name](fs.softmax(v, axis))

        def grad(v, name=name):
            y = fs.softmax(v, axis)
            return fs.softmax_backward(dlosses[name](y), y, axis)

        report = check_gradient(f, grad, x, eps=1e-6, rtol=1e-6, atol=1e-9)
        assert report["passed"], (name, report)


@pytest.mark.parametrize("shape,axis", [((6,), -1), ((3, 5), 0), ((2, 3, 4), 1), ((3, 4), None)])
def test_log_softmax_gradient_by_central_differences(shape, axis, simd):
    rng = np.random.default_rng(sum(shape) + 1)
    x = rng.standard_normal(shape)
    target = rng.random(shape)
    weights = rng.standard_normal(shape)
    cases_ = {
        "nll": (lambda ly: -float(np.sum(ly * target)), lambda ly: -target),
        "squared_error": (lambda ly: float(np.sum(ly ** 2)), lambda ly: 2 * ly),
        "linear": (lambda ly: float(np.sum(ly * weights)), lambda ly: weights),
    }
    for name, (loss, dloss) in cases_.items():
        def f(v, loss=loss):
            return loss(fs.log_softmax(v, axis))

        def grad(v, dloss=dloss):
            ly = fs.log_softmax(v, axis)
            return fs.log_softmax_backward(dloss(ly), ly, axis)

        report = check_gradient(f, grad, x, eps=1e-6, rtol=1e-6, atol=1e-9)
        assert report["passed"], (name, report)


def test_wrong_shortcut_fails_the_gradient_check():
    """dx = dy * y * (1 - y) keeps only the Jacobian's diagonal: it is wrong
    whenever dy is not constant, and the gradient check says so."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(6)
    w = rng.standard_normal(6)

    def f(v):
        return float(np.sum(fs.softmax(v) * w))

    def wrong(v):
        y = fs.softmax(v)
        return w * y * (1 - y)

    def right(v):
        y = fs.softmax(v)
        return fs.softmax_backward(w, y)

    assert check_gradient(f, right, x)["passed"]
    bad = check_gradient(f, wrong, x)
    assert not bad["passed"] and bad["max_rel_error"] > 0.1


@pytest.mark.parametrize("shape,axis", [((5,), -1), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1)])
def test_jacobian(shape, axis):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape)
    y = fs.softmax(x, axis)
    jac = fs.softmax_jacobian(y, axis)
    n = shape[axis]
    moved = np.moveaxis(x, axis, -1)
    assert jac.shape == moved.shape + (n,)
    # against the finite-difference Jacobian, one slice at a time
    for idx in np.ndindex(moved.shape[:-1]):
        xi = moved[idx]
        numeric = np.stack([numerical_gradient(lambda v, i=i: fs.softmax(v)[i], xi)
                            for i in range(n)])
        np.testing.assert_allclose(jac[idx], numeric, atol=1e-8)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), atol=1e-15)   # symmetric
    np.testing.assert_allclose(jac.sum(-1), 0, atol=1e-15)                  # rows sum to 0
    np.testing.assert_allclose(jac.sum(-2), 0, atol=1e-15)                  # columns too
    dy = rng.standard_normal(shape)
    vjp = np.einsum("...ij,...i->...j", jac, np.moveaxis(dy, axis, -1))
    np.testing.assert_allclose(np.moveaxis(fs.softmax_backward(dy, y, axis), axis, -1), vjp,
                               atol=1e-15)


def test_constant_upstream_gradient_gives_zero(simd):
    """softmax ignores a shift of its output's loss by a constant gradient."""
    x = np.random.default_rng(2).standard_normal((4, 33))
    y = fs.softmax(x)
    np.testing.assert_allclose(fs.softmax_backward(np.full_like(x, 3.5), y), 0.0, atol=1e-14)


@pytest.mark.parametrize("f,forward", [(fs.softmax_backward, fs.softmax),
                                       (fs.log_softmax_backward, fs.log_softmax)])
def test_input_gradient_sums_to_zero(f, forward, simd):
    """Both are invariant to adding a constant to x, so dx sums to 0 per row."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 33))
    dx = f(rng.standard_normal((4, 33)), forward(x))
    np.testing.assert_allclose(dx.sum(-1), 0.0, atol=1e-13)


@pytest.mark.parametrize("log", [False, True])
def test_masked_gradient_is_exactly_zero(log, simd):
    x = np.array([[1e30, 1.0, 2.0, np.nan], [4.0, 5.0, 6.0, 7.0]])
    where = np.array([[False, True, True, False], [False, False, False, False]])
    forward = fs.log_softmax if log else fs.softmax
    backward = fs.log_softmax_backward if log else fs.softmax_backward
    y = forward(x, where=where)
    dy = np.array([[np.inf, 1.0, -1.0, np.nan], [1.0, 2.0, 3.0, 4.0]])
    dx = backward(dy, y, where=where)
    assert not np.isnan(dx).any()
    np.testing.assert_array_equal(dx[~where], 0.0)
    expected = backward(dy[0, 1:3], forward(x[0, 1:3]))
    np.testing.assert_allclose(dx[0, 1:3], expected)


def test_backward_errors_and_dtypes():
    y = fs.softmax(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        fs.softmax_backward(np.zeros((3, 2)), y)
    with pytest.raises(TypeError, match="complex"):
        fs.softmax_backward(np.zeros((2, 3), complex), y)
    y32 = y.astype(np.float32)
    assert fs.softmax_backward(np.zeros((2, 3), np.float32), y32).dtype == np.float32
    assert fs.softmax_backward(np.zeros((2, 3), np.float32), y).dtype == np.float64
    out = np.empty((2, 3))
    assert fs.log_softmax_backward(np.ones((2, 3)), np.log(y), out=out) is out
    with pytest.raises(ValueError, match="num_threads"):
        fs.softmax_backward(y, y, num_threads=0)


def test_backward_in_place(simd):
    rng = np.random.default_rng(9)
    y = fs.softmax(rng.standard_normal((5, 40)), axis=0)
    dy = rng.standard_normal((5, 40))
    expected = fs.softmax_backward(dy, y, axis=0)
    assert fs.softmax_backward(dy, y, axis=0, out=dy) is dy
    np.testing.assert_allclose(dy, expected, rtol=1e-14)


@pytest.mark.parametrize("layer_cls,forward,backward", [
    (fs.Softmax, fs.softmax, fs.softmax_backward),
    (fs.LogSoftmax, fs.log_softmax, fs.log_softmax_backward),
])
def test_layers(layer_cls, forward, backward):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7))
    dy = rng.standard_normal((3, 7))
    layer = layer_cls(axis=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(dy)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, forward(x, 0))
    np.testing.assert_array_equal(layer.backward(dy), backward(dy, y, 0))
    assert "axis=0" in repr(layer)


def test_check_gradient_reports():
    report = check_gradient(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v + 1e-3,
                            np.array([1.0, 2.0]), rtol=1e-6)
    assert not report["passed"] and report["max_abs_error"] == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_gradient(lambda v: float(np.sum(v ** 2)), lambda v: 3 * v, np.array([1.0]),
                       raise_on_failure=True)
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(lambda v: 0.0, np.zeros(2), eps=0)
