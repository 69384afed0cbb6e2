"""Vendoring, as docs/vendoring.rst describes it.

The build files the folder carries for a vendored copy (``meson.build`` and
``_vendor.py``) are checked on every run: they must name every source and
run-time module.  Building a scratch library with each recipe of the page
takes minutes, so those tests are marked ``vendoring`` and run only when
asked for: ``pytest -m vendoring`` (or ``FASTSOFTMAX_VENDORING=1``); see
``tests/conftest.py``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from runpy import run_path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fastsoftmax"
# build-time helpers: not installed by a vendored build
BUILD_ONLY = {"_vendor.py"}

pytestmark = pytest.mark.skipif(
    not (PACKAGE / "meson.build").is_file(), reason="needs the source tree"
)


def meson_files(suffix):
    """The quoted file names ending in ``suffix`` in the folder's meson.build."""
    text = re.sub(r"#.*", "", (PACKAGE / "meson.build").read_text())
    return sorted(re.findall(r"'([\w/]+" + re.escape(suffix) + ")'", text))


def test_meson_build_compiles_every_c_file():
    on_disk = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.glob("csrc/*.c"))
    assert meson_files(".c") == on_disk


def test_meson_build_installs_every_runtime_module():
    on_disk = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in BUILD_ONLY)
    assert meson_files(".py") == on_disk
    assert "'LICENSE'" in (PACKAGE / "meson.build").read_text()


def test_setuptools_helper_extension(monkeypatch):
    monkeypatch.chdir(REPO)
    ext = run_path(str(PACKAGE / "_vendor.py"))["extension"]()
    assert ext.name == "fastsoftmax._loops"
    on_disk = sorted(f"fastsoftmax/{p.relative_to(PACKAGE).as_posix()}"
                     for p in PACKAGE.glob("csrc/*.c"))
    assert ext.sources == ["fastsoftmax/_loops.pyx"] + on_disk
    assert ext.include_dirs == ["fastsoftmax/csrc"]
    if sys.platform != "win32":
        assert "-ffp-contract=off" in ext.extra_compile_args
    assert not any(flag.startswith("-march") for flag in ext.extra_compile_args)
    assert ext.cython_directives["wraparound"] is False
    assert ext.cython_directives["cdivision"] is True
    # another place, another name
    ext = run_path(str(PACKAGE / "_vendor.py"))["extension"]("mylib/_vendored/fastsoftmax")
    assert ext.name == "mylib._vendored.fastsoftmax._loops"
    assert ext.sources[0] == "mylib/_vendored/fastsoftmax/_loops.pyx"


def test_page_includes_the_folder_build_files():
    page = (REPO / "docs" / "vendoring.rst").read_text()
    for name in ("meson.build", "_vendor.py"):
        assert f".. literalinclude:: ../fastsoftmax/{name}" in page


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    """fastsoftmax's own wheel, built once for both recipes' side-by-side check."""
    return tmp_path_factory.mktemp("wheels")


@pytest.mark.vendoring
@pytest.mark.parametrize("recipe", ["setuptools", "meson"])
def test_vendoring_recipe(recipe, wheel_dir):
    """Copy the folder, build a scratch library with ``recipe`` in a fresh
    venv, run the copy's self-check and doctests, a predict_proba call, and
    the copy beside an installed fastsoftmax (tools/check_vendoring.sh)."""
    env = dict(os.environ, PYTHON=sys.executable, WHEELS=str(wheel_dir))
    env.pop("KEEP", None)
    run = subprocess.run(
        ["bash", str(REPO / "tools" / "check_vendoring.sh"), recipe],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-6000:]
