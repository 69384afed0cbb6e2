"""The type stubs (``fastsoftmax/*.pyi``, with ``py.typed``).

``mypy --strict`` accepts code written the way users write it, flags each
wrong call in a second file, and mypy's ``stubtest`` finds every stub equal
to the function or class it describes (names, parameters, defaults), so a
signature changed in a ``.py`` file without its ``.pyi`` fails here.
"""

import ast
import os
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import fastsoftmax

pytest.importorskip("mypy")

PACKAGE_DIR = os.path.dirname(os.path.abspath(fastsoftmax.__file__))

GOOD = """
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

import fastsoftmax as fs
from fastsoftmax.testing import check_gradient, numerical_gradient


def probabilities(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return fs.softmax(x, axis=-1, num_threads=2)


def log_probabilities(x: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    return fs.log_softmax(x, axis=(0, 1), where=mask)


def into(x: NDArray[np.float32], out: NDArray[np.float32]) -> NDArray[np.float32]:
    return fs.softmax(x, out=out)


def as_float32(x: list[float]) -> NDArray[np.float32]:
    return fs.softmax(x, dtype=np.float32)


def backward(dy: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    y, logp = fs.softmax(x), fs.log_softmax(x)
    jacobian: NDArray[np.float64] = fs.softmax_jacobian(y)
    assert jacobian.shape == y.shape + y.shape[-1:]
    return fs.softmax_backward(dy, y) + fs.log_softmax_backward(dy, logp)


def scores(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return fs.logsumexp(x, axis=-1, keepdims=True)


def total(x: NDArray[np.float64]) -> float:
    return float(fs.logsumexp(x, axis=None))


def signed(x: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[Any]:
    res, sign = fs.logsumexp(x, b=b, keepdims=True, return_sign=True)
    return res * sign


def like_scipy(x: NDArray[np.float32]) -> NDArray[np.float32]:
    from fastsoftmax import special

    r, sign = special.logsumexp(x, axis=0, b=x, return_sign=True)
    print(float(special.logsumexp([1.0, 2.0])), r, sign, special.log_softmax(x))
    return special.softmax(x, axis=-1)


def step(logits: NDArray[np.float64], target: NDArray[np.int64]) -> tuple[float, NDArray[Any]]:
    loss, grad = fs.cross_entropy(logits, target, weight=np.ones(logits.shape[-1]),
                                  label_smoothing=0.1, return_grad=True)
    per_sample = fs.cross_entropy(logits, target, reduction="none")
    _, grad = fs.cross_entropy(logits, target, return_grad=True, out=np.empty_like(logits))
    return float(loss) + float(per_sample.sum()), grad


def layers(x: NDArray[np.float64], target: NDArray[np.int64]) -> NDArray[Any]:
    head = fs.Softmax(axis=-1)
    y = head.forward(x)
    dx = head.backward(np.ones_like(y))
    loss_layer = fs.CrossEntropyLoss(reduction="sum", ignore_index=-1)
    loss = loss_layer(fs.LogSoftmax()(x), target)
    print(float(loss))
    return dx + loss_layer.backward(2.0)


def gradient_check() -> bool:
    f = lambda v: float(np.sum(fs.logsumexp(v)))
    g = numerical_gradient(f, np.ones(3), eps=1e-6)
    report = check_gradient(f, lambda v: fs.softmax(v), np.ones(3))
    return bool(report["passed"]) and g.shape == (3,)


def config() -> str:
    fs.show_config()
    return str(fs.get_config()["simd"]) + fs.__version__
"""

# Each line marked "# E" must get an error, and no other line.
BAD = """
import numpy as np
from numpy.typing import NDArray

import fastsoftmax as fs

x = np.zeros((4, 3))
fs.softmax(x, axis="last")  # E
fs.softmax(x, num_threads=2.5)  # E
fs.log_softmax(x, -1, None)  # E
labels: NDArray[np.int64] = fs.softmax(x)  # E
fs.logsumexp(x, keepdims="yes")  # E
fs.softmax_backward(x)  # E
fs.softmax_jacobian(x, axis=(0, 1))  # E
fs.cross_entropy(x, np.zeros(4, np.int64), reduction="avg")  # E
loss: NDArray[np.float64] = fs.cross_entropy(x, np.zeros(4, np.int64))  # E
fs.Softmax(-1).forward()  # E
fs.CrossEntropyLoss(reduction="average")  # E
fs.show_config(verbose=True)  # E
fs.no_such_function(x)  # E
fs.special.softmax(x, -1, 2)  # E
fs.special.logsumexp(x, where=x > 0)  # E
"""


def _mypy_cwd(tmp_path):
    """Where to run mypy so that it finds this fastsoftmax: an installed one
    through site-packages (PEP 561), a source tree or editable install from
    the folder that holds it."""
    parent = os.path.dirname(PACKAGE_DIR)
    if os.path.basename(parent) in ("site-packages", "dist-packages"):
        return str(tmp_path)
    return parent


def _mypy(args, tmp_path, module="mypy"):
    cmd = [sys.executable, "-m", module] + args
    return subprocess.run(cmd, cwd=_mypy_cwd(tmp_path), capture_output=True, text=True,
                          timeout=600)


def test_mypy_strict_accepts_user_code_and_flags_wrong_calls(tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(textwrap.dedent(GOOD))
    bad.write_text(textwrap.dedent(BAD))
    res = _mypy(["--strict", "--show-error-codes", "--no-error-summary", "--cache-dir",
                 str(tmp_path / "cache"), str(good), str(bad)], tmp_path)
    # mypy names the files as given or relative to where it runs
    errors = [line.split(":", 2) for line in res.stdout.splitlines() if ": error:" in line]
    good_errors = [":".join(e) for e in errors if os.path.basename(e[0]) == good.name]
    assert not good_errors, "\n".join(good_errors)
    flagged = {int(e[1]) for e in errors if os.path.basename(e[0]) == bad.name}
    marked = {i for i, line in enumerate(bad.read_text().splitlines(), 1) if line.endswith("# E")}
    assert flagged == marked, (
        f"lines marked as wrong: {sorted(marked)}, lines mypy flagged: {sorted(flagged)}\n"
        + res.stdout + res.stderr)


def _stub_modules():
    """The modules with stubs: those __init__.pyi takes the public names
    from, and every public submodule (which must have one)."""
    with open(os.path.join(PACKAGE_DIR, "__init__.pyi")) as f:
        tree = ast.parse(f.read())
    stubbed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            # "from ._forward import ..." or "from . import special"
            stubbed.update([node.module] if node.module else [a.name for a in node.names])
    public = {info.name for info in pkgutil.iter_modules([PACKAGE_DIR])
              if not info.name.startswith("_")}
    return sorted(stubbed | public)


def test_every_public_module_has_a_stub():
    missing = [m for m in _stub_modules()
               if not os.path.exists(os.path.join(PACKAGE_DIR, m + ".pyi"))]
    assert not missing, f"no stub for fastsoftmax.{missing}: add fastsoftmax/<module>.pyi"


def test_stub_exports_the_public_names():
    with open(os.path.join(PACKAGE_DIR, "__init__.pyi")) as f:
        tree = ast.parse(f.read())
    stub_all = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets))
    assert sorted(stub_all) == sorted(fastsoftmax.__all__), "update fastsoftmax/__init__.pyi"


def test_stubs_match_the_runtime(tmp_path):
    modules = ["fastsoftmax." + m for m in _stub_modules()]
    res = _mypy(modules, tmp_path, module="mypy.stubtest")
    assert res.returncode == 0, (
        "a stub differs from its module: update the .pyi beside it\n" + res.stdout + res.stderr)
