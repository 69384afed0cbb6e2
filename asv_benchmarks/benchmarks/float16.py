"""float16 inputs, computed in float32 and returned as float16: every
function of the suite on long rows."""

from typing import ClassVar

from .common import CASES, _KernelBenchmark, as_dtype, timing

FLOAT16_CASES = {name: CASES[name] for name in ("rows_2048x2048",)}


class Float16(_KernelBenchmark):
    params: ClassVar[list] = [list(timing.FUNCTIONS), list(FLOAT16_CASES), ["float16"],
              list(timing.SUITE_THREADS)]

    def inputs(self, function, case, dtype):
        shape, axis = FLOAT16_CASES[case]
        args, kwargs = timing.make_inputs(function, shape, axis, "float32")
        return as_dtype(args, kwargs, dtype)
