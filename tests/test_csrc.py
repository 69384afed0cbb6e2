"""The C layer's generated declarations and dispatch table."""

import os
import subprocess
import sys

import fastsoftmax
from fastsoftmax import _runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))
GEN = os.path.join(os.path.dirname(fastsoftmax.__file__), "csrc", "gen_pxd.py")


def test_pxd_is_generated_from_the_kernel_list():
    # _csrc.pxd must be what gen_pxd.py makes of kernel_list.h today
    res = subprocess.run([sys.executable, GEN, "--check"], capture_output=True, text=True)
    assert res.returncode == 0, "fastsoftmax/_csrc.pxd is stale: run fastsoftmax/csrc/gen_pxd.py"


def test_every_kernel_of_the_list_is_reachable():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_pxd", GEN)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with open(gen.LIST) as f:
        names = [name for name, _ in gen.kernels(f.read())]
    assert names[:2] == ["softmax_rows", "softmax_cols"]
    assert "cross_entropy_rows" in names and "exp_array" in names
    with open(gen.PXD) as f:
        pxd = f.read()
    for name in names:
        assert pxd.count(f"(*{name})(") == 2, name  # float32 and float64


def test_selection_never_exceeds_the_cpu():
    best = _runtime.kernels.cpu_isa()
    previous = _runtime.current_simd()
    try:
        for level, name in enumerate(_runtime.ISA_NAMES):
            got = _runtime.kernels.select_isa(level)
            assert got == min(level, best)
            assert _runtime.kernels.current_isa() == got
    finally:
        _runtime.set_simd(previous)
