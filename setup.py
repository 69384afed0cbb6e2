"""Build the one compiled extension, fastsoftmax._loops.

Every compiler flag is probed: a small program is compiled (and, for
OpenMP, linked) with the compiler setuptools is about to use, and a flag it
rejects is left out.  So the same file builds with GCC, clang, Apple clang
and MSVC.  OpenMP is found the way each compiler wants it (``-fopenmp``;
Apple clang ``-Xpreprocessor -fopenmp -lomp`` with libomp; MSVC
``/openmp``); without it the same sources build serially.  No -march flag:
the SIMD kernels carry their own target attributes and are chosen at run
time, so the built package runs on any CPU of its architecture.

Environment variables: FASTSOFTMAX_DEBUG=1 builds with Cython's bounds
checking on and keeps debug information; FASTSOFTMAX_NO_OPENMP=1 builds the
serial version even where OpenMP is available.
"""

import contextlib
import glob
import os
import shutil
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.errors import CompileError, LinkError
except ImportError:  # setuptools < 59: the errors live in distutils
    from distutils.errors import CompileError, LinkError

DEBUG = bool(os.environ.get("FASTSOFTMAX_DEBUG"))
# debug information asked for in CFLAGS (a sanitizer build, say) is kept
USER_DEBUG_INFO = any(f.startswith("-g") and f != "-g0"
                      for f in os.environ.get("CFLAGS", "").split())
CSRC = "fastsoftmax/csrc"

# Wanted flags for GCC-like compilers, in order; each group is kept only if
# the compiler accepts all of it.
GCC_LIKE_FLAGS = [
    ["-O3"],
    # no fused multiply-add unless the code asks for one, so the scalar and
    # SIMD paths round where the source says they do
    ["-ffp-contract=off"],
    ["-fno-strict-aliasing"],
    # GCC: interleave the long dependency chains of consecutive exps with
    # register-pressure awareness (float64 softmax 3.9 -> 3.3 ns per element
    # on one core of an AMD EPYC); clang ignores these, so they are dropped
    ["-fschedule-insns", "-fsched-pressure"],
]
# Python's own CFLAGS carry -g: a release build leaves the debug information
# out (the extension: 5.0 MB -> 0.65 MB with GCC 12), unless FASTSOFTMAX_DEBUG
# or the CFLAGS variable asks for it.
RELEASE_FLAGS = [["-g0"]]
MSVC_FLAGS = ["/O2"]

PROBE_MAIN = "int main(void) { return 0; }\n"
OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : omp_get_max_threads() - 1;
}
"""


@contextlib.contextmanager
def _captured(path):
    """Send the compiler's output to ``path`` while probing: the rejected
    flags' messages are expected and are not this build's errors."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [log]:
            os.close(fd)


def _accepts(compiler, code, compile_args=(), link_args=None):
    """True if ``code`` compiles with ``compile_args`` (and, if ``link_args``
    is not None, links with them) and the compiler says
    nothing about any of those flags (clang only warns about an
    optimisation flag it ignores, MSVC about an option it does not know)."""
    tmp = tempfile.mkdtemp(prefix="fastsoftmax-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        log = os.path.join(tmp, "probe.log")
        with open(src, "w") as f:
            f.write(code)
        try:
            with _captured(log):
                objects = compiler.compile([src], output_dir=tmp,
                                           extra_postargs=list(compile_args))
                if link_args is not None:
                    # a shared library, linked as the extension will be
                    # (with LDSHARED and LDFLAGS, which a program's link
                    # leaves out)
                    compiler.link_shared_object(
                        objects, compiler.library_filename("probe", lib_type="shared"),
                        output_dir=tmp, extra_postargs=list(link_args))
        except (CompileError, LinkError, OSError):
            return False
        with open(log, encoding="utf-8", errors="replace") as f:
            said = f.read()
        # a diagnostic quotes the flag (in '', "" or GCC's typographic
        # quotes); the echoed command line does not
        return not any(q[0] + flag + q[1] in said
                       for flag in list(compile_args) + list(link_args or [])
                       for q in ("''", '""', "\u2018\u2019"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _libomp_prefixes():
    """Where Homebrew and MacPorts put libomp, which Apple clang needs for OpenMP."""
    prefixes = [os.environ.get("LIBOMP_PREFIX"), "/opt/homebrew/opt/libomp",
                "/usr/local/opt/libomp", "/opt/local"]
    return [p for p in prefixes if p and os.path.isdir(p)]


def openmp_flags(compiler):
    """(compile flags, link flags) for OpenMP with this compiler, or None."""
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    else:
        # GCC and LLVM clang; then Apple clang, whose driver has no -fopenmp
        # but whose front end does, with Homebrew's or MacPorts' libomp
        candidates = [(["-fopenmp"], ["-fopenmp"]),
                      (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
        for prefix in _libomp_prefixes():
            inc = [os.path.join(prefix, "include"), os.path.join(prefix, "include", "libomp")]
            lib = [os.path.join(prefix, "lib"), os.path.join(prefix, "lib", "libomp")]
            link = ["-L" + d for d in lib] + ["-Wl,-rpath," + d for d in lib] + ["-lomp"]
            candidates.append((["-Xpreprocessor", "-fopenmp"] + ["-I" + d for d in inc], link))
    for compile_args, link_args in candidates:
        if _accepts(compiler, OPENMP_PROBE, compile_args, link_args):
            return compile_args, link_args
    return None


class BuildExt(build_ext):
    """build_ext that chooses the flags by asking the compiler it builds with."""

    def build_extensions(self):
        compiler = self.compiler
        if compiler.compiler_type == "msvc":
            compile_args = list(MSVC_FLAGS)
        else:
            wanted = GCC_LIKE_FLAGS + ([] if DEBUG or USER_DEBUG_INFO else RELEASE_FLAGS)
            compile_args = [flag for group in wanted
                            if _accepts(compiler, PROBE_MAIN, group) for flag in group]
        link_args = []
        if os.environ.get("FASTSOFTMAX_NO_OPENMP"):
            print("fastsoftmax: FASTSOFTMAX_NO_OPENMP is set; building the serial version")
        else:
            omp = openmp_flags(compiler)
            if omp is None:
                print("fastsoftmax: the compiler has no usable OpenMP; building the serial "
                      "version (num_threads > 1 will run on one thread). "
                      "On macOS, `brew install libomp` and build again.")
            else:
                compile_args += omp[0]
                link_args += omp[1]
        flags_text = " ".join(f for f in compile_args if not f.startswith("-I")).replace('"', "")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
            ext.define_macros = ext.define_macros + [("FS_BUILD_FLAGS", f'"{flags_text}"')]
        super().build_extensions()


# The Cython declarations of the C API are expanded from the kernel list.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), CSRC))
import gen_pxd  # noqa: E402

gen_pxd.main()

extensions = [
    Extension(
        "fastsoftmax._loops",
        # every kernels_<isa>_<dtype>.c and dispatch.c: a new instruction set
        # is picked up without editing this file
        sources=["fastsoftmax/_loops.pyx"] + sorted(glob.glob(f"{CSRC}/*.c")),
        depends=sorted(glob.glob(f"{CSRC}/**/*.h", recursive=True)) + ["fastsoftmax/_csrc.pxd"],
        include_dirs=[CSRC],
    )
]

setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": DEBUG,
            "embedsignature": True,
        },
    ),
)
