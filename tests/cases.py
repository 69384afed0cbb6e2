"""One generator of awkward inputs for every function: layouts, dtypes,
axes, non-finite values and masks (the bottleneck way)."""

import itertools

import numpy as np

SHAPES = [(), (1,), (7,), (3, 5), (4, 1), (1, 9), (2, 3, 4), (3, 17, 5), (2, 1, 33), (5, 0), (0, 3),
          (6, 40)]
LAYOUTS = ["C", "F", "transposed", "strided", "reversed", "byteswapped", "readonly"]
DTYPES = [np.float64, np.float32, np.float16, np.int32, np.bool_]
VALUES = ["normal", "large", "nan", "posinf", "neginf", "neginf_row"]


def axes_for(ndim):
    out = [-1, None]
    if ndim >= 1:
        out.append(0)
        out.append(())
    if ndim >= 2:
        out.append((0, ndim - 1))
        out.append(1)
    if ndim >= 3:
        out.append((0, 2))
        out.append((1, 2))
    return out


def make_values(shape, kind, rng):
    x = rng.standard_normal(shape) * 3
    size = x.size
    if size == 0 or kind == "normal":
        return x
    flat = x.reshape(-1)
    if kind == "large":
        return x * 3000
    idx = rng.integers(0, size, max(1, size // 7))
    if kind == "nan":
        flat[idx] = np.nan
    elif kind == "posinf":
        flat[idx] = np.inf
    elif kind == "neginf":
        flat[idx] = -np.inf
    elif kind == "neginf_row":
        if x.ndim >= 2:
            x[0] = -np.inf
        else:
            flat[:] = -np.inf
    return x


def apply_layout(x, layout):
    if layout == "C" or x.ndim == 0:
        return np.ascontiguousarray(x)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "transposed":
        return np.ascontiguousarray(x.T).T
    if layout == "strided":
        big = np.repeat(x, 2, axis=-1)
        return big[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if layout == "byteswapped":
        return x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<"))
    if layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
        return x
    raise ValueError(layout)


def cases(seed=0, n=400, masks=True):
    """Yield (id, x, axis, where) tuples, a fixed sample of the full product."""
    rng = np.random.default_rng(seed)
    combos = []
    for shape in SHAPES:
        for axis in axes_for(len(shape)):
            combos.append((shape, axis))
    picked = []
    for i in range(n):
        shape, axis = combos[i % len(combos)]
        layout = LAYOUTS[rng.integers(len(LAYOUTS))]
        dtype = DTYPES[rng.integers(len(DTYPES))] if i % 3 else np.float64 if i % 2 else np.float32
        kind = VALUES[rng.integers(len(VALUES))] if i % 2 else "normal"
        mask_kind = ["none", "random", "row", "broadcast"][rng.integers(4)] if masks else "none"
        picked.append((shape, axis, layout, dtype, kind, mask_kind))
    for shape, axis, layout, dtype, kind, mask_kind in picked:
        x = make_values(shape, kind, rng)
        if dtype == np.bool_:
            x = x > 0
        elif np.dtype(dtype).kind == "i":
            x = np.nan_to_num(x, nan=0, posinf=50, neginf=-50).astype(dtype)
        else:
            x = x.astype(dtype)
        x = apply_layout(x, layout)
        where = None
        if mask_kind == "random":
            where = rng.random(shape) < 0.7
        elif mask_kind == "row" and len(shape) >= 2 and shape[0] > 0:
            where = np.ones(shape, bool)
            where[0] = False          # a fully masked row (or slab)
        elif mask_kind == "broadcast" and len(shape) >= 1:
            where = rng.random(shape[-1:]) < 0.6
        name = f"{shape}-ax{axis}-{layout}-{np.dtype(dtype).name}-{kind}-mask_{mask_kind}"
        yield name, x, axis, where


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return dict(rtol=2e-3, atol=2e-3)
    if dtype == np.float32:
        return dict(rtol=2e-5, atol=2e-6)
    return dict(rtol=1e-12, atol=1e-13)


__all__ = ["cases", "tolerance", "axes_for", "make_values", "apply_layout", "itertools"]
