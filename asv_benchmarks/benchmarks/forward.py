"""Forward functions: softmax, log_softmax, logsumexp; into ``out=`` and
allocating their result."""

import numpy as np

from .common import CASES, _KernelBenchmark, timing

# The allocating call on the cases where its cost shows: long rows, LLM
# vocabulary rows, many short rows.
ALLOCATING_CASES = {name: CASES[name] for name in
                    ("rows_2048x2048", "vocab_128x32000", "small_rows_419430x10")}
# logsumexp with SciPy's weights: rows, and long rows (each shared out in parts).
WEIGHTED_CASES = {name: CASES[name] for name in ("rows_2048x2048", "long_rows_4x1048576")}


class Forward(_KernelBenchmark):
    params = [list(timing.FAMILIES["forward"])] + _KernelBenchmark.params[1:]


class Allocating(_KernelBenchmark):
    """``softmax(x)`` without ``out=``: the result is a fresh array, whose
    page faults are part of the call.  ``track_ratio_to_copy`` is then
    measured against ``np.copyto(np.empty_like(x), x)``, which pays them too.
    """

    params = [["softmax", "log_softmax"], list(ALLOCATING_CASES)] + _KernelBenchmark.params[2:]

    def inputs(self, function, case, dtype):
        shape, axis = ALLOCATING_CASES[case]
        return timing.make_inputs(function, shape, axis, dtype, out=False)

    def copy(self, args, kwargs):
        x = args[0]
        return lambda: np.copyto(np.empty_like(x), x)


class Weighted(_KernelBenchmark):
    """``logsumexp(x, b=w)``, ``w`` of ``x``'s shape in [0.5, 1.5): the
    weighted kernel for rows, against a copy of ``x``'s bytes (it reads
    ``x`` and ``w``) and against the NumPy twin."""

    params = [["logsumexp"], list(WEIGHTED_CASES)] + _KernelBenchmark.params[2:]

    def inputs(self, function, case, dtype):
        shape, axis = WEIGHTED_CASES[case]
        args, kwargs = timing.make_inputs(function, shape, axis, dtype)
        kwargs["b"] = (np.random.default_rng(timing.SEED + 1).random(shape) + 0.5).astype(dtype)
        return args, kwargs
