"""``softmax_jacobian``: the explicit ``(..., n, n)`` Jacobian, n times the
input's size in memory; batches of short rows, where it is used, and one
axis-0 case.  It takes no ``num_threads``; ``track_ratio_to_copy`` is
measured against a copy of the Jacobian's bytes, the memory floor of
writing it."""

from typing import ClassVar

import numpy as np

from .common import _KernelBenchmark, timing

# 2**22-element Jacobians (16 MiB in float32, as the other cases)
JACOBIAN_CASES = {
    "rows_4096x32": ((4096, 32), -1),
    "rows_64x256": ((64, 256), -1),
    "axis0_32x4096": ((32, 4096), 0),
}


class Jacobian(_KernelBenchmark):
    # one "thread count", 1: the function runs on one thread
    params: ClassVar[list] = [["softmax_jacobian"], list(JACOBIAN_CASES),
                              list(timing.SUITE_DTYPES), [1]]

    def inputs(self, function, case, dtype):
        shape, axis = JACOBIAN_CASES[case]
        x = np.random.default_rng(timing.SEED).standard_normal(shape).astype(dtype)
        return (timing.reference_function("softmax")(x, axis=axis),), {"axis": axis}

    def call(self, function, args, kwargs, num_threads):
        func = timing.public_function(function)
        return lambda: func(*args, **kwargs)

    def copy(self, args, kwargs):
        return timing.copy_call(timing.reference_function("softmax_jacobian")(*args, **kwargs))
