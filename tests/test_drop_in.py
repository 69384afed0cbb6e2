"""cross_entropy as a drop-in for torch.nn.functional.cross_entropy where
the logits hold -inf: the loss is +inf where a positive target probability
meets a -inf logit, and NaN where PyTorch's ``0 * -inf`` makes it NaN; the
gradient stays finite.  Every SIMD path, both dtypes, every reduction."""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _reference

torch = pytest.importorskip("torch")

NINF = -np.inf

# one row per situation; class axis last
LOGITS = np.array([
    [1.0, NINF, 0.5, 2.0],      # -inf where the target is positive -> +inf
    [0.2, 0.3, NINF, NINF],     # two -inf, one with a positive target -> +inf
    [0.0, 1.0, 2.0, 3.0],       # finite
    [NINF, 0.0, 1.0, -1.0],     # -inf where the target is 0 -> NaN (0 * -inf), as PyTorch
    [5.0, NINF, 4.0, 3.0],      # -inf where the target is positive -> +inf
])
PROBS = np.array([
    [0.2, 0.5, 0.3, 0.0],
    [0.5, 0.0, 0.25, 0.25],
    [0.1, 0.2, 0.3, 0.4],
    [0.0, 0.2, 0.3, 0.5],
    [0.0, 1.0, 0.0, 0.0],
])


def _torch(logits, target, axis, **kwargs):
    """PyTorch's loss and d(sum of the loss)/d(logits), class axis ``axis``."""
    x = torch.tensor(np.moveaxis(logits, axis, 1), requires_grad=True)
    t = torch.tensor(np.moveaxis(target, axis, 1) if target.dtype.kind == "f" else target)
    w = kwargs.pop("weight", None)
    loss = torch.nn.functional.cross_entropy(
        x, t, weight=None if w is None else torch.tensor(w), **kwargs)
    loss.sum().backward()
    return loss.detach().numpy(), np.moveaxis(x.grad.numpy(), 1, axis)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_targets_with_neginf_logits_match_torch(reduction, label_smoothing, weighted,
                                                            dtype, simd):
    weight = np.array([1.0, 0.5, 2.0, 1.5], dtype) if weighted else None
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing, weight=weight)
    for logits, target, axis in ((LOGITS, PROBS, -1),
                                 (np.ascontiguousarray(LOGITS.T), np.ascontiguousarray(PROBS.T), 0),
                                 (LOGITS[:3], PROBS[:3], -1)):   # no NaN row: mean and sum +inf
        logits, target = logits.astype(dtype), target.astype(dtype)
        t_loss, t_grad = _torch(logits, target, axis, **kwargs)
        for f in (fs.cross_entropy, _reference.cross_entropy):
            loss, grad = f(logits, target, axis=axis, return_grad=True, **kwargs)
            np.testing.assert_array_equal(np.isposinf(loss), np.isposinf(t_loss), err_msg=f"{f}")
            np.testing.assert_array_equal(np.isnan(loss), np.isnan(t_loss), err_msg=f"{f}")
            finite = np.isfinite(t_loss)
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(np.asarray(loss)[finite], np.asarray(t_loss)[finite],
                                       rtol=rtol)
            np.testing.assert_allclose(grad, t_grad, rtol=rtol, atol=rtol)
            assert np.isfinite(grad).all()
            # the loss alone is the same loss
            np.testing.assert_array_equal(f(logits, target, axis=axis, **kwargs), loss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_index_target_at_neginf_logit_is_posinf(dtype, simd):
    logits = LOGITS.astype(dtype)
    target = np.array([1, 2, 0, 0, 1])
    t_loss, t_grad = _torch(logits, target, -1, reduction="none")
    loss, grad = fs.cross_entropy(logits, target, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, t_loss.astype(dtype))
    assert np.isposinf(loss[[0, 1, 3, 4]]).all()
    np.testing.assert_allclose(grad, t_grad, rtol=1e-5, atol=1e-6)
