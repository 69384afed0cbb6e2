"""The one benchmark class the function families share.

The cases, inputs and timing are ``fastsoftmax._timing``'s (the module
``python -m fastsoftmax`` and ``tools/compare_peers.py`` use too).  Every
benchmark class is ``_KernelBenchmark`` (private, so that asv does not
collect it itself) with its family's functions; the parameters are
``(function, case, dtype, num_threads)``.  For each it reports

- ``time_call``: the time of one call (inputs built in ``setup``);
- ``peakmem_call``: the peak memory of the process around one call;
- ``track_ratio_to_copy``: call time / ``np.copyto`` time of the input's
  bytes, both medians of an interleaved run, so that a slower machine does
  not look like a regression (the memory-bound floor is ``timing.FLOORS``);
- ``track_ratio_to_reference``: call time / time of the pure-NumPy twin in
  ``fastsoftmax._reference`` (the speed-up, inverted: lower is better).
"""

import importlib.util
from pathlib import Path
from typing import ClassVar

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

    Subclasses set ``params[0]``, the functions of their family.
    """

    param_names: ClassVar[list] = ["function", "case", "dtype", "num_threads"]
    params: ClassVar[list] = [[], list(CASES), list(timing.SUITE_DTYPES),
                              list(timing.SUITE_THREADS)]
    timeout = 300

    def setup(self, function, case, dtype, num_threads):
        shape, axis = CASES[case]
        args, kwargs = timing.make_inputs(function, shape, axis, dtype)
        self.call = timing.fastsoftmax_call(function, args, kwargs, num_threads)
        self.copy = timing.copy_call(args[0])
        self.call_reference = timing.peer_calls(function, args, kwargs, num_threads,
                                                peers=["numpy"])["numpy"]

    def time_call(self, *params):
        self.call()

    def peakmem_call(self, *params):
        self.call()

    def track_ratio_to_copy(self, *params):
        # no warm-up round: the median discards the first one's page faults
        medians = timing.interleaved_medians({"call": self.call, "copy": self.copy},
                                             COPY_REPEAT, warmup=0)
        return medians["call"] / medians["copy"]

    track_ratio_to_copy.unit = "ratio"

    def track_ratio_to_reference(self, *params):
        medians = timing.interleaved_medians(
            {"call": self.call, "reference": self.call_reference}, REFERENCE_REPEAT, warmup=0)
        return medians["call"] / medians["reference"]

    track_ratio_to_reference.unit = "ratio"
