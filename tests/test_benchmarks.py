"""The asv benchmarks run, and each one times the function it is named after.

Every benchmark class in ``asv_benchmarks/benchmarks`` is run once per
parameter combination on tiny inputs: ``setup``, then each benchmark method.
Meanwhile every public function of fastsoftmax (and its NumPy twin in
``_reference``) is replaced by a counting wrapper, so a benchmark that calls
the wrong function, or none, fails here.
"""

import functools
import importlib
import inspect
import itertools
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _reference

BENCH_ROOT = Path(__file__).resolve().parent.parent / "asv_benchmarks"
PUBLIC = ["softmax", "log_softmax", "logsumexp", "softmax_backward",
          "log_softmax_backward", "cross_entropy"]
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
    return common, classes


COMMON, CLASSES = _load_benchmarks()


def _tiny(shape, axis):
    """The case's layout (ndim, reduced axis) with every length at most 7."""
    return tuple(min(n, 5 + i) for i, n in enumerate(shape)), axis


def _combinations():
    for cls_name, cls in sorted(CLASSES.items()):
        for combo in itertools.product(*cls.params):
            yield pytest.param(cls, combo, id=f"{cls_name}-" + "-".join(map(str, combo)))


def test_every_public_function_is_benchmarked():
    benchmarked = {f for cls in CLASSES.values() for f in cls.params[0]}
    assert set(PUBLIC) <= benchmarked


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
    for name, (shape, axis) in list(COMMON.CASES.items()):
        monkeypatch.setitem(COMMON.CASES, name, _tiny(shape, axis))
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
        bench.setup(*combo)
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
