"""The benchmarks run, and each one times the function it is named after.

Every public function (``fastsoftmax.__all__``) has a benchmark.  Every
benchmark class in ``asv_benchmarks/benchmarks`` is run once per parameter
combination on tiny inputs: ``setup``, then each benchmark method.
Meanwhile every public function of fastsoftmax (and its NumPy twin in
``_reference``) is replaced by a counting wrapper, so a benchmark that calls
the wrong function, or none, fails here.  Every peer that
``fastsoftmax._timing`` times beside fastsoftmax must compute the same
result, and ``python -m fastsoftmax bench`` and ``tools/compare_peers.py``
run on tiny inputs.
"""

import csv
import functools
import importlib
import importlib.util
import inspect
import itertools
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _reference, _timing
from fastsoftmax.__main__ import main, self_check

ROOT = Path(__file__).resolve().parent.parent
BENCH_ROOT = ROOT / "asv_benchmarks"
# The public functions, read from __all__ so that a new one needs a
# benchmark; the classes are layers over these functions, and the config
# functions compute nothing.
NOT_BENCHMARKED = {"get_config", "show_config"}
PUBLIC = [name for name in fastsoftmax.__all__
          if inspect.isfunction(getattr(fastsoftmax, name)) and name not in NOT_BENCHMARKED]
PREFIXES = ("time_", "peakmem_", "track_", "mem_")


def _load_benchmarks():
    sys.path.insert(0, str(BENCH_ROOT))
    try:
        package = importlib.import_module("benchmarks")
        modules = [importlib.import_module(f"benchmarks.{info.name}")
                   for info in pkgutil.iter_modules(package.__path__)]
    finally:
        sys.path.remove(str(BENCH_ROOT))
    common = importlib.import_module("benchmarks.common")
    classes = {}
    for module in modules:
        for name, obj in vars(module).items():
            # what asv collects: public classes with benchmark methods
            if (not name.startswith("_") and inspect.isclass(obj)
                    and obj.__module__ == module.__name__
                    and any(m.startswith(PREFIXES) for m in dir(obj))):
                classes[f"{module.__name__.split('.')[-1]}.{name}"] = obj
    return common, modules, classes


COMMON, MODULES, CLASSES = _load_benchmarks()


def _tiny(case):
    """A case (a shape, or tuples of shapes and axes) with every length at
    most 7 and the same number of dimensions; axes stay as they are."""
    if all(isinstance(n, int) for n in case):
        return tuple(min(n, 5 + i) for i, n in enumerate(case))
    return tuple(_tiny(c) if isinstance(c, tuple) else c for c in case)


def _combinations():
    for cls_name, cls in sorted(CLASSES.items()):
        for combo in itertools.product(*cls.params):
            yield pytest.param(cls, combo, id=f"{cls_name}-" + "-".join(map(str, combo)))


def test_every_public_function_is_benchmarked():
    assert {"softmax", "cross_entropy", "softmax_jacobian"} <= set(PUBLIC)
    benchmarked = {f for cls in CLASSES.values() for f in cls.params[0]}
    missing = sorted(set(PUBLIC) - benchmarked)
    assert not missing, f"public functions without a benchmark: {missing}"


def test_benchmarks_cover_the_options():
    """What users call besides the plain row-wise call has its benchmark."""
    names = {name.split(".")[-1] for name in CLASSES}
    assert {"Allocating", "Masked", "CrossEntropyOptions", "Float16", "Jacobian"} <= names
    options = CLASSES["cross_entropy.CrossEntropyOptions"].params[1]
    assert set(options) >= {"loss_only", "class_weights", "label_smoothing",
                            "probability_targets", "reduction_none", "class_axis_1"}


def test_parameters_are_named():
    for cls in CLASSES.values():
        assert cls.param_names[0] == "function"
        assert len(cls.param_names) == len(cls.params)
        assert all(len(values) > 0 for values in cls.params)


