"""Fused cross-entropy: the mean loss and its gradient with respect to the
logits (``return_grad=True``) from class indices, and each of its options.
Skipped on commits without ``fastsoftmax.cross_entropy``."""

from typing import ClassVar

import numpy as np

from .common import CASES, _KernelBenchmark, timing

# The options on long rows (the class axis last), and the class axis 1 of an
# image-segmentation batch (N, C, H*W): 2**22 elements each, as the other
# cases.
OPTION_CASES = {
    "rows": CASES["rows_2048x2048"][0],
    "class_axis_1": (64, 21, 3121),
}
OPTIONS = ("loss_only", "class_weights", "label_smoothing", "probability_targets",
           "reduction_none", "class_axis_1")


class CrossEntropy(_KernelBenchmark):
    params = [list(timing.FAMILIES["cross_entropy"])] + _KernelBenchmark.params[1:]


class CrossEntropyOptions(_KernelBenchmark):
    """One option of ``cross_entropy`` at a time, loss and gradient into
    ``out=`` unless the option is the loss alone."""

    params = [["cross_entropy"], list(OPTIONS)] + _KernelBenchmark.params[2:]
    param_names: ClassVar[list] = ["function", "option", "dtype", "num_threads"]

    def inputs(self, function, option, dtype):
        if option == "class_axis_1":
            args, kwargs = timing.make_inputs(function, OPTION_CASES[option], 1, dtype)
        else:
            args, kwargs = timing.make_inputs(function, OPTION_CASES["rows"], -1, dtype)
        logits, target = args
        n_classes = logits.shape[kwargs["axis"]]
        rng = np.random.default_rng(timing.SEED + 2)
        if option == "loss_only":
            del kwargs["return_grad"]
            return args, kwargs
        kwargs["out"] = np.empty_like(logits)
        if option == "class_weights":
            kwargs["weight"] = rng.uniform(0.5, 2.0, n_classes).astype(logits.dtype)
        elif option == "label_smoothing":
            kwargs["label_smoothing"] = 0.1
        elif option == "probability_targets":
            p = rng.random(logits.shape, dtype=logits.dtype)
            target = p / p.sum(axis=kwargs["axis"], keepdims=True)
        elif option == "reduction_none":
            kwargs["reduction"] = "none"
        return (logits, target), kwargs
