"""One generator of awkward cases for every function (the bottleneck way).

``cases(name)`` yields the calls to make to ``fastsoftmax.<name>`` and to its
NumPy twin ``fastsoftmax._reference.<name>``: forward (softmax, log_softmax,
logsumexp), backward (softmax_backward, log_softmax_backward) and the fused
cross_entropy.  The tests call both with the same arguments and compare.

Every family walks the whole product ``LAYOUTS x DTYPES``, so every layout
meets every dtype in every family, and draws a few cases per cell: the shape
and axis, the values, the mask and the options come from shuffled cycles
through their lists (every one is used, evenly), seeded, so the sample of the
full product is the same on every run.  cross_entropy also gets every
combination of its options on plain float32/float64 rows.  ``test_cases.py``
checks the coverage.
"""

import functools
import itertools
from typing import NamedTuple

import numpy as np

from fastsoftmax import _reference

SHAPES = [(), (1,), (7,), (3, 5), (4, 1), (1, 9), (2, 3, 4), (3, 17, 5), (2, 1, 33), (5, 0), (0, 3),
          (6, 40), (3, 300)]
LAYOUTS = ["C", "F", "transposed", "strided", "reversed", "byteswapped", "readonly"]
DTYPES = [np.float64, np.float32, np.float16, np.int32, np.bool_]
VALUES = ["normal", "large", "nan", "posinf", "neginf", "neginf_row", "lanes"]
# random; a fully masked row; one mask row for all; a causal mask over the
# last two axes (broadcast over the leading ones); one entry left per row;
# random with NaN, inf and huge values in the masked-out entries
MASKS = ["none", "random", "row", "broadcast", "causal", "one", "poisoned"]

FORWARD = ("softmax", "log_softmax", "logsumexp")
BACKWARD = ("softmax_backward", "log_softmax_backward")
FUNCTIONS = FORWARD + BACKWARD + ("cross_entropy",)

# cross_entropy's options
TARGETS = ("index", "soft")
TARGET_DTYPES = (np.int64, np.int32, np.int16, np.uint8)
# no sample ignored, ignore_index=-100 on some samples, a real class ignored
IGNORES = ("none", "default", "class")
WEIGHTS = ("none", "uniform", "some_zero")
SMOOTHING = (0.0, 0.3, 1.0)
REDUCTIONS = ("mean", "sum", "none")
SAMPLE_WEIGHTS = ("none", "uniform")
# (logits shape, class axis) for the full option grid on plain inputs: 1-D
# with a scalar target, rows, (N, C, d) with the class axis in the middle and
# last, rows crossing the kernels' 256-element blocks and vector tails, and
# rows longer than the cached two-pass limit.
GRID_SHAPES = [((13,), -1), ((9, 7), -1), ((9, 7), 1), ((4, 7, 3), 1), ((4, 3, 7), -1),
               ((5, 301), -1), ((2, 3, 37), 1), ((1, 70001), -1)]

# Few classes: rows of n classes, n_rows of them, for the kernels that hold
# one row per vector lane (16 float32 rows to an AVX-512 vector, 4 float64
# rows to an AVX2 one): every n on both sides of 16 and of the 32-class
# limit, and batches short of a vector, crossing one, and split unevenly
# between two threads.  Every (n, n_rows) in float32 and float64.
FEW_CLASSES = (1, 2, 3, 7, 10, 16, 17, 31, 32, 33)
FEW_ROWS = (1, 15, 17, 1000, 4099)
FEW_DTYPES = (np.float32, np.float64)
# lanes first: special rows beside ordinary ones in the same vector
FEW_VALUES = ("lanes", "normal", "large", "nan", "neginf")

# cases drawn per (layout, dtype) cell
PER_CELL = {"forward": 10, "backward": 6, "cross_entropy": 4}


class Case(NamedTuple):
    """One call: ``f(*args, **kwargs)``; ``factors`` says what was drawn."""
    id: str
    args: tuple
    kwargs: dict
    factors: dict


def axes_for(ndim):
    """Every form of ``axis``: ints (negative too), tuples, () and None."""
    out = [-1, None]
    if ndim >= 1:
        out += [0, ()]
    if ndim >= 2:
        out += [(0, ndim - 1), 1]
    if ndim >= 3:
        out += [(0, 2), (1, 2)]
    return out


def class_axes_for(ndim):
    """cross_entropy's class axis: one int, negative or not."""
    return [-1, *range(ndim)]