@pytest.mark.parametrize("cls, combo", list(_combinations()))
def test_benchmark_times_its_function(cls, combo, monkeypatch):
    function = combo[0]
    if not hasattr(fastsoftmax, function):
        pytest.skip(f"fastsoftmax.{function} does not exist yet")
    for module in MODULES:
        for attr, cases in vars(module).items():
            if attr.endswith("CASES") and isinstance(cases, dict):
                for name, case in list(cases.items()):
                    monkeypatch.setitem(cases, name, _tiny(case))
    monkeypatch.setattr(COMMON, "COPY_REPEAT", 1)
    monkeypatch.setattr(COMMON, "REFERENCE_REPEAT", 1)

    calls = {}

    def count_calls(module, key, name):
        original = getattr(module, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            calls[key] = calls.get(key, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for name in PUBLIC:
        if hasattr(fastsoftmax, name):
            count_calls(fastsoftmax, name, name)
        if hasattr(_reference, name):
            count_calls(_reference, "_reference." + name, name)

    methods = sorted(m for m in dir(cls) if m.startswith(PREFIXES))
    assert methods
    for method in methods:
        bench = cls()
        try:
            bench.setup(*combo)
        except NotImplementedError as exc:  # asv skips it too: a peer not installed
            pytest.skip(str(exc))
        calls.clear()
        result = getattr(bench, method)(*combo)
        # the function named by the parameter was called, and no other public one
        public_calls = {k for k in calls if not k.startswith("_reference.")}
        assert public_calls == {function}, (method, calls)
        if method == "track_ratio_to_reference" and hasattr(_reference, function):
            assert calls.get("_reference." + function, 0) >= 1, (method, calls)
        if method.startswith("track_"):
            assert getattr(cls, method).unit == "ratio"
            assert np.isfinite(result) and result > 0


def test_timing_cases_are_public_functions():
    # softmax_jacobian is timed by its own benchmark only (its output is n
    # times its input: no peer comparison at a fixed size)
    assert set(_timing.FUNCTIONS) <= set(PUBLIC)
    assert set(_timing.LINEAR_FUNCTIONS) <= set(PUBLIC)
    families = [f for functions in _timing.FAMILIES.values() for f in functions]
    assert sorted(families) == sorted(_timing.FUNCTIONS)
    assert set(_timing.FLOORS) == set(_timing.FUNCTIONS)


def _arrays(result):
    """A result, one array or a (loss, grad) pair, as a tuple of NumPy copies."""
    parts = result if isinstance(result, tuple) else (result,)
    return tuple(np.array(p.detach().numpy() if hasattr(p, "detach") else p) for p in parts)


# How a peer's result differs from fastsoftmax's on purpose: scikit-learn's
# multinomial loss gives each sample's loss and gradient, not their mean.
NORMALIZE = {"sklearn": lambda r: (r[0].mean(), r[1] / r[1].shape[0])}


@pytest.mark.parametrize("out", [True, False], ids=["out", "allocating"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("function", _timing.FUNCTIONS)
@pytest.mark.parametrize("shape, axis", [((6, 7), -1), ((5, 6, 7), 1), ((6, 7), 0)],
                         ids=["last", "middle", "first"])
def test_contenders_compute_their_function(function, shape, axis, dtype, out):
    args, kwargs = _timing.make_inputs(function, shape, axis, dtype, out=out)
    calls = _timing.contenders(function, args, kwargs, num_threads=1)
    assert {"copy", "floor", "fastsoftmax", "numpy"} <= set(calls)
    for name in ("copy", "floor"):
        calls.pop(name)()
    want = _arrays(calls.pop("fastsoftmax")())  # copies: out= is shared with the peers
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for name, call in calls.items():
        got = NORMALIZE.get(name, lambda r: r)(_arrays(call()))
        assert len(got) == len(want), name
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=name)


def test_measure_reports_the_faster_copy_as_floor():
    medians = _timing.measure("softmax", (8, 16), num_threads=1, repeat=1, peers=())
    assert set(medians) == {"copy", "floor", "fastsoftmax"}
    assert medians["floor"] <= medians["copy"]


def test_interleaved_medians_calls_each_in_turn():
    # the warm-up round in order, then each round one further on
    order = []
    calls = {name: functools.partial(order.append, name) for name in "abc"}
    medians = _timing.interleaved_medians(calls, repeat=4, warmup=1)
    assert order == list("abc" "abc" "bca" "cab" "abc")
    assert set(medians) == set("abc") and all(t >= 0 for t in medians.values())


def test_threshold_yields_both_thread_counts():
    rows = list(_timing.threshold(num_threads=2, repeat=1, log2_sizes=range(6, 8)))
    assert [size for size, _, _ in rows] == [64, 128]
    assert all(t1 > 0 and tn > 0 for _, t1, tn in rows)


def test_self_check_agrees():
    n_checks, problems = self_check()
    assert n_checks > 0 and problems == []


def test_bench_command(capsys):
    functions = ",".join(_timing.FUNCTIONS)
    assert main(["bench", "--functions", functions, "--shapes", "6x7,3x4x5",
                 "--dtypes", "float32,float64", "--repeats", "1", "--threads", "2"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2 * 2 * len(_timing.FUNCTIONS)
    assert "fastsoftmax/floor" in table[0] and "numpy/copy" in table[0]
    assert {line.split("|")[1].strip() for line in table[1:]} == set(_timing.FUNCTIONS)


def test_compare_peers_script(tmp_path):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("compare_peers",
                                                  ROOT / "tools" / "compare_peers.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--quick", "--size", "1024", "--repeat", "1",
                        "--linear-shape", "9x5x7", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "peer_comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["function"] for r in rows} == set(_timing.FUNCTIONS) | {"linear_cross_entropy"}
    rows = [r for r in rows if r["function"] != "linear_cross_entropy"]
    assert {r["n_cols"] for r in rows} == {"10", "512"}
    assert {r["library"] for r in rows} >= {"fastsoftmax", "numpy"}
    small = len(_timing.SMALL_FUNCTIONS) * len(_timing.SMALL_SHAPES)
    # the softmax family's table, the small calls', and the classifier head's
    # (fastsoftmax and PyTorch's two)
    libraries = 1 + 2 * (importlib.util.find_spec("torch") is not None)
    assert (tmp_path / "peer_comparison.md").read_text().count("\n| ") == \
        1 + 2 * 6 + 1 + small + 1 + libraries
    with open(tmp_path / "peer_small_calls.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["function"], r["shape"]) for r in rows} == {
        (f, _timing.shape_name(s)) for f in _timing.SMALL_FUNCTIONS for s in _timing.SMALL_SHAPES}
    assert {r["library"] for r in rows} >= {"fastsoftmax", "numpy"}
    assert (tmp_path / "peer_comparison.png").stat().st_size > 0


def test_linear_contenders_compute_the_head():
    args, kwargs = _timing.make_linear_inputs((9, 5, 7), "float64")
    calls = _timing.linear_contenders(args, kwargs, num_threads=1)
    assert {"matmuls", "fastsoftmax"} <= set(calls)
    calls.pop("matmuls")()
    loss, grads = calls.pop("fastsoftmax")()
    for name, call in calls.items():
        got_loss, got_grads = call()
        np.testing.assert_allclose(got_loss.detach().numpy(), loss, rtol=1e-12, err_msg=name)
        for g, w in zip(got_grads, grads):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_linear_peak_memory_is_measured():
    assert abs(_timing.linear_peak_memory("fastsoftmax", (9, 5, 7), "float32", 1)) < 16 << 20
