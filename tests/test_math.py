"""One test per claim of the documentation's math page (docs/math.rst).

The page cites these tests by name ("checked by ``test_jacobian_symmetric``"),
so a claim and its evidence stay together.  Everything is float64, and every
analytic gradient is compared with central differences through
``fastsoftmax.testing``.  The tests of the common tutorial mistakes assert
that the wrong formula FAILS the same gradient check that the right one
passes.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax.testing import check_gradient, numerical_gradient

N = 7


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(scale=2.0, size=N)


@pytest.fixture
def dy():
    return np.random.default_rng(1).normal(size=N)


def vjp_check(dy, forward, backward_of_y, x):
    """Gradient check of L(x) = <dy, forward(x)> against backward(dy, y)."""
    y = forward(x)
    return check_gradient(lambda v: float(np.dot(dy, forward(v))), backward_of_y(dy, y), x)


def numerical_jacobian(f, x):
    """d f_i / d x_j by central differences, row i at a time."""
    y = f(x)
    return np.stack([numerical_gradient(lambda v, i=i: f(v)[i], x) for i in range(y.size)])


# ------------------------------------------------------------------ forward --

def test_softmax_is_a_probability_vector(x):
    y = fs.softmax(x)
    assert np.all(y > 0)
    assert np.isclose(y.sum(), 1.0, rtol=0, atol=1e-15)


def test_softmax_shift_invariant(x):
    for c in (-50.0, 3.0, 700.0):
        np.testing.assert_allclose(fs.softmax(x + c), fs.softmax(x), rtol=1e-12, atol=0)


def test_max_shift_avoids_overflow():
    x = np.array([1000.0, 999.0, -1000.0])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum()
    assert np.isnan(naive[0])                     # inf / inf
    y = fs.softmax(x)
    shifted = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, shifted, rtol=1e-15)


def test_log_softmax_is_x_minus_logsumexp(x):
    np.testing.assert_allclose(fs.log_softmax(x), x - fs.logsumexp(x), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(np.exp(fs.log_softmax(x)), fs.softmax(x), rtol=1e-14)


def test_logsumexp_large_inputs_finite():
    assert np.isclose(fs.logsumexp(np.array([1000.0, 1000.0])), 1000.0 + np.log(2.0))


# ---------------------------------------------------------------- Jacobian --

def test_jacobian_formula(x):
    y = fs.softmax(x)
    J = fs.softmax_jacobian(y)
    np.testing.assert_allclose(J, np.diag(y) - np.outer(y, y), rtol=1e-15, atol=1e-17)
    np.testing.assert_allclose(J, numerical_jacobian(fs.softmax, x), rtol=1e-6, atol=1e-9)


def test_jacobian_diagonal_is_y_one_minus_y(x):
    y = fs.softmax(x)
    np.testing.assert_allclose(np.diag(fs.softmax_jacobian(y)), y * (1 - y), rtol=1e-14)


def test_jacobian_off_diagonal_negative(x):
    J = fs.softmax_jacobian(fs.softmax(x))
    off = J[~np.eye(N, dtype=bool)]
    assert np.all(off < 0)


def test_jacobian_symmetric(x):
    J = fs.softmax_jacobian(fs.softmax(x))
    np.testing.assert_array_equal(J, J.T)


def test_jacobian_rows_and_columns_sum_to_zero(x):
    J = fs.softmax_jacobian(fs.softmax(x))
    np.testing.assert_allclose(J.sum(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-15)


def test_jacobian_rank_n_minus_1(x):
    J = fs.softmax_jacobian(fs.softmax(x))
    assert np.linalg.matrix_rank(J) == N - 1
    np.testing.assert_allclose(J @ np.ones(N), 0.0, atol=1e-15)


def test_jacobian_batched_shape():
    y = fs.softmax(np.random.default_rng(2).normal(size=(3, 4, 5)), axis=1)
    J = fs.softmax_jacobian(y, axis=1)
    assert J.shape == (3, 5, 4, 4)
    np.testing.assert_allclose(J[1, 2], np.diag(y[1, :, 2]) - np.outer(y[1, :, 2], y[1, :, 2]))


# -------------------------------------------------- vector-Jacobian product --

def test_vjp_equals_jacobian_transpose_product(x, dy):
    y = fs.softmax(x)
    J = fs.softmax_jacobian(y)
    np.testing.assert_allclose(fs.softmax_backward(dy, y), J.T @ dy, rtol=1e-13, atol=1e-16)


def test_vjp_formula(x, dy):
    y = fs.softmax(x)
    np.testing.assert_allclose(fs.softmax_backward(dy, y), y * (dy - np.dot(dy, y)),
                               rtol=1e-13, atol=1e-16)


def test_softmax_backward_gradient_check(x, dy):
    report = vjp_check(dy, fs.softmax, fs.softmax_backward, x)
    assert report["passed"], report


def test_softmax_backward_long_row_without_jacobian():
    # n = 2**20: the n x n Jacobian would take 8 TiB; the O(n) product is instant
    n = 1 << 20
    rng = np.random.default_rng(3)
    y = fs.softmax(rng.uniform(-20, 20, n))
    dy = rng.normal(size=n)
    np.testing.assert_allclose(fs.softmax_backward(dy, y), y * (dy - np.dot(dy, y)),
                               rtol=1e-10, atol=1e-20)


def test_constant_upstream_gradient_gives_zero(x):
    y = fs.softmax(x)
    np.testing.assert_allclose(fs.softmax_backward(np.full(N, 3.5), y), 0.0, atol=1e-15)
    # L = c * sum(softmax(x)) = c is constant, so its numerical gradient is 0 too
    num = numerical_gradient(lambda v: 3.5 * float(fs.softmax(v).sum()), x)
    np.testing.assert_allclose(num, 0.0, atol=1e-8)


def test_adding_constant_to_upstream_gradient_changes_nothing(x, dy):
    y = fs.softmax(x)
    np.testing.assert_allclose(fs.softmax_backward(dy + 10.0, y), fs.softmax_backward(dy, y),
                               rtol=1e-12, atol=1e-14)


def test_input_gradient_sums_to_zero(x, dy):
    np.testing.assert_allclose(fs.softmax_backward(dy, fs.softmax(x)).sum(), 0.0, atol=1e-15)
    np.testing.assert_allclose(fs.log_softmax_backward(dy, fs.log_softmax(x)).sum(), 0.0,
                               atol=1e-14)


# ------------------------------------------------------------- log-softmax --

def test_log_softmax_jacobian(x):
    p = fs.softmax(x)
    J = np.eye(N) - p[None, :]                    # d log p_i / d x_j = delta_ij - p_j
    np.testing.assert_allclose(J, numerical_jacobian(fs.log_softmax, x), rtol=1e-6, atol=1e-9)


def test_log_softmax_backward_formula(x, dy):
    y = fs.log_softmax(x)
    np.testing.assert_allclose(fs.log_softmax_backward(dy, y), dy - np.exp(y) * dy.sum(),
                               rtol=1e-13, atol=1e-15)


def test_log_softmax_backward_gradient_check(x, dy):
    report = vjp_check(dy, fs.log_softmax, fs.log_softmax_backward, x)
    assert report["passed"], report


# ---------------------------------------------------- the common mistakes --

def test_wrong_diagonal_only_jacobian_fails(x, dy):
    # "the derivative of softmax is y (1 - y)", applied elementwise
    report = vjp_check(dy, fs.softmax, lambda dy, y: dy * y * (1 - y), x)
    assert not report["passed"]
    assert report["max_rel_error"] > 0.1


def test_wrong_off_diagonal_sign_fails(x, dy):
    # J_ij = +y_i y_j off the diagonal instead of -y_i y_j
    def wrong(dy, y):
        J = np.outer(y, y)
        np.fill_diagonal(J, y * (1 - y))
        return J.T @ dy

    report = vjp_check(dy, fs.softmax, wrong, x)
    assert not report["passed"]
    assert report["max_rel_error"] > 0.1


def test_wrong_columns_sum_to_one_fails(x):
    # L(x) = sum_i y_i: its gradient is the vector of column sums of J.
    # "Columns sum to 1" predicts ones; the true gradient is zero.
    def f(v):
        return float(fs.softmax(v).sum())

    assert not check_gradient(f, np.ones(N), x)["passed"]
    assert check_gradient(f, fs.softmax_jacobian(fs.softmax(x)).sum(axis=0), x)["passed"]


def test_wrong_log_softmax_backward_without_sum_fails(x):
    # dx = dy - exp(y) drops the factor sum(dy); right only when sum(dy) == 1.
    # The negative log-likelihood's dy = -onehot has sum(dy) = -1: the sign flips.
    dy = -np.eye(N)[2]
    report = vjp_check(dy, fs.log_softmax, lambda dy, y: dy - np.exp(y), x)
    assert not report["passed"]
    assert report["max_rel_error"] > 0.1


# ------------------------------------------------------------ cross-entropy --

def _cross_entropy():
    if not hasattr(fs, "cross_entropy"):
        pytest.skip("fastsoftmax.cross_entropy is not available in this build")
    return fs.cross_entropy


B, C = 5, 4


@pytest.fixture
def logits():
    return np.random.default_rng(4).normal(scale=2.0, size=(B, C))


@pytest.fixture
def target():
    return np.array([0, 3, 1, 3, 2])


def ce_check(logits, target, **kw):
    """Gradient check of the reduced loss against the fused gradient."""
    ce = _cross_entropy()
    loss, grad = ce(logits, target, return_grad=True, **kw)
    report = check_gradient(lambda v: float(ce(v, target, **kw)), grad, logits)
    return loss, grad, report


def test_cross_entropy_gradient_is_softmax_minus_onehot(logits, target):
    loss, grad, report = ce_check(logits, target)
    assert report["passed"], report
    onehot = np.eye(C)[target]
    np.testing.assert_allclose(grad, (fs.softmax(logits) - onehot) / B, rtol=1e-12, atol=1e-15)
    p = fs.softmax(logits)
    assert np.isclose(loss, -np.mean(np.log(p[np.arange(B), target])), rtol=1e-13)


def test_cross_entropy_weighted_gradient(logits, target):
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    sample_weight = np.array([1.0, 0.5, 2.0, 1.0, 0.25])
    _loss, grad, report = ce_check(logits, target, weight=weight, sample_weight=sample_weight)
    assert report["passed"], report
    a = sample_weight * weight[target]            # each row's weight
    expected = a[:, None] * (fs.softmax(logits) - np.eye(C)[target]) / a.sum()
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_ignore_index_rows_get_zero_gradient(logits):
    target = np.array([0, -100, 1, 3, -100])
    _loss, grad, report = ce_check(logits, target)
    assert report["passed"], report
    np.testing.assert_array_equal(grad[[1, 4]], 0.0)
    kept = target != -100
    expected = (fs.softmax(logits[kept]) - np.eye(C)[target[kept]]) / kept.sum()
    np.testing.assert_allclose(grad[kept], expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_label_smoothing_gradient(logits, target):
    eps = 0.2
    _loss, grad, report = ce_check(logits, target, label_smoothing=eps)
    assert report["passed"], report
    q = (1 - eps) * np.eye(C)[target] + eps / C
    np.testing.assert_allclose(grad, (fs.softmax(logits) - q) / B, rtol=1e-12, atol=1e-15)


def test_cross_entropy_soft_targets_gradient(logits):
    q = fs.softmax(np.random.default_rng(5).normal(size=(B, C)))
    _loss, grad, report = ce_check(logits, q)
    assert report["passed"], report
    np.testing.assert_allclose(grad, (fs.softmax(logits) - q) / B, rtol=1e-12, atol=1e-15)


def test_cross_entropy_general_gradient(logits, target):
    # loss_i = -sum_c a_ic log p_ic  =>  d loss_i / d x_i = p_i sum_c a_ic - a_i
    weight = np.array([0.5, 2.0, 1.0, 3.0])
    eps = 0.1
    _loss, grad, report = ce_check(logits, target, weight=weight, label_smoothing=eps,
                                   reduction="sum")
    assert report["passed"], report
    a = (1 - eps) * np.eye(C)[target] * weight[target][:, None] + eps / C * weight
    expected = fs.softmax(logits) * a.sum(axis=1, keepdims=True) - a
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_reduction_none_gives_each_rows_own_gradient(logits, target):
    ce = _cross_entropy()
    losses, grad = ce(logits, target, reduction="none", return_grad=True)
    assert losses.shape == (B,)
    for i in range(B):
        num = numerical_gradient(lambda v, i=i: float(ce(v[None], target[i:i + 1],
                                                         reduction="sum")), logits[i])
        np.testing.assert_allclose(grad[i], num, rtol=1e-5, atol=1e-8)


def test_cross_entropy_gradient_rows_sum_to_zero(logits, target):
    _, grad, _ = ce_check(logits, target, label_smoothing=0.1)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)
