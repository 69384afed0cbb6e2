"""The classifier head: ``linear_cross_entropy`` (loss and the gradients of
x, weight and bias, chunk by chunk, never the whole logits).  Its floor is
not a copy but its three matrix products alone, timed in the same run.
Skipped on commits without ``fastsoftmax.linear_cross_entropy``."""

from typing import ClassVar

from .common import LINEAR_CASES, timing

# Repeats of the interleaved timings of the track_ benchmark.
MATMULS_REPEAT = 3


class LinearCrossEntropy:
    """One head of shape (N, H, V), dtype and thread count of the
    cross-entropy kernel."""

    param_names: ClassVar[list] = ["function", "case", "dtype", "num_threads"]
    params: ClassVar[list] = [list(getattr(timing, "LINEAR_FUNCTIONS", ["linear_cross_entropy"])),
                              list(LINEAR_CASES), list(timing.SUITE_DTYPES),
                              list(timing.SUITE_THREADS)]
    timeout = 300

    def setup(self, function, case, dtype, num_threads):
        if not hasattr(timing, "make_linear_inputs"):
            raise NotImplementedError("this version has no linear_cross_entropy")
        args, kwargs = timing.make_linear_inputs(LINEAR_CASES[case], dtype)
        self.call = timing.fastsoftmax_call(function, args, kwargs, num_threads)
        self.matmuls = timing.matmuls_call(args)

    def time_call(self, *params):
        self.call()

    def peakmem_call(self, *params):
        self.call()

    def track_ratio_to_matmuls(self, *params):
        medians = timing.interleaved_medians({"call": self.call, "matmuls": self.matmuls},
                                             MATMULS_REPEAT, warmup=0)
        return medians["call"] / medians["matmuls"]

    track_ratio_to_matmuls.unit = "ratio"
