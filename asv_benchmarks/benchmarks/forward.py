"""Forward functions: softmax, log_softmax, logsumexp."""

from .common import _KernelBenchmark


class Forward(_KernelBenchmark):
    params = [["softmax", "log_softmax", "logsumexp"]] + _KernelBenchmark.params[1:]
