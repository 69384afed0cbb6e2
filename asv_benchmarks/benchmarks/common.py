"""The benchmark class every family shares, its timing settings and inputs.

The cases, inputs and timing are ``fastsoftmax._timing``'s (the module
``python -m fastsoftmax`` and ``tools/compare_peers.py`` use too).  Every
benchmark class derives from ``_KernelBenchmark`` (private, so that asv does
not collect it itself); the first parameter is always the public function,
the others say which inputs it gets.  For each combination it reports

- ``time_call``: the time of one call (inputs built in ``setup``);
- ``peakmem_call``: the peak memory of the process around one call;
- ``track_ratio_to_copy``: call time / ``np.copyto`` time of the input's
  bytes, both medians of an interleaved run, so that a slower machine does
  not look like a regression (the memory-bound floor is ``timing.FLOORS``);
- ``track_ratio_to_reference``: call time / time of the pure-NumPy twin in
  ``fastsoftmax._reference`` (the speed-up, inverted: lower is better).

Every dictionary of shapes here is named ``*_CASES``:
``tests/test_benchmarks.py`` shrinks them all to run each benchmark on tiny
inputs.
"""

import importlib.util
import inspect
from pathlib import Path
from typing import ClassVar

import numpy as np

try:
    from fastsoftmax import _timing as timing
except ImportError:
    # asv is benchmarking a commit from before fastsoftmax/_timing.py: use
    # this checkout's copy, which needs nothing private but _reference
    _path = Path(__file__).resolve().parents[2] / "fastsoftmax" / "_timing.py"
    _spec = importlib.util.spec_from_file_location("fastsoftmax_timing", _path)
    timing = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(timing)

CASES = timing.SUITE_CASES
# The classifier head's cases (N, H, V), for linear_cross_entropy.py.
LINEAR_CASES = getattr(timing, "LINEAR_SUITE_CASES", {"head_1024x256x8192": (1024, 256, 8192)})
# Repeats of the interleaved timings of the track_ benchmarks.
COPY_REPEAT = 5
REFERENCE_REPEAT = 3


class _KernelBenchmark:
    """One public function called on one case, dtype and thread count.

    Subclasses set ``params[0]``, the functions of their family, and may
    replace `inputs` (what the function is called with) and `call` (how).

    The timing settings below were chosen by measurement on two shared
    cores (``docs/performance.rst``, "Regressions"): with them two runs of
    one build differ by less than 10 % in ``asv compare``, and the scalar
    path forced on that build is flagged.
    """

    param_names: ClassVar[list] = ["function", "case", "dtype", "num_threads"]
    params: ClassVar[list] = [[], list(CASES), list(timing.SUITE_DTYPES),
                              list(timing.SUITE_THREADS)]
    timeout = 300
    # Each round is a fresh process, and asv interleaves the rounds of all
    # benchmarks, so that a burst of load on the machine touches one of
    # several rounds rather than every sample of one benchmark.
    rounds = 4
    # Samples per round: at least 5, at most 10 or 1 s; each sample at least
    # 20 ms long (several calls on the small cases), so that one scheduler
    # tick does not decide it.
    repeat = (5, 10, 1.0)
    min_run_count = 5
    sample_time = 0.02
    # Page faults of the first calls and OpenMP's thread start-up are paid
    # before the first sample.
    warmup_time = 0.1

    def inputs(self, function, case, dtype):
        """``(args, kwargs)`` of ``fastsoftmax.<function>`` for this case."""
        shape, axis = CASES[case]
        return timing.make_inputs(function, shape, axis, dtype)

    def call(self, function, args, kwargs, num_threads):
        """A no-argument callable: the function on these inputs."""
        return timing.fastsoftmax_call(function, args, kwargs, num_threads)

    def copy(self, args, kwargs):
        """A no-argument callable: the copy the call is measured against."""
        return timing.copy_call(args[0])

    def setup(self, function, *params):
        args, kwargs = self.inputs(function, *params[:-1])
        num_threads = params[-1]
        self.run = self.call(function, args, kwargs, num_threads)
        self.run_copy = self.copy(args, kwargs)
        reference = timing.reference_function(function)
        # the twin of cross_entropy takes no out=; it allocates
        ref_kwargs = {k: v for k, v in kwargs.items()
                      if k != "out" or "out" in inspect.signature(reference).parameters}
        self.run_reference = lambda: reference(*args, **ref_kwargs)

    def time_call(self, *params):
        self.run()

    def peakmem_call(self, *params):
        self.run()

    def track_ratio_to_copy(self, *params):
        # no warm-up round: the median discards the first one's page faults
        medians = timing.interleaved_medians({"call": self.run, "copy": self.run_copy},
                                             COPY_REPEAT, warmup=0)
        return medians["call"] / medians["copy"]

    track_ratio_to_copy.unit = "ratio"

    def track_ratio_to_reference(self, *params):
        medians = timing.interleaved_medians(
            {"call": self.run, "reference": self.run_reference}, REFERENCE_REPEAT, warmup=0)
        return medians["call"] / medians["reference"]

    track_ratio_to_reference.unit = "ratio"


def as_dtype(args, kwargs, dtype):
    """The float arrays of ``(args, kwargs)`` converted to ``dtype``.

    ``timing.make_inputs`` draws float32 and float64 only; float16 inputs
    are its float32 ones rounded (integer class indices stay as they are),
    and ``out=`` a new array of ``dtype``.
    """
    def convert(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.astype(dtype)
        return a

    kwargs = {k: np.empty(v.shape, dtype) if k == "out" else convert(v)
              for k, v in kwargs.items()}
    return tuple(map(convert, args)), kwargs
