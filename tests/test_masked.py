"""where= read by the row kernels: masks broadcast over leading axes (read
where they lie, never repeated), every row strategy (registers, in cache,
one-pass, streamed), 1 and 2 threads, every SIMD path; against the NumPy
twin and PyTorch's masked_fill + softmax.  The generator (cases.py) covers
every layout and dtype with small masked inputs."""

import numpy as np
import pytest
from cases import poison, tolerance

import fastsoftmax as fs
from fastsoftmax import _reference
from fastsoftmax._layout import Plan, mask_rows

FORWARD = ("softmax", "log_softmax", "logsumexp")


def _check(x, where, num_threads, axis=-1):
    for name in FORWARD:
        actual = getattr(fs, name)(x, axis, where=where, num_threads=num_threads)
        desired = getattr(_reference, name)(x, axis, where=where)
        np.testing.assert_allclose(actual, desired, equal_nan=True, err_msg=name,
                                   **tolerance(x.dtype))


# (x shape, mask shape): causal masks broadcast over batch and heads, a
# padding mask per batch, one mask row for all, full random masks; rows in
# registers, in cache and past the one-pass limit (70001)
BROADCASTS = [((16, 64, 64), (64, 64)), ((4, 48, 48), (1, 48, 48)),
              ((3, 4, 40, 40), (3, 1, 40, 40)), ((3, 4, 24, 40), (3, 1, 1, 40)),
              ((2, 3, 5, 6, 70), (2, 1, 5, 1, 70)), ((300, 257), (257,)),
              ((64, 1000), (64, 1000)), ((3, 70001), (3, 70001))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "mask_shape"), BROADCASTS)
def test_broadcast_masks(shape, mask_shape, dtype, simd, num_threads, rng):
    where = rng.random(mask_shape) < 0.6
    if len(mask_shape) >= 2 and mask_shape[-1] == mask_shape[-2]:
        where = np.broadcast_to(np.tri(mask_shape[-1], dtype=bool), mask_shape)
    x = poison(rng.standard_normal(shape) * 4, where).astype(dtype)
    _check(x, where, num_threads)


def test_broadcast_masks_are_not_repeated():
    """A causal (L, L) mask for (B, L, L) is read where it lies."""
    x = np.zeros((16, 64, 64), np.float32)
    where = np.broadcast_to(np.tri(64, dtype=bool), x.shape)
    rows = mask_rows(where, Plan([x], (2,)), (2,))
    assert rows.data.size == 64 * 64 and rows.strides[-1] == 64
    assert np.shares_memory(rows.data, where)
    pad = np.broadcast_to(np.ones((4, 1, 1, 64), bool), (4, 8, 64, 64))
    rows = mask_rows(pad, Plan([np.zeros(pad.shape)], (3,)), (3,))
    assert rows.dims == (1, 4, 8 * 64) and rows.strides == (0, 64, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_tail_and_row_strategy(dtype, simd, rng):
    """Row lengths around every vector width, in registers and in cache;
    rows of one entry left, of none, and of only -inf left."""
    for n in (1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 255, 257, 1000, 5000):
        x = (rng.standard_normal((6, n)) * 5).astype(dtype)
        where = rng.random((6, n)) < 0.5
        where[0] = False                                    # nothing left
        where[1] = np.arange(n) == n // 2                   # one entry left
        x[2][where[2]] = -np.inf                            # only -inf left
        x = poison(x, where).astype(dtype)
        _check(x, where, 1)


def test_rules_for_rows_with_nothing_left(simd):
    x = np.array([[np.nan, np.inf, 1e30], [1.0, -np.inf, np.nan], [-np.inf, 2.0, 3.0]])
    where = np.array([[False, False, False], [True, True, False], [True, False, False]])
    y = fs.softmax(x, where=where)
    np.testing.assert_array_equal(y[0], 0.0)               # nothing left: 0, never NaN
    np.testing.assert_array_equal(y[1], [1.0, 0.0, 0.0])   # the NaN is masked out
    np.testing.assert_array_equal(y[2], [np.nan, 0.0, 0.0])  # only -inf left: NaN, as unmasked
    ly = fs.log_softmax(x, where=where)
    np.testing.assert_array_equal(ly[0], -np.inf)
    np.testing.assert_array_equal(ly[1], [0.0, -np.inf, -np.inf])
    lse = fs.logsumexp(x, where=where)
    np.testing.assert_array_equal(lse, [-np.inf, 1.0, -np.inf])
    # an unmasked NaN or +inf still makes the row NaN, the masked-out entries 0
    x2 = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0]])
    w2 = np.array([[True, True, False], [True, False, True]])
    np.testing.assert_array_equal(fs.softmax(x2, where=w2), [[np.nan, np.nan, 0.0],
                                                            [np.nan, 0.0, np.nan]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_outputs(dtype, simd, num_threads, rng):
    """Outputs past the streaming threshold, into a buffer one element off
    (every head length), and rows too long for the scratch row."""
    x = rng.standard_normal((1100, 1001)).astype(dtype)
    where = np.broadcast_to(rng.random(1001) < 0.5, x.shape)
    buf = np.empty(x.size + 1, dtype)
    out = buf[1:].reshape(x.shape)
    for name in ("softmax", "log_softmax"):
        getattr(fs, name)(x, where=where, out=out, num_threads=num_threads)
        np.testing.assert_allclose(out, getattr(_reference, name)(x, where=where),
                                   **tolerance(dtype))
    x = rng.standard_normal((40, 70001)).astype(dtype)
    where = rng.random(x.shape) < 0.5
    _check(x, where, num_threads)


def test_other_layouts_of_the_mask(rng):
    """Masks the kernels cannot read in place are copied once as bytes:
    strided, reversed, broadcast along the axis itself; the F-ordered and
    column (inner > 1) cases too."""
    x = rng.standard_normal((30, 50))
    full = rng.random((30, 100)) < 0.5
    for where in (full[:, ::2], full[:, :50][:, ::-1], rng.random((30, 1)) < 0.5,
                  np.asfortranarray(full[:, :50])):
        _check(x, where, 2)
        _check(np.asfortranarray(x), where, 2)
        _check(x, where, 2, axis=0)
        _check(x, where, 2, axis=None)


def test_threads_give_identical_results(rng):
    x = rng.standard_normal((8, 256, 256)).astype(np.float32)
    where = np.tri(256, dtype=bool)
    for f in (fs.softmax, fs.log_softmax, fs.logsumexp):
        np.testing.assert_array_equal(f(x, where=where, num_threads=1),
                                      f(x, where=where, num_threads=2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_torch_masked_fill(dtype, simd, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 8, 96, 96)).astype(dtype)
    where = np.tri(96, dtype=bool)
    t = torch.from_numpy(x).masked_fill(~torch.from_numpy(where), float("-inf"))
    np.testing.assert_allclose(fs.softmax(x, where=where), torch.softmax(t, -1).numpy(),
                               **tolerance(dtype))
    np.testing.assert_allclose(fs.log_softmax(x, where=where),
                               torch.log_softmax(t, -1).numpy(), **tolerance(dtype))
    np.testing.assert_allclose(fs.logsumexp(x, where=where), torch.logsumexp(t, -1).numpy(),
                               **tolerance(dtype))
