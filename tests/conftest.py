import os

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _runtime

AVAILABLE_SIMD = _runtime.available_simd()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "vendoring: builds a scratch library with each recipe of docs/vendoring.rst "
        "(minutes); runs only with -m vendoring or FASTSOFTMAX_VENDORING=1",
    )


def pytest_collection_modifyitems(config, items):
    """Skip the vendoring builds unless they were asked for: a -m expression
    that names the marker, or FASTSOFTMAX_VENDORING=1."""
    if os.environ.get("FASTSOFTMAX_VENDORING") == "1":
        return
    if "vendoring" in config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="builds for minutes: pytest -m vendoring")
    for item in items:
        if item.get_closest_marker("vendoring"):
            item.add_marker(skip)


def pytest_report_header(config):
    cfg = fastsoftmax.get_config()
    return f"fastsoftmax: backend={cfg['backend']} simd={cfg['simd']} openmp={cfg['openmp']}"


@pytest.fixture(params=AVAILABLE_SIMD)
def simd(request):
    """Run the test once on every SIMD path this CPU and build have, then
    restore the path that was selected before."""
    before = _runtime.current_simd()
    assert _runtime.set_simd(request.param) == request.param
    yield request.param
    _runtime.set_simd(before)


@pytest.fixture(params=["fresh", "resident"])
def output_pages(request, monkeypatch):
    """Run the test once as if every output were fresh from the OS (the row
    loops then write it with ordinary stores) and once as if it were in
    memory already (non-temporal stores past STREAM_BYTES), whatever the
    arrays really are: both store paths run on every output."""
    resident = int(request.param == "resident")
    monkeypatch.setattr(_runtime.kernels, "pages_resident", lambda address, nbytes: resident)
    return request.param


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def num_threads(request):
    return request.param


@pytest.fixture(autouse=True)
def _compiled_backend_required():
    """A test run without the compiled extension tests nothing of it."""
    if os.environ.get("FASTSOFTMAX_BACKEND", "").lower() != "numpy":
        assert _runtime.BACKEND == "compiled", "the compiled extension is not in use"
    yield


@pytest.fixture
def rng():
    """A fresh seeded generator for each test."""
    return np.random.default_rng(12345)