COMBOS = [(shape, axis) for shape in SHAPES for axis in axes_for(len(shape))]
# classes along the axis: logits with no class at all are tested on their own
CLASS_COMBOS = [(shape, axis) for shape in SHAPES if shape
                for axis in class_axes_for(len(shape)) if shape[axis] > 0]


def make_values(shape, kind, rng):
    """Random values of one ``VALUES`` kind."""
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
    elif kind == "lanes":
        # one special row per kind among ordinary ones, at rows that share
        # a vector when rows are vector lanes; the last row too
        rows = x.reshape(-1, x.shape[-1]) if x.ndim >= 2 else x.reshape(1, -1)
        specials = {1: "nan", 4: "posinf", 6: "all_neginf", 9: "all_posinf", 13: "neginf",
                    len(rows) - 1: "nan"}
        for r, what in specials.items():
            if r >= len(rows):
                continue
            c = rng.integers(rows.shape[1])
            if what == "nan":
                rows[r, c] = np.nan
            elif what == "posinf":
                rows[r, c] = np.inf
            elif what == "neginf":
                rows[r, c] = -np.inf
            else:
                rows[r] = np.inf if what == "all_posinf" else -np.inf
    return x


def cast(x, dtype):
    """``x`` as ``dtype``; integers and bools from finite values."""
    if dtype == np.bool_:
        return np.asarray(x > 0)
    if np.dtype(dtype).kind in "iu":
        return np.nan_to_num(x, nan=0, posinf=50, neginf=-50).astype(dtype)
    return np.asarray(x, dtype=dtype)


