"""Forward functions: softmax, log_softmax, logsumexp; into ``out=`` and
allocating their result."""

import numpy as np

from .common import CASES, _KernelBenchmark, timing

# The allocating call on the cases where its cost shows: long rows, LLM
# vocabulary rows, many short rows.
ALLOCATING_CASES = {name: CASES[name] for name in
                    ("rows_2048x2048", "vocab_128x32000", "small_rows_419430x10")}


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
