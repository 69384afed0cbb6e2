"""Fused cross-entropy: mean loss and its gradient with respect to the logits
(``return_grad=True``) from class indices.  Skipped on commits without
``fastsoftmax.cross_entropy``."""

from .common import _KernelBenchmark, timing


class CrossEntropy(_KernelBenchmark):
    params = [list(timing.FAMILIES["cross_entropy"])] + _KernelBenchmark.params[1:]
