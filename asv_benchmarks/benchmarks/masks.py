"""``where=`` masks: a causal attention mask (the same lower triangle for
every batch, broadcast) and a random mask of half the entries."""

from typing import ClassVar

import numpy as np

from .common import _KernelBenchmark, timing

# name -> (shape of x, shape of the mask); 2**22 elements of x, as the
# other cases.
MASK_CASES = {
    "causal_16x512x512": ((16, 512, 512), (1, 512, 512)),
    "random_2048x2048": ((2048, 2048), (2048, 2048)),
}


def make_mask(case, shape):
    """The boolean mask of ``case``, broadcastable to the input's shape."""
    if case.startswith("causal"):
        return np.tril(np.ones(shape[-2:], dtype=bool))[None]
    rng = np.random.default_rng(timing.SEED + 1)
    return rng.random(shape) < 0.5


class Masked(_KernelBenchmark):
    params = [list(timing.FAMILIES["forward"]) + list(timing.FAMILIES["backward"]),
              list(MASK_CASES)] + _KernelBenchmark.params[2:]
    param_names: ClassVar[list] = ["function", "mask", "dtype", "num_threads"]

    def inputs(self, function, case, dtype):
        shape, mask_shape = MASK_CASES[case]
        args, kwargs = timing.make_inputs(function, shape, -1, dtype)
        kwargs["where"] = make_mask(case, mask_shape)
        return args, kwargs
