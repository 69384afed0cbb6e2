"""What the benchmarks measure, as data, and the class that measures it.

Every benchmark class is ``_KernelBenchmark`` (private, so that asv does not
collect it itself) with its own list of functions;
the parameters are ``(function, case, dtype, num_threads)``.  For each it
reports

- ``time_call``: the time of one call (inputs built in ``setup``);
- ``peakmem_call``: the peak memory of the process around one call;
- ``track_ratio_to_copy``: call time / ``np.copyto`` time of the input's
  bytes, both medians of an interleaved run, so that a slower machine does
  not look like a regression (the memory-bound floor is 1, 1.5 for the
  backward functions which read two arrays, about 0.5 for logsumexp);
- ``track_ratio_to_reference``: call time / time of the pure-NumPy twin in
  ``fastsoftmax._reference`` (the speed-up, inverted: lower is better).

Functions that take ``out=`` write into an array allocated in ``setup``, so
the timings are the kernels' and not the allocator's.
"""

import statistics
import time

import numpy as np

import fastsoftmax
from fastsoftmax import _reference

SEED = 20240611
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

# name -> (shape, axis).  2**22 elements each: 16 MiB in float32, 32 MiB in
# float64, beyond an 8 MiB last-level cache, so each case measures memory
# traffic; small enough for a quick run of the whole suite on two cores.
CASES = {
    "rows_2048x2048": ((2048, 2048), -1),
    "vocab_128x32000": ((128, 32000), -1),
    "small_rows_419430x10": ((419430, 10), -1),
    "long_rows_4x1048576": ((4, 1 << 20), -1),
    "axis0_2048x2048": ((2048, 2048), 0),
    "axis1_64x1000x64": ((64, 1000, 64), 1),
}

# Repeats of the interleaved timings of the track_ benchmarks.
COPY_REPEAT = 5
REFERENCE_REPEAT = 3


def _forward_inputs(shape, axis, dtype, rng, out):
    x = rng.standard_normal(shape, dtype=dtype)
    kwargs = {"axis": axis}
    if out:
        kwargs["out"] = np.empty_like(x)
    return (x,), kwargs


def _softmax_inputs(shape, axis, dtype, rng):
    return _forward_inputs(shape, axis, dtype, rng, out=True)


def _logsumexp_inputs(shape, axis, dtype, rng):
    return _forward_inputs(shape, axis, dtype, rng, out=False)


def _backward_inputs(forward):
    def make(shape, axis, dtype, rng):
        x = rng.standard_normal(shape, dtype=dtype)
        y = forward(x, axis=axis)
        dy = rng.standard_normal(shape, dtype=dtype)
        return (dy, y), {"axis": axis, "out": np.empty_like(x)}

    return make


def _cross_entropy_inputs(shape, axis, dtype, rng):
    logits = rng.standard_normal(shape, dtype=dtype) * 3
    axis = axis % len(shape)
    n_classes = shape[axis]
    target_shape = shape[:axis] + shape[axis + 1:]
    target = rng.integers(0, n_classes, size=target_shape, dtype=np.int64)
    return (logits, target), {"axis": axis, "return_grad": True}


def _numpy_cross_entropy(logits, target, axis=-1, return_grad=False, **_):
    """Mean cross-entropy and its gradient in plain NumPy, for commits whose
    ``_reference`` has no ``cross_entropy`` yet."""
    logp = _reference.log_softmax(logits, axis=axis)
    idx = np.expand_dims(target, axis)
    n = target.size
    loss = -np.take_along_axis(logp, idx, axis=axis).sum() / n
    if not return_grad:
        return loss
    grad = np.exp(logp)
    np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=axis) - 1, axis=axis)
    return loss, grad / n


# function name -> how to build its arguments from (shape, axis, dtype, rng).
# The first argument is the array whose bytes the copy baseline copies.
INPUTS = {
    "softmax": _softmax_inputs,
    "log_softmax": _softmax_inputs,
    "logsumexp": _logsumexp_inputs,
    "softmax_backward": _backward_inputs(_reference.softmax),
    "log_softmax_backward": _backward_inputs(_reference.log_softmax),
    "cross_entropy": _cross_entropy_inputs,
}

# Reference implementations that are not in every commit's ``_reference``.
REFERENCE_FALLBACKS = {"cross_entropy": _numpy_cross_entropy}


def public_function(name):
    """``fastsoftmax.<name>``, looked up now; skip (NotImplementedError, which
    asv reports as skipped) on a commit that does not have it."""
    func = getattr(fastsoftmax, name, None)
    if func is None:
        raise NotImplementedError(f"fastsoftmax.{name} does not exist in this version")
    return func


def reference_function(name):
    """The NumPy twin of ``fastsoftmax.<name>``."""
    func = getattr(_reference, name, None)
    return func if func is not None else REFERENCE_FALLBACKS[name]


def interleaved_medians(funcs, repeat):
    """Median time of each callable over ``repeat`` interleaved rounds, so
    that a change of machine load affects them all alike."""
    times = [[] for _ in funcs]
    for _ in range(repeat):
        for func, record in zip(funcs, times):
            start = time.perf_counter()
            func()
            record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


class _KernelBenchmark:
    """One public function called on one case, dtype and thread count.

    Subclasses set ``params[0]``, the functions of their family.
    """

    param_names = ["function", "case", "dtype", "num_threads"]
    params = [[], list(CASES), DTYPES, THREADS]
    timeout = 300

    def setup(self, function, case, dtype, num_threads):
        self.func = public_function(function)
        self.reference = reference_function(function)
        shape, axis = CASES[case]
        rng = np.random.default_rng(SEED)
        self.args, self.kwargs = INPUTS[function](shape, axis, np.dtype(dtype), rng)
        self.reference_kwargs = dict(self.kwargs)
        self.kwargs["num_threads"] = num_threads
        self.copy_src = self.args[0]
        self.copy_dst = np.empty_like(self.copy_src)

    def call(self):
        return self.func(*self.args, **self.kwargs)

    def call_reference(self):
        return self.reference(*self.args, **self.reference_kwargs)

    def copy(self):
        np.copyto(self.copy_dst, self.copy_src)

    def time_call(self, *params):
        self.call()

    def peakmem_call(self, *params):
        self.call()

    def track_ratio_to_copy(self, *params):
        # the median discards the first round's page faults and thread start
        t_call, t_copy = interleaved_medians([self.call, self.copy], COPY_REPEAT)
        return t_call / t_copy

    track_ratio_to_copy.unit = "ratio"

    def track_ratio_to_reference(self, *params):
        t_call, t_ref = interleaved_medians([self.call, self.call_reference], REFERENCE_REPEAT)
        return t_call / t_ref

    track_ratio_to_reference.unit = "ratio"
