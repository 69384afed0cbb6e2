"""The case generator covers what it promises: every layout, dtype, value
kind, mask, axis form and option in every family, in arrays that really are
awkward."""

import itertools

import cases as gen
import numpy as np
import pytest
from cases import FUNCTIONS, cases


def _seen(name, factor):
    return {c.factors[factor] for c in cases(name)}


def _names(items):
    return {np.dtype(d).name if isinstance(d, type) else d for d in items}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_layout_meets_every_dtype(name):
    cells = {(c.factors["layout"], c.factors["dtype"]) for c in cases(name)}
    assert cells == set(itertools.product(gen.LAYOUTS, _names(gen.DTYPES)))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_layout_on_a_real_array(name):
    # on a non-empty array of 2 or more dimensions a layout is not a no-op
    layouts = {c.factors["layout"] for c in cases(name)
               if len(c.factors["shape"]) >= 2 and 0 not in c.factors["shape"]}
    assert layouts == set(gen.LAYOUTS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_value_kind(name):
    assert _seen(name, "values") == set(gen.VALUES)


@pytest.mark.parametrize("name", gen.FORWARD + gen.BACKWARD)
def test_every_shape_axis_and_mask(name):
    assert {(c.factors["shape"], c.factors["axis"]) for c in cases(name)
            if c.factors.get("part") != "few_classes"} == set(gen.COMBOS)
    assert _seen(name, "mask") == set(gen.MASKS)
    assert any(c.args[0].ndim == 0 for c in cases(name))
    assert any(c.args[0].size == 0 for c in cases(name))
    assert any(c.kwargs["where"] is not None and c.kwargs["where"].ndim < c.args[0].ndim
               for c in cases(name))


@pytest.mark.parametrize("name", [*gen.FORWARD, "cross_entropy"])
def test_few_classes(name):
    # every row length and batch of the one-row-per-lane kernels, both dtypes,
    # special rows beside ordinary ones, and (cross_entropy) every option
    few = [c for c in cases(name) if c.factors.get("part") == "few_classes"]
    assert {(c.factors["shape"], c.factors["dtype"]) for c in few} == {
        ((rows, n), np.dtype(dtype).name) for n, rows, dtype in
        itertools.product(gen.FEW_CLASSES, gen.FEW_ROWS, gen.FEW_DTYPES)}
    assert {c.factors["values"] for c in few} == set(gen.FEW_VALUES)
    if name == "cross_entropy":
        for factor, values in [("target", ("index",)), ("ignore", gen.IGNORES),
                               ("weight", gen.WEIGHTS), ("label_smoothing", gen.SMOOTHING),
                               ("reduction", gen.REDUCTIONS),
                               ("sample_weight", gen.SAMPLE_WEIGHTS)]:
            assert {c.factors[factor] for c in few} == set(values), factor
    else:
        assert {c.factors["mask"] for c in few} == set(gen.MASKS)


def test_lanes_values_put_special_rows_among_ordinary_ones():
    x = gen.make_values((20, 10), "lanes", np.random.default_rng(0))
    nonfinite = ~np.isfinite(x).all(axis=1)
    assert set(np.flatnonzero(nonfinite)) == {1, 4, 6, 9, 13, 19}
    assert np.isnan(x[1]).any() and np.isposinf(x[4]).any() and np.isneginf(x[13]).any()
    assert np.isneginf(x[6]).all() and np.isposinf(x[9]).all()


@pytest.mark.parametrize("name", gen.BACKWARD)
def test_every_output_layout(name):
    assert _seen(name, "output_layout") == set(gen.LAYOUTS)


def test_every_cross_entropy_option():
    name = "cross_entropy"
    assert {(c.factors["shape"], c.factors["axis"]) for c in cases(name)} >= set(gen.CLASS_COMBOS)
    for factor, values in [("target", gen.TARGETS), ("ignore", gen.IGNORES),
                           ("weight", gen.WEIGHTS), ("label_smoothing", gen.SMOOTHING),
                           ("reduction", gen.REDUCTIONS), ("sample_weight", gen.SAMPLE_WEIGHTS),
                           ("target_dtype", _names(gen.TARGET_DTYPES) | {"float16", "float32",
                                                                        "float64"})]:
        assert _seen(name, factor) >= set(values), factor
    # the option grid: every combination on every plain shape
    grid = {(c.factors["shape"], c.factors["axis"], c.factors["dtype"], c.factors["target"],
             c.factors["weight"], c.factors["ignore"], c.factors["label_smoothing"],
             c.factors["reduction"]) for c in cases(name) if c.factors["part"] == "options"}
    for (shape, axis), dtype, target in itertools.product(gen.GRID_SHAPES, ("float32", "float64"),
                                                          gen.TARGETS):
        ignores = ("none", "class") if target == "index" else ("none",)
        for combo in itertools.product(("none", "uniform"), ignores, (0.0, 0.3), gen.REDUCTIONS):
            assert (shape, axis, dtype, target, *combo) in grid


def test_layouts_are_what_they_say():
    x = np.arange(12.0).reshape(3, 4)
    assert gen.apply_layout(x, "C").flags.c_contiguous
    f = gen.apply_layout(x, "F")
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    t = gen.apply_layout(x, "transposed")
    assert t.flags.f_contiguous and not t.flags.c_contiguous
    s = gen.apply_layout(x, "strided")
    assert not s.flags.c_contiguous and not s.flags.f_contiguous
    assert gen.apply_layout(x, "reversed").strides[-1] < 0
    assert not gen.apply_layout(x, "byteswapped").dtype.isnative
    assert not gen.apply_layout(x, "readonly").flags.writeable
    for layout in gen.LAYOUTS:
        np.testing.assert_array_equal(gen.apply_layout(x, layout), x)
        assert gen.apply_layout(np.float64(2.0), layout).ndim == 0


def test_cases_are_built_once():
    assert cases("softmax") is cases("softmax")
    with pytest.raises(ValueError, match="no cases"):
        cases("softmax_jacobian")
