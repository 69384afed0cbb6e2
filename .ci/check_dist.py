"""Check what ``python -m build`` (and ``auditwheel repair``) made.

The sdist must build and test the package on its own: the sources, csrc/
with its headers and generator, the whole tests/ folder, and no generated
C.  A wheel carries only what runs: no .pyx/.pxd/.c/.h, the type stubs, and
an extension without debug information, under 3 MB.

Usage: python .ci/check_dist.py DIST_DIR   (run from the repository root)
"""

import glob
import os
import sys
import tarfile
import zipfile

MAX_EXTENSION_BYTES = 3_000_000


def check_sdist(path):
    with tarfile.open(path) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    want = {"setup.py", "pyproject.toml", "LICENSE", "README.md", "MANIFEST.in",
            "fastsoftmax/_loops.pyx", "fastsoftmax/_csrc.pxd", "fastsoftmax/py.typed"}
    # everything of the checkout that builds or tests the package
    for pattern in ("fastsoftmax/*.py", "fastsoftmax/*.pyi", "fastsoftmax/meson.build",
                    "fastsoftmax/csrc/**/*.[ch]",
                    "fastsoftmax/csrc/*.py", "tests/*.py", "asv_benchmarks/benchmarks/*.py",
                    "tools/*.py"):
        want.update(p.replace(os.sep, "/") for p in glob.glob(pattern, recursive=True))
    problems = [f"missing: {n}" for n in sorted(want - names)]
    problems += [f"must not be shipped: {n}" for n in sorted(names)
                 if n == "fastsoftmax/_loops.c" or n.endswith((".so", ".pyd", ".o", ".pyc"))]
    size = os.path.getsize(path) / 1e3
    return problems, f"{os.path.basename(path)}: {size:.0f} kB, {len(names)} files"


def check_wheel(path):
    problems = []
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
        sources = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))]
        problems += [f"source file in the wheel: {n}" for n in sources]
        for n in ("fastsoftmax/py.typed", "fastsoftmax/__init__.pyi"):
            if n not in names:
                problems.append(f"missing: {n}")
        ext = [n for n in names if n.startswith("fastsoftmax/_loops.")
               and n.endswith((".so", ".pyd"))]
        if len(ext) != 1:
            problems.append(f"expected one compiled extension, found {ext}")
            return problems, os.path.basename(path)
        info = whl.getinfo(ext[0])
        data = whl.read(ext[0])
    if info.file_size > MAX_EXTENSION_BYTES:
        problems.append(f"{ext[0]} is {info.file_size} bytes (limit {MAX_EXTENSION_BYTES})")
    if b".debug_info" in data:
        problems.append(f"{ext[0]} carries debug information")
    summary = (f"{os.path.basename(path)}: {os.path.getsize(path) / 1e3:.0f} kB, "
               f"extension {info.file_size / 1e3:.0f} kB")
    return problems, summary


def main(dist):
    sdists = glob.glob(os.path.join(dist, "*.tar.gz"))
    wheels = glob.glob(os.path.join(dist, "*.whl"))
    if len(sdists) != 1 or not wheels:
        print(f"check_dist: expected one sdist and some wheels in {dist}")
        return 1
    failed = False
    for path, check in [(sdists[0], check_sdist)] + [(w, check_wheel) for w in wheels]:
        problems, summary = check(path)
        print(f"check_dist: {summary}")
        for p in problems:
            print(f"check_dist:   {p}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