def apply_layout(x, layout):
    """The values of ``x`` in one of ``LAYOUTS`` (a copy or a view)."""
    x = np.asarray(x)
    if layout == "byteswapped":
        return x.astype(x.dtype.newbyteorder("S"))
    if layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
        return x
    if layout == "C" or x.ndim == 0:
        return np.array(x, order="C")       # (np.ascontiguousarray makes 0-d 1-d)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "transposed":
        return np.ascontiguousarray(x.T).T
    if layout == "strided":
        return np.repeat(x, 2, axis=-1)[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    raise ValueError(layout)


def make_mask(shape, kind, rng):
    """A ``where=`` mask of one ``MASKS`` kind (None for "none")."""
    if kind in ("random", "poisoned"):
        return rng.random(shape) < 0.7
    if kind == "row" and len(shape) >= 2 and shape[0] > 0:
        where = np.ones(shape, bool)
        where[0] = False          # a fully masked row (or slab)
        return where
    if kind == "broadcast" and len(shape) >= 1:
        return rng.random(shape[-1:]) < 0.6
    if kind == "causal" and len(shape) >= 2:
        return np.tri(*shape[-2:], dtype=bool)      # (L, L) for (..., L, L)
    if kind == "one" and len(shape) >= 1:
        idx = rng.integers(0, max(1, shape[-1]), shape[:-1])
        return np.arange(shape[-1]) == idx[..., None]
    return None


def poison(x, where):
    """``x`` with NaN, +inf and huge values (3e4: exp overflows in every
    dtype, float16 holds it) in the entries ``where`` masks out:
    none of them may reach a result."""
    x = np.array(x, dtype=np.float64)
    out = ~np.broadcast_to(where, x.shape)
    x[out] = np.resize([np.nan, np.inf, 3e4, -np.inf], int(out.sum()))
    return x


def make_grad(shape, dtype, rng):
    """An upstream gradient of ``dtype``."""
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-3, 4, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _shuffled_cycle(items, rng):
    """Each item once in a random order, again and again: even coverage."""
    while True:
        for i in rng.permutation(len(items)):
            yield items[i]


def _cells(per_cell):
    for layout, dtype in itertools.product(LAYOUTS, DTYPES):
        for _ in range(per_cell):
            yield layout, np.dtype(dtype)


def _forward_cases(name, seed=0):
    rng = np.random.default_rng(seed)
    combos, values, masks = (_shuffled_cycle(v, rng) for v in (COMBOS, VALUES, MASKS))
    for i, (layout, dtype) in enumerate(_cells(PER_CELL["forward"])):
        (shape, axis), kind, mask = next(combos), next(values), next(masks)
        where = make_mask(shape, mask, rng)
        x = make_values(shape, kind, rng)
        if mask == "poisoned":
            x = poison(x, where)
        x = apply_layout(cast(x, dtype), layout)
        kwargs = {"where": where}
        if name == "logsumexp" and i % 2:
            kwargs["keepdims"] = True
        factors = {"layout": layout, "dtype": dtype.name, "values": kind, "mask": mask,
                   "shape": shape, "axis": axis}
        yield Case(_name(factors), (x, axis), kwargs, factors)


def _few_class_cases(name, seed=3):
    """Rows of few classes (``FEW_CLASSES`` x ``FEW_ROWS`` in each of
    ``FEW_DTYPES``), C-contiguous along the last axis, values and masks
    cycled; ``factors["part"]`` is ``"few_classes"``."""
    rng = np.random.default_rng(seed)
    values, masks = _shuffled_cycle(FEW_VALUES, rng), _shuffled_cycle(MASKS, rng)
    for n, n_rows, dtype in itertools.product(FEW_CLASSES, FEW_ROWS, map(np.dtype, FEW_DTYPES)):
        shape, kind, mask = (n_rows, n), next(values), next(masks)
        x = cast(make_values(shape, kind, rng), dtype)
        factors = {"part": "few_classes", "layout": "C", "dtype": dtype.name, "values": kind,
                   "mask": mask, "shape": shape, "axis": -1}
        yield Case(_name(factors), (x, -1), {"where": make_mask(shape, mask, rng)}, factors)


def _backward_cases(name, seed=1):
    """(grad_output, output) pairs: the output is the reference forward's,
    under the same mask; grad_output takes the cell's layout and dtype, the
    output a layout of its own."""
    forward = getattr(_reference, name[: -len("_backward")])
    rng = np.random.default_rng(seed)
    combos, values, masks, y_layouts = (_shuffled_cycle(v, rng)
                                        for v in (COMBOS, VALUES, MASKS, LAYOUTS))
    for layout, dtype in _cells(PER_CELL["backward"]):
        (shape, axis), kind, mask, y_layout = next(combos), next(values), next(masks), \
            next(y_layouts)
        where = make_mask(shape, mask, rng)
        x = make_values(shape, kind, rng)
        if mask == "poisoned":
            x = poison(x, where)
        x = cast(x, dtype)
        y = apply_layout(forward(x, axis, where=where), y_layout)
        dy = apply_layout(make_grad(shape, dtype, rng), layout)
        factors = {"layout": layout, "dtype": dtype.name, "values": kind, "mask": mask,
                   "shape": shape, "axis": axis, "output_layout": y_layout}
        yield Case(_name(factors), (dy, y, axis), {"where": where}, factors)


def _cross_entropy_case(rng, shape, axis, dtype, layout, kind, target, target_dtype, ignore,
                        weight, smoothing, reduction, sample_weight, part):
    """The call for one choice of every cross_entropy factor."""
    logits = cast(make_values(shape, kind, rng), dtype)
    n = shape[axis]
    sample_shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    ignore_index = -100
    if target == "soft":
        q = rng.random(shape)
        soft_dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        t = (q / q.sum(axis=axis, keepdims=True)).astype(soft_dtype)
    else:
        t = rng.integers(0, n, size=sample_shape)
        if ignore == "class":
            ignore_index = int(rng.integers(n))   # a real class: never read
        if ignore != "none":
            t = np.where(rng.random(sample_shape) < 0.3, ignore_index, t)
        t = np.asarray(t).astype(target_dtype)
    compute = dtype if dtype.kind == "f" else np.dtype(np.float64)
    w = None
    if weight != "none":
        w = rng.uniform(0.2, 2.0, n).astype(compute)
        if weight == "some_zero":
            w[rng.random(n) < 0.3] = 0.0
        w = apply_layout(w, layout)
    sw = None
    if sample_weight != "none":
        sw = apply_layout(rng.uniform(0, 3, sample_shape), layout)
    kwargs = {"weight": w, "sample_weight": sw, "ignore_index": ignore_index,
              "reduction": reduction, "label_smoothing": smoothing}
    factors = {"part": part, "layout": layout, "dtype": dtype.name, "values": kind,
               "shape": shape, "axis": axis, "target": target,
               "target_dtype": np.dtype(t.dtype).name, "ignore": ignore, "weight": weight,
               "label_smoothing": smoothing, "reduction": reduction,
               "sample_weight": sample_weight}
    args = (apply_layout(logits, layout), apply_layout(t, layout), axis)
    return Case(_name(factors), args, kwargs, factors)


def _cross_entropy_cases(seed=2):
    """Every option combination on plain float32/float64 rows (the option
    grid, and sample weights on every reduction), then every layout x dtype
    cell with the options drawn."""
    rng = np.random.default_rng(seed)
    for (shape, axis), dtype, target in itertools.product(
            GRID_SHAPES, map(np.dtype, (np.float32, np.float64)), TARGETS):
        ignores = ("none", "class") if target == "index" else ("none",)
        for weight, ignore, smoothing, reduction in itertools.product(
                ("none", "uniform"), ignores, (0.0, 0.3), REDUCTIONS):
            yield _cross_entropy_case(rng, shape, axis, dtype, "C", "normal", target, np.int64,
                                      ignore, weight, smoothing, reduction, "none", "options")
    for (shape, axis), dtype, target, reduction in itertools.product(
            GRID_SHAPES[:6], map(np.dtype, (np.float32, np.float64)), TARGETS, REDUCTIONS):
        ignore = "class" if target == "index" else "none"
        yield _cross_entropy_case(rng, shape, axis, dtype, "C", "normal", target, np.int64,
                                  ignore, "uniform", 0.1, reduction, "uniform", "options")

    draws = {k: _shuffled_cycle(v, rng) for k, v in {
        "combo": CLASS_COMBOS, "values": VALUES, "target": TARGETS, "target_dtype": TARGET_DTYPES,
        "ignore": IGNORES, "weight": WEIGHTS, "smoothing": SMOOTHING, "reduction": REDUCTIONS,
        "sample_weight": SAMPLE_WEIGHTS}.items()}
    for layout, dtype in _cells(PER_CELL["cross_entropy"]):
        d = {k: next(v) for k, v in draws.items()}
        (shape, axis), target_dtype, ignore = d["combo"], np.dtype(d["target_dtype"]), d["ignore"]
        if ignore == "default" and target_dtype.kind == "u":
            ignore = "class"                       # -100 is not a uint8
        yield _cross_entropy_case(rng, shape, axis, dtype, layout, d["values"], d["target"],
                                  target_dtype, ignore, d["weight"], d["smoothing"],
                                  d["reduction"], d["sample_weight"], "layouts")


def _few_class_cross_entropy_cases(seed=4):
    """cross_entropy on rows of few classes, every (n, n_rows, dtype) of
    ``_few_class_cases``, its options cycled through their lists.  Class
    indices only: the one-row-per-lane kernel's; probability targets take
    the row kernel, which the other parts cover."""
    rng = np.random.default_rng(seed)
    draws = {k: _shuffled_cycle(v, rng) for k, v in {
        "values": FEW_VALUES, "target": ("index",), "ignore": IGNORES, "weight": WEIGHTS,
        "smoothing": SMOOTHING, "reduction": REDUCTIONS,
        "sample_weight": SAMPLE_WEIGHTS}.items()}
    for n, n_rows, dtype in itertools.product(FEW_CLASSES, FEW_ROWS, map(np.dtype, FEW_DTYPES)):
        d = {k: next(v) for k, v in draws.items()}
        yield _cross_entropy_case(rng, (n_rows, n), -1, dtype, "C", d["values"], d["target"],
                                  np.int64, d["ignore"], d["weight"], d["smoothing"],
                                  d["reduction"], d["sample_weight"], "few_classes")


def _name(factors):
    return "-".join(f"{k}={v}" for k, v in factors.items())


@functools.cache
def cases(name):
    """The cases of the public function ``name``, a tuple built once."""
    if name in FORWARD:
        return tuple(_forward_cases(name)) + tuple(_few_class_cases(name))
    if name in BACKWARD:
        return tuple(_backward_cases(name))
    if name == "cross_entropy":
        return tuple(_cross_entropy_cases()) + tuple(_few_class_cross_entropy_cases())
    raise ValueError(f"no cases for {name!r}")


def tolerance(dtype):
    """assert_allclose's rtol/atol for results of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return {"rtol": 2e-3, "atol": 2e-3}
    if dtype == np.float32:
        return {"rtol": 2e-5, "atol": 2e-6}
    return {"rtol": 1e-12, "atol": 1e-13}


@functools.cache
def expected(name):
    """The NumPy twin's results on ``cases(name)``, computed once and shared
    by every SIMD path and thread count."""
    ref = getattr(_reference, name)
    return tuple(ref(*case.args, **case.kwargs) for case in cases(name))


def assert_matches(actual, desired, what):
    """Same shape and dtype, values within ``tolerance``, NaN where NaN."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, what
    assert actual.dtype == desired.dtype, what
    np.testing.assert_allclose(actual, desired, equal_nan=True, err_msg=what,
                               **tolerance(desired.dtype))
