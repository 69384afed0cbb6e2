"""The setuptools extension of a copy of this folder inside another package.

A host library that holds this folder (say as ``mylib/_vendored/fastsoftmax``)
builds it from its ``setup.py`` with::

    from runpy import run_path
    setup(ext_modules=[run_path("mylib/_vendored/fastsoftmax/_vendor.py")["extension"]()])

``run_path`` loads this file alone: importing the package would import
NumPy and the extension that is not built yet.  The extension keeps its
``.pyx`` source and carries its Cython directives, which setuptools' own
``build_ext`` applies when it runs Cython (Cython must be a build
requirement); pass it to ``setup`` as it is, not through ``cythonize``.
The meson-python twin of this file is ``meson.build``.
"""

import glob
import os
import sys
import tempfile

# set once for the module; FASTSOFTMAX_DEBUG=1 turns bounds checking back on
CYTHON_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
}

# -ffp-contract=off: no fused multiply-add the source did not ask for, so the
# scalar and SIMD paths round where the source says they do.  No -march: the
# SIMD kernels carry their own target attributes and are chosen at run time.
REQUIRED_FLAGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]
# Only speed: interleaving the dependency chains of consecutive exps
# (float64 softmax 3.9 -> 3.3 ns per element on one core).  Kept where the
# compiler accepts them.
OPTIONAL_FLAGS = ["-fschedule-insns", "-fsched-pressure"]

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


def _compiler():
    from setuptools.command.build_ext import customize_compiler, new_compiler

    cc = new_compiler()
    customize_compiler(cc)
    return cc


def compiles(cc, flags, source="int main(void) { return 0; }\n", link_flags=None):
    """Whether ``cc`` compiles ``source`` with ``flags`` (and, with
    ``link_flags``, links it), warnings counted as errors."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            objects = cc.compile([src], output_dir=tmp, extra_postargs=flags + ["-Werror"])
            if link_flags is not None:
                cc.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=link_flags)
        except Exception:  # CompileError, LinkError
            return False
    return True


def openmp_flags(cc=None):
    """(compile, link) flags for OpenMP, or ([], []) when the compiler has
    none (or FASTSOFTMAX_NO_OPENMP is set): the same sources build serially."""
    if os.environ.get("FASTSOFTMAX_NO_OPENMP"):
        return [], []
    if compiler_is_msvc():
        return ["/openmp"], []
    flag = ["-Xpreprocessor", "-fopenmp"] if sys.platform == "darwin" else ["-fopenmp"]
    link = flag + (["-lomp"] if sys.platform == "darwin" else [])
    if not compiles(cc or _compiler(), flag, OPENMP_TEST, link):
        print("fastsoftmax: the compiler has no OpenMP; building the serial version")
        return [], []
    return flag, link


def compile_flags(cc=None):
    """The optimisation flags: those the results depend on, and the speed-only
    ones this compiler accepts."""
    if compiler_is_msvc():
        return ["/O2"]
    cc = cc or _compiler()
    return REQUIRED_FLAGS + [f for f in OPTIONAL_FLAGS if compiles(cc, [f])]


def extension(package_dir=None, module_name=None):
    """The ``setuptools.Extension`` that builds ``_loops`` of the fastsoftmax
    folder at ``package_dir``.

    Parameters
    ----------
    package_dir : str, optional
        The folder, relative to the host's ``setup.py`` (the current
        directory when setuptools runs it), e.g.
        ``"mylib/_vendored/fastsoftmax"``; by default the folder of this
        file.
    module_name : str, optional
        The extension's full name; by default ``package_dir`` with dots,
        plus ``._loops``.

    Returns
    -------
    setuptools.Extension
        ``_loops.pyx`` and every ``csrc/*.c`` (so a new instruction set's
        kernels are picked up), ``csrc`` as include directory, the flags of
        :func:`compile_flags` and :func:`openmp_flags`, and the Cython
        directives as ``cython_directives``.
    """
    if package_dir is None:
        package_dir = os.path.relpath(os.path.dirname(os.path.abspath(__file__)))
    package_dir = package_dir.replace(os.sep, "/").rstrip("/")
    if module_name is None:
        module_name = package_dir.strip("./").replace("/", ".") + "._loops"
    from setuptools import Extension

    csrc = f"{package_dir}/csrc"
    cc = None if compiler_is_msvc() else _compiler()
    omp_compile, omp_link = openmp_flags(cc)
    flags = compile_flags(cc) + omp_compile
    ext = Extension(
        module_name,
        sources=[f"{package_dir}/_loops.pyx"] + sorted(glob.glob(f"{csrc}/*.c")),
        depends=sorted(glob.glob(f"{csrc}/**/*.h", recursive=True))
        + [f"{package_dir}/_csrc.pxd"],
        include_dirs=[csrc],
        extra_compile_args=flags,
        extra_link_args=omp_link,
        # what show_config() reports as compile_flags
        define_macros=[("FS_BUILD_FLAGS", '"{}"'.format(" ".join(flags).replace('"', "")))],
    )
    debug = bool(os.environ.get("FASTSOFTMAX_DEBUG"))
    ext.cython_directives = dict(CYTHON_DIRECTIVES, boundscheck=debug, initializedcheck=debug)
    return ext
