"""Run-time state: which backend and SIMD path run, and on how many threads.

The one module that knows the compiled extension (``_loops``) is there or
not, spells the instruction-set names, reads ``FASTSOFTMAX_SIMD``,
``FASTSOFTMAX_BACKEND`` and ``OMP_THREAD_LIMIT``, and decides thread
counts, including in a process created by ``fork()``.  Everything else
asks it (``_runtime.kernels``, ``_runtime.threads_for``, ...).
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

BACKENDS = ("compiled", "numpy")

_want_backend = os.environ.get("FASTSOFTMAX_BACKEND", "").strip().lower()
if _want_backend and _want_backend not in BACKENDS:
    warnings.warn(
        f"FASTSOFTMAX_BACKEND={_want_backend!r} is not one of {', '.join(BACKENDS)}; ignored",
        RuntimeWarning,
        stacklevel=2,
    )
if _want_backend == "numpy":
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


def _omp_thread_limit():
    """``OMP_THREAD_LIMIT`` as a positive int, or None.

    OpenMP caps every parallel region at this many threads but does not
    lower ``omp_get_max_threads()``, so the default thread count has to
    read it itself.  The runtime reads it once, when it loads; so do we.
    """
    try:
        limit = int(os.environ.get("OMP_THREAD_LIMIT", ""))
    except ValueError:
        return None
    return limit if limit > 0 else None


_OMP_THREAD_LIMIT = _omp_thread_limit()

# Set in a child created by fork(): GNU OpenMP's worker threads do not
# survive fork(), and a child that opens a parallel region after its parent
# used them waits for them forever.  Such a child runs every call on one
# thread (one thread opens no parallel region).
_forked = False


def _serial_after_fork():
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_serial_after_fork)


def in_forked_child():
    """Whether this process was created by ``fork()`` from one that had
    imported fastsoftmax (then every call runs on one thread)."""
    return _forked


def max_threads():
    """The most threads a call may use: the usable CPUs, capped by
    ``OMP_THREAD_LIMIT``; 1 in a forked child or without OpenMP.

    Explicit ``num_threads`` are capped here too: the kernels are limited
    by memory bandwidth, so more threads than cores never helps, and OpenMP
    runtimes fail on absurd team sizes (GNU OpenMP exits the process).
    """
    if _forked or kernels is None or not kernels.OPENMP:
        return 1
    n = usable_cpus()
    return n if _OMP_THREAD_LIMIT is None else min(n, _OMP_THREAD_LIMIT)


def default_num_threads():
    """The thread count used when ``num_threads=None``.

    All usable cores (affinity and cgroup limits), capped by OpenMP's own
    limits, which follow ``OMP_NUM_THREADS``, ``OMP_THREAD_LIMIT`` and
    ``threadpoolctl``; 1 in a child created by ``fork()``.
    """
    n = max_threads()
    return 1 if n == 1 else max(1, min(kernels.omp_max_threads(), n))


def threads_for(num_threads, size):
    """Threads for a call on ``size`` elements; ``num_threads`` already
    checked (a positive int or None).

    None: one thread below ``SERIAL_THRESHOLD`` elements, else
    :func:`default_num_threads`.  An explicit count is obeyed up to
    :func:`max_threads`.  Always 1 in a forked child.
    """
    if num_threads is None:
        return 1 if size < SERIAL_THRESHOLD else default_num_threads()
    if num_threads == 1:
        return 1
    return min(num_threads, max_threads())
