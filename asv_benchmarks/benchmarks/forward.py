"""Forward functions: softmax, log_softmax, logsumexp."""

from .common import _KernelBenchmark, timing


class Forward(_KernelBenchmark):
    params = [list(timing.FAMILIES["forward"])] + _KernelBenchmark.params[1:]
