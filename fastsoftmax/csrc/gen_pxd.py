"""Write ``fastsoftmax/_csrc.pxd``, the Cython declarations of the C API,
from the kernel list in ``kernel_list.h`` (so that each kernel's arguments
are written once, there).

``setup.py`` runs this before every build; ``tests/test_csrc.py`` checks
that the committed file is current.  Run it by hand with
``python fastsoftmax/csrc/gen_pxd.py``.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LIST = os.path.join(HERE, "kernel_list.h")
PXD = os.path.join(os.path.dirname(HERE), "_csrc.pxd")

HEADER = '''\
# Generated from fastsoftmax/csrc/kernel_list.h by fastsoftmax/csrc/gen_pxd.py:
# do not edit (setup.py regenerates it; tests/test_csrc.py checks it is current).
"""Cython declarations of the C API in csrc/fastsoftmax.h."""

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint8_t


cdef extern from "fastsoftmax.h" nogil:
    int FS_ISA_SCALAR, FS_ISA_AVX2, FS_ISA_AVX512
    int FS_MAX_TILE, FS_ROW_CACHE_BYTES, FS_PART_BYTES, FS_FLAG_LOG, FS_FLAG_STREAM
    int FS_FEW_CLASSES
    int fs_cpu_isa()
    int fs_select_isa(int requested)
    int fs_current_isa()
    const char *fs_compiler()
    int fs_pages_resident(const void *p, size_t nbytes)
'''


def kernels(text):
    """[(name, args)] from the FS_KERNELS(X) list, args with FS_T left in."""
    body = text[text.index("#define FS_KERNELS(X)"):].replace("\\\n", " ")
    body = body.split("\n", 1)[0][len("#define FS_KERNELS(X)"):]
    out, i = [], 0
    while True:
        i = body.find("X(", i)
        if i < 0:
            return out
        depth, j = 0, i + 1
        while True:  # the matching parenthesis of X(
            depth += {"(": 1, ")": -1}.get(body[j], 0)
            if depth == 0:
                break
            j += 1
        name, args = body[i + 2:j].split(",", 1)
        args = " ".join(args.split()).strip()
        assert args.startswith("(") and args.endswith(")"), args
        out.append((name.strip(), args[1:-1]))
        i = j


def render(text):
    lines = [HEADER.rstrip("\n")]
    for suffix, ctype in (("f32", "float"), ("f64", "double")):
        lines.append(f"\n    ctypedef struct fs_kernels_{suffix}:")
        for name, args in kernels(text):
            args = re.sub(r"\bFS_T\b", ctype, args)
            lines.append(f"        void (*{name})({args}) noexcept nogil")
    lines.append("")
    lines.append("    const fs_kernels_f32 *fs_f32")
    lines.append("    const fs_kernels_f64 *fs_f64")
    return "\n".join(lines) + "\n"


def main(check=False):
    with open(LIST) as f:
        want = render(f.read())
    have = open(PXD).read() if os.path.exists(PXD) else None
    if check:
        return have == want
    if have != want:
        with open(PXD, "w") as f:
            f.write(want)
    return True


if __name__ == "__main__":
    sys.exit(0 if main(check="--check" in sys.argv) else 1)
