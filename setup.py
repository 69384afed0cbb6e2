"""Build the one compiled extension, fastsoftmax._loops.

OpenMP is used when the compiler accepts it (checked by compiling a small
program); otherwise the same sources build serially.  No -march flag: the
AVX2 kernels carry their own target attributes and are chosen at run time,
so the built package runs on any CPU of its architecture.

Set FASTSOFTMAX_DEBUG=1 to build with Cython's bounds checking on.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def compiler_is_msvc():
    return sys.platform == "win32" and "GCC" not in sys.version


def openmp_flags():
    """Compile and link flags for OpenMP, or ([], []) if the compiler lacks it."""
    if os.environ.get("FASTSOFTMAX_NO_OPENMP"):
        return [], []
    if compiler_is_msvc():
        return ["/openmp"], []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    flag = ["-Xpreprocessor", "-fopenmp"] if sys.platform == "darwin" else ["-fopenmp"]
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "t.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        exe = os.path.join(tmp, "t")
        libs = ["-lomp"] if sys.platform == "darwin" else []
        ok = subprocess.call(cc + flag + [src, "-o", exe] + libs,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
        ok = ok and subprocess.call([exe]) == 0
    except OSError:
        ok = False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        print("fastsoftmax: the compiler has no OpenMP; building the serial version")
        return [], []
    return flag, flag + (["-lomp"] if sys.platform == "darwin" else [])


omp_compile, omp_link = openmp_flags()
if compiler_is_msvc():
    base_flags = ["/O2"]
else:
    # -ffp-contract=off: no fused multiply-add unless the code asks for one,
    # so the scalar and SIMD paths round where the source says they do.
    # -fschedule-insns (with register-pressure awareness) interleaves the
    # long dependency chains of consecutive exps: float64 softmax 3.9 ->
    # 3.3 ns per element on one core here.
    base_flags = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-fschedule-insns", "-fsched-pressure"]
compile_args = base_flags + omp_compile
flags_text = " ".join(compile_args).replace('"', "")

# The Cython declarations of the C API are expanded from the kernel list.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastsoftmax", "csrc"))
import gen_pxd  # noqa: E402

gen_pxd.main()

CSRC = "fastsoftmax/csrc"
extensions = [
    Extension(
        "fastsoftmax._loops",
        # every kernels_<isa>_<dtype>.c and dispatch.c: a new instruction set
        # is picked up without editing this file
        sources=["fastsoftmax/_loops.pyx"] + sorted(glob.glob(f"{CSRC}/*.c")),
        depends=sorted(glob.glob(f"{CSRC}/**/*.h", recursive=True)) + ["fastsoftmax/_csrc.pxd"],
        include_dirs=[CSRC],
        extra_compile_args=compile_args,
        extra_link_args=omp_link,
        define_macros=[("FS_BUILD_FLAGS", '"%s"' % flags_text)],
    )
]

debug = bool(os.environ.get("FASTSOFTMAX_DEBUG"))
setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": debug,
            "embedsignature": True,
        },
    ),
)
