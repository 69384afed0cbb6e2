"""Run-time state: which backend and SIMD path run, and on how many threads.

The one module that knows the compiled extension (``_loops``) is there or
not, spells the instruction-set names, reads ``FASTSOFTMAX_SIMD`` and
``FASTSOFTMAX_BACKEND``, and decides thread counts.  Everything else asks
it (``_runtime.kernels``, ``_runtime.threads_for``, ...).
"""

import math
import os
import warnings

import numpy as np

try:
    from . import _loops as kernels
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    kernels = None
    IMPORT_ERROR = str(exc)
else:
    IMPORT_ERROR = None

# The SIMD paths, in the order of the C layer's FS_ISA_* levels.
ISA_NAMES = ("scalar", "avx2", "avx512")

if os.environ.get("FASTSOFTMAX_BACKEND", "").lower() == "numpy":
    BACKEND = "numpy"
elif kernels is None:
    BACKEND = "numpy"
    warnings.warn(
        "fastsoftmax: the compiled extension could not be imported "
        f"({IMPORT_ERROR}); using the slow NumPy reference implementation",
        RuntimeWarning,
        stacklevel=2,
    )
else:
    BACKEND = "compiled"

# Below this many elements a call runs on one thread.  Measured with
# `python -m fastsoftmax threshold` (softmax, rows of 64, back-to-back
# calls): two threads first win consistently from 2048-4096 elements on
# the 2-core development machine; 8192 leaves a margin for waking threads
# that have gone to sleep between sporadic calls.
SERIAL_THRESHOLD = 1 << 13
# Outputs larger than this are written with non-temporal stores: they do
# not fit in the last-level cache, so caching them only evicts the input.
STREAM_BYTES = 8 << 20

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def runs_compiled(compute):
    """Whether the compiled kernels run computations in dtype ``compute``
    (float32 and float64, with the compiled backend); else ``_reference`` does."""
    return BACKEND == "compiled" and (compute == _F32 or compute == _F64)


def _select_simd_from_env():
    """Apply FASTSOFTMAX_SIMD (scalar|avx2|avx512) at import."""
    if kernels is None:
        return
    best = len(ISA_NAMES) - 1
    want = os.environ.get("FASTSOFTMAX_SIMD", "").strip().lower()
    if not want:
        kernels.select_isa(best)
        return
    if want not in ISA_NAMES:
        warnings.warn(
            f"FASTSOFTMAX_SIMD={want!r} is not one of {', '.join(ISA_NAMES)}; ignored",
            RuntimeWarning,
            stacklevel=3,
        )
        kernels.select_isa(best)
        return
    got = kernels.select_isa(ISA_NAMES.index(want))
    if ISA_NAMES[got] != want:
        warnings.warn(
            f"FASTSOFTMAX_SIMD={want}: not available on this CPU or build; using {ISA_NAMES[got]}",
            RuntimeWarning,
            stacklevel=3,
        )


_select_simd_from_env()


def current_simd():
    """The SIMD path in use ("none" without the compiled backend)."""
    if kernels is None or BACKEND != "compiled":
        return "none"
    return ISA_NAMES[kernels.current_isa()]


def available_simd():
    """Every SIMD path this CPU and build can run, lowest first (tests cover each)."""
    if kernels is None:
        return ()
    return ISA_NAMES[: kernels.cpu_isa() + 1]


def set_simd(name):
    """Select a SIMD path by name; return the one chosen (the best at most)."""
    return ISA_NAMES[kernels.select_isa(ISA_NAMES.index(name))]


def _cgroup_cpu_quota():
    """The cgroup CPU quota in CPUs (v2 cpu.max, or v1 cfs), or None."""
    try:  # cgroup v2
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, p = f.read().split()[:2]
        return None if q == "max" else int(q) / int(p)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            q = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            p = int(f.read())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


_CGROUP_QUOTA = _cgroup_cpu_quota()  # fixed for the life of the process


def usable_cpus():
    """CPUs this process may run on: affinity mask and cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    if _CGROUP_QUOTA is not None:
        n = min(n, max(1, math.ceil(_CGROUP_QUOTA)))
    return max(1, n)


def default_num_threads():
    """The thread count used when ``num_threads=None``.

    All usable cores (affinity and cgroup limits), capped by OpenMP's own
    limit, which follows ``OMP_NUM_THREADS`` and ``threadpoolctl``.
    """
    if kernels is None or not kernels.OPENMP:
        return 1
    return max(1, min(kernels.omp_max_threads(), usable_cpus()))


def threads_for(num_threads, size):
    """Threads for a call on ``size`` elements; ``num_threads`` already checked."""
    if num_threads is None:
        return 1 if size < SERIAL_THRESHOLD else default_num_threads()
    return num_threads
