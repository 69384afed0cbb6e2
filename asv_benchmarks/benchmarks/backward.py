"""Backward functions: the vector-Jacobian products of softmax and log_softmax."""

from .common import _KernelBenchmark


class Backward(_KernelBenchmark):
    params = [["softmax_backward", "log_softmax_backward"]] + _KernelBenchmark.params[1:]
