"""Backward functions: the vector-Jacobian products of softmax and log_softmax."""

from .common import _KernelBenchmark, timing


class Backward(_KernelBenchmark):
    params = [list(timing.FAMILIES["backward"])] + _KernelBenchmark.params[1:]
