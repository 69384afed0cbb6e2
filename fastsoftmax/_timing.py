"""What every benchmark of fastsoftmax measures, and how it times it.

``python -m fastsoftmax``, the asv suite (``asv_benchmarks/benchmarks``) and
``tools/compare_peers.py`` all take their cases, inputs, contenders and
medians from here, so a ratio means the same thing whichever printed it.

- The cases, as data: `FUNCTIONS` and their `FAMILIES`, the memory `FLOORS`,
  the shapes of each consumer (`BENCH_SHAPES`, `MAIN_JOB_SHAPES`,
  `SUITE_CASES`, `PEER_ROW_LENGTHS`, the small calls `SMALL_SHAPES`).
- `make_inputs`: the arguments of ``fastsoftmax.<function>`` for one case.
- The contenders, each a no-argument callable: `copy_call` (``np.copyto``
  of the input's bytes, one thread), `floor_call` (the same copy on two
  threads: the machine's memory floor), `fastsoftmax_call`, and
  `peer_calls`: NumPy (the ``_reference`` twin), SciPy, PyTorch and
  scikit-learn, each left out when it is not installed or lacks the
  function.
- `interleaved_medians`: every contender in turn, round after round
  (each round starting one further on), so that a change of machine load
  touches them all alike; `measure` does a
  whole case; `measure_small` the time per call of a small one;
  `threshold` times 1 against n threads over growing sizes.
- `markdown_table`: the tables the command and the scripts print.

Only public names and ``_reference`` of the package this file belongs to are
used (a vendored copy's own, or, when the asv suite loads the file from the
checkout to benchmark a commit that predates it, the installed one).
"""

import functools
import importlib
import platform
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

fastsoftmax = importlib.import_module(__package__ or "fastsoftmax")
_reference = importlib.import_module(fastsoftmax.__name__ + "._reference")

FUNCTIONS = ("softmax", "log_softmax", "logsumexp", "softmax_backward",
             "log_softmax_backward", "cross_entropy")
FAMILIES = {
    "forward": ("softmax", "log_softmax", "logsumexp"),
    "backward": ("softmax_backward", "log_softmax_backward"),
    "cross_entropy": ("cross_entropy",),
}
# The memory-bound floor of each function as a ratio to the copy: read one
# array and write one; backward reads two; logsumexp writes almost nothing.
FLOORS = {"softmax": 1.0, "log_softmax": 1.0, "logsumexp": 0.5, "softmax_backward": 1.5,
          "log_softmax_backward": 1.5, "cross_entropy": 1.0}
PEERS = ("numpy", "scipy", "torch", "sklearn")
SEED = 20240611
FLOOR_THREADS = 2

# `python -m fastsoftmax bench`: long rows, LLM-vocabulary rows, short rows.
BENCH_SHAPES = ((4096, 4096), (256, 32000), (1048576, 128))
# `python -m fastsoftmax`: the same row lengths, a quarter of the short-row
# batch, so that the whole command (NumPy's reference included) stays under
# a minute on two cores.
MAIN_JOB_SHAPES = ((4096, 4096), (256, 32000), (262144, 128))

# The asv suite: name -> (shape, axis).  2**22 elements each: 16 MiB in
# float32, 32 MiB in float64, beyond an 8 MiB last-level cache, so each case
# measures memory traffic; small enough for a quick run of the whole suite
# on two cores.
SUITE_CASES = {
    "rows_2048x2048": ((2048, 2048), -1),
    "vocab_128x32000": ((128, 32000), -1),
    "small_rows_419430x10": ((419430, 10), -1),
    "long_rows_4x1048576": ((4, 1 << 20), -1),
    "axis0_2048x2048": ((2048, 2048), 0),
    "axis1_64x1000x64": ((64, 1000, 64), 1),
    "axis1_100x10x4096": ((100, 10, 4096), 1),
    "axis1_12x21x16384": ((12, 21, 16384), 1),    # segmentation: 21 classes, 128x128 pixels
}
SUITE_DTYPES = ("float32", "float64")
SUITE_THREADS = (1, 2)

# The peer comparison: these row lengths at a fixed total size, axis last.
PEER_ROW_LENGTHS = (10, 32, 128, 512, 2048, 8192, 32768, 131072)
PEER_QUICK_ROW_LENGTHS = (10, 512, 32768, 131072)

# Small calls, where the fixed cost of a call counts and not memory traffic:
# one sample's logits, a minibatch, a batch; time per call beside PyTorch's
# eager call on tensors (the peer comparison) and alone (the asv suite).
SMALL_FUNCTIONS = ("softmax", "log_softmax", "logsumexp", "cross_entropy")
SMALL_SHAPES = ((10,), (32, 10), (64, 1000), (128, 128))
# Calls per timed sample, at most: a call of about a microsecond is far
# above the clock's resolution and the timing loop's own cost only over
# many calls.  Slower contenders get fewer (`calls_per_sample`).
SMALL_NUMBER = 200
SMALL_SAMPLE_SECONDS = 2e-3


# linear_cross_entropy, a classifier head of shape (N, H, V): rows,
# features, classes.  Its floor is not a copy but its three matrix products
# alone (the logits, grad_weight and grad_x), timed in the same run; its
# peers are PyTorch's naive path (linear, cross_entropy, autograd) and its
# own fused linear_cross_entropy with the default options.
LINEAR_FUNCTIONS = ("linear_cross_entropy",)
LINEAR_PEERS = ("torch", "torch_fused")
LINEAR_PEER_SHAPE = (8192, 1024, 32000)
LINEAR_QUICK_SHAPE = (2048, 512, 8000)
# The asv suite: about 13 GFLOP, a tenth of a second per call on two cores.
LINEAR_SUITE_CASES = {"head_1024x256x8192": (1024, 256, 8192)}

def parse_shape(text):
    """``"4096x4096"`` -> ``(4096, 4096)``."""
    return tuple(int(s) for s in text.lower().split("x"))


def shape_name(shape):
    """``(4096, 4096)`` -> ``"4096x4096"``."""
    return "x".join(map(str, shape))


# --- inputs -----------------------------------------------------------------

def make_inputs(function, shape, axis=-1, dtype="float32", *, out=True, seed=SEED):
    """The arguments ``(args, kwargs)`` of ``fastsoftmax.<function>`` for one case.

    ``args[0]`` is the array whose bytes the copy baselines copy.  With
    ``out=True`` the functions that take ``out=`` write into an array made
    here, so that the timings are the kernels' and not the allocator's.
    ``num_threads`` is not in ``kwargs``; `fastsoftmax_call` adds it.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=dtype)
    kwargs = {"axis": axis}
    if function in FAMILIES["backward"]:
        forward = _reference.softmax if function == "softmax_backward" else _reference.log_softmax
        args = (rng.standard_normal(shape, dtype=dtype), forward(x, axis=axis))
    elif function == "cross_entropy":
        axis = axis % len(shape)
        target_shape = shape[:axis] + shape[axis + 1:]
        target = rng.integers(0, shape[axis], size=target_shape, dtype=np.int64)
        args = (x * 3, target)
        kwargs = {"axis": axis, "return_grad": True}
    else:
        args = (x,)
    if out and function != "logsumexp" and function != "cross_entropy":
        kwargs["out"] = np.empty_like(x)
    return args, kwargs


# --- contenders -------------------------------------------------------------

def public_function(name):
    """``fastsoftmax.<name>``, looked up now (so a patched one is seen).

    Raises NotImplementedError, which asv reports as skipped, on a version
    of fastsoftmax that does not have it.
    """
    func = getattr(fastsoftmax, name, None)
    if func is None:
        raise NotImplementedError(f"fastsoftmax.{name} does not exist in this version")
    return func


def _numpy_cross_entropy(logits, target, axis=-1, return_grad=False, **_):
    """Mean cross-entropy and its gradient in plain NumPy, for versions whose
    ``_reference`` has no ``cross_entropy`` yet."""
    logp = _reference.log_softmax(logits, axis=axis)
    idx = np.expand_dims(target, axis)
    loss = -np.take_along_axis(logp, idx, axis=axis).sum() / target.size
    if not return_grad:
        return loss
    grad = np.exp(logp)
    np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=axis) - 1, axis=axis)
    return loss, grad / target.size


def reference_function(name):
    """The NumPy twin of ``fastsoftmax.<name>`` in ``fastsoftmax._reference``."""
    func = getattr(_reference, name, None)
    if func is None and name == "cross_entropy":
        return _numpy_cross_entropy
    return func


def cpu_name():
    """The CPU's model name (``lscpu``), to head every figure with."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def copy_call(src, dst=None):
    """``np.copyto`` of ``src``'s bytes into ``dst`` (default: an array made
    here): one thread.

    Pass the kernel's own ``out=`` array as ``dst`` to compare the two on the
    same pages: a fresh destination may or may not be backed by huge pages,
    which moves a copy by up to a fifth from one array to the next.
    """
    dst = np.empty_like(src) if dst is None else dst
    return lambda: np.copyto(dst, src)


@functools.cache
def _copy_pool(n_threads):
    return ThreadPoolExecutor(n_threads, thread_name_prefix="fastsoftmax-copy")


def floor_call(src, n_threads=FLOOR_THREADS, dst=None):
    """The same copy split into ``n_threads`` parts copied at once.

    ``np.copyto`` releases the GIL, so the parts run in parallel: this is
    the memcpy floor that every kernel is measured against.  ``dst`` as in
    `copy_call`.
    """
    dst = np.empty_like(src) if dst is None else dst
    if not (src.flags.c_contiguous and dst.flags.c_contiguous):
        return lambda: np.copyto(dst, src)
    pool = _copy_pool(n_threads)
    dst_parts = np.array_split(dst.reshape(-1), n_threads)
    src_parts = np.array_split(src.reshape(-1), n_threads)
    return lambda: list(pool.map(np.copyto, dst_parts, src_parts))


def fastsoftmax_call(function, args, kwargs, num_threads):
    """``fastsoftmax.<function>(*args, **kwargs, num_threads=num_threads)``."""
    func = public_function(function)
    kwargs = dict(kwargs, num_threads=num_threads)
    return lambda: func(*args, **kwargs)


@functools.cache
def _optional(module):
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _numpy_peer(function, args, kwargs, num_threads):
    func = reference_function(function)
    return None if func is None else (lambda: func(*args, **kwargs))


def _scipy_peer(function, args, kwargs, num_threads):
    special = _optional("scipy.special")
    if special is None or function not in FAMILIES["forward"]:
        return None
    func, x, axis = getattr(special, function), args[0], kwargs["axis"]
    return lambda: func(x, axis=axis)


def _torch_peer(function, args, kwargs, num_threads):
    torch = _optional("torch")
    axis = kwargs["axis"]
    if torch is None or not isinstance(axis, int):
        return None
    torch.set_num_threads(num_threads)
    tensors = [torch.from_numpy(a) for a in args]
    # PyTorch writes into out= too where fastsoftmax does (its keyword varies)
    out_key = {"softmax_backward": "grad_input"}.get(function, "out")
    out = {} if "out" not in kwargs else {out_key: torch.from_numpy(kwargs["out"])}
    if function in ("softmax", "log_softmax"):
        func, x = getattr(torch, function), tensors[0]
        return lambda: func(x, axis, **out)
    if function == "logsumexp":
        x = tensors[0]
        return lambda: torch.logsumexp(x, axis)
    if function in FAMILIES["backward"]:
        func = (torch._softmax_backward_data if function == "softmax_backward"
                else torch._log_softmax_backward_data)
        dy, y = tensors
        return lambda: func(dy, y, axis, y.dtype, **out)
    if function == "cross_entropy":
        import torch.nn.functional as F

        logits = tensors[0].requires_grad_(True)
        target = tensors[1]

        def loss_and_grad():  # forward + autograd backward; PyTorch's class axis is 1
            logits.grad = None
            loss = F.cross_entropy(logits.movedim(axis, 1) if logits.ndim > 1 else logits,
                                   target)
            loss.backward()
            return loss, logits.grad

        return loss_and_grad
    return None


def _sklearn_peer(function, args, kwargs, num_threads):
    if function != "cross_entropy" or args[0].ndim != 2 or kwargs["axis"] != 1:
        return None
    loss_module = _optional("sklearn._loss._loss")
    if loss_module is None:
        return None
    # the unreduced loss and gradient of each sample (n_samples, n_classes)
    logits, target = args
    y_true = target.astype(logits.dtype)
    loss_out = np.empty(logits.shape[0], logits.dtype)
    grad_out = np.empty_like(logits)
    loss = loss_module.CyHalfMultinomialLoss()

    def loss_and_grad():
        loss.loss_gradient(y_true, logits, None, loss_out, grad_out, num_threads)
        return loss_out, grad_out

    return loss_and_grad


_PEERS = {"numpy": _numpy_peer, "scipy": _scipy_peer, "torch": _torch_peer,
          "sklearn": _sklearn_peer}


def peer_calls(function, args, kwargs, num_threads, peers=PEERS):
    """name -> callable computing ``function`` on the same inputs, for each of
    ``peers`` that is installed and has the function.

    ``numpy`` is ``fastsoftmax._reference`` (one thread, ``out=`` when given);
    SciPy runs on one thread; PyTorch gets ``torch.set_num_threads`` and
    writes into ``out=`` when given; scikit-learn's multinomial loss gives
    per-sample loss and gradient, class axis last.
    """
    calls = {}
    for name in peers:
        call = _PEERS[name](function, args, kwargs, num_threads)
        if call is not None:
            calls[name] = call
    return calls


def contenders(function, args, kwargs, num_threads, peers=PEERS):
    """``copy``, ``floor``, ``fastsoftmax`` and the installed ``peers``."""
    return {"copy": copy_call(args[0]), "floor": floor_call(args[0]),
            "fastsoftmax": fastsoftmax_call(function, args, kwargs, num_threads),
            **peer_calls(function, args, kwargs, num_threads, peers)}


def peer_versions():
    """``"NumPy 2.x"``, ... for NumPy and each installed peer."""
    names = {"scipy": "SciPy", "torch": "PyTorch", "sklearn": "scikit-learn"}
    out = [f"fastsoftmax {fastsoftmax.__version__}", f"NumPy {np.__version__}"]
    for module, name in names.items():
        if _optional(module) is not None:
            out.append(f"{name} {_optional(module).__version__}")
    return out


# --- the classifier head ------------------------------------------------------

def make_linear_inputs(shape, dtype="float32", *, seed=SEED):
    """The arguments ``(args, kwargs)`` of ``fastsoftmax.linear_cross_entropy``
    for a head of shape ``(N, H, V)``: class-index targets, a bias, and the
    loss with its three gradients (``return_grad=True``)."""
    n_rows, n_features, n_classes = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_features), dtype=dtype)
    linear_weight = rng.standard_normal((n_classes, n_features), dtype=dtype)
    linear_weight *= np.sqrt(1.0 / max(1, n_features), dtype=linear_weight.dtype)
    bias = rng.standard_normal(n_classes, dtype=dtype)
    target = rng.integers(0, n_classes, n_rows)
    return (x, linear_weight, target), {"linear_bias": bias, "return_grad": True}


def matmuls_call(args):
    """The head's floor: its three matrix products alone, on the whole logits."""
    x, linear_weight = args[0], args[1]
    logits = np.empty((x.shape[0], linear_weight.shape[0]), x.dtype)
    grad_weight, grad_x = np.empty_like(linear_weight), np.empty_like(x)

    def call():
        np.matmul(x, linear_weight.T, out=logits)
        np.matmul(logits.T, x, out=grad_weight)
        np.matmul(logits, linear_weight, out=grad_x)

    return call


def linear_peer_calls(args, kwargs, num_threads, peers=LINEAR_PEERS):
    """name -> callable computing the head's loss and gradients, for each of
    ``peers`` (``torch``: linear, cross_entropy and autograd on the whole
    logits; ``torch_fused``: ``linear_cross_entropy`` with
    ``LinearCrossEntropyOptions()``); left out where PyTorch lacks them."""
    torch = _optional("torch")
    if torch is None:
        return {}
    import torch.nn.functional as F

    torch.set_num_threads(num_threads)
    x, linear_weight, target = (torch.from_numpy(np.asarray(a)) for a in args)
    bias = torch.from_numpy(kwargs["linear_bias"])
    leaves = [t.requires_grad_(True) for t in (x, linear_weight, bias)]

    def run(loss_of):
        def call():
            for t in leaves:
                t.grad = None
            loss = loss_of()
            loss.backward()
            return loss, tuple(t.grad for t in leaves)
        return call

    calls = {}
    if "torch" in peers:
        calls["torch"] = run(lambda: F.cross_entropy(F.linear(x, linear_weight, bias), target))
    fused = getattr(F, "linear_cross_entropy", None)
    if "torch_fused" in peers and fused is not None:
        options = torch.nn.LinearCrossEntropyOptions()
        calls["torch_fused"] = run(lambda: fused(x, linear_weight, target, linear_bias=bias,
                                                 options=options))
    return calls


def linear_contenders(args, kwargs, num_threads, peers=LINEAR_PEERS):
    """``matmuls``, ``fastsoftmax`` and the installed ``peers``."""
    return {"matmuls": matmuls_call(args),
            "fastsoftmax": fastsoftmax_call("linear_cross_entropy", args, kwargs, num_threads),
            **linear_peer_calls(args, kwargs, num_threads, peers)}


def _rss_bytes(field):
    """VmRSS or VmHWM of this process from /proc, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def linear_peak_memory(contender, shape, dtype="float32", num_threads=2):
    """Peak resident memory of one call of ``contender`` on a head of
    ``shape``, above its inputs and its outputs (the three gradients), in
    bytes; run in a fresh process, after a warm-up call on a tiny head so
    that libraries and thread pools are already in place.  Linux only: the
    peak is reset through ``/proc/self/clear_refs``."""
    import subprocess
    import sys

    package = fastsoftmax.__name__
    code = f"""
import gc
from {package} import _timing as t
warm = t.make_linear_inputs((64, 16, 128), {dtype!r})
t.linear_contenders(*warm, {num_threads})[{contender!r}]()
args, kwargs = t.make_linear_inputs({tuple(shape)!r}, {dtype!r})
call = t.linear_contenders(args, kwargs, {num_threads})[{contender!r}]
gc.collect()
before = t._rss_bytes("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
call()
outputs = sum(a.nbytes for a in (args[0], args[1], kwargs["linear_bias"]))
print(t._rss_bytes("VmHWM") - before - outputs)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return int(result.stdout.split()[-1])

# --- timing -----------------------------------------------------------------

def interleaved_medians(calls, repeat, warmup=1, number=1):
    """Median seconds of one call of each of ``calls`` (name -> callable).

    After ``warmup`` untimed rounds (page faults, thread pools), each round
    times every callable in turn, ``number`` calls in a row, so that a
    change of machine load touches them all alike.  Each round starts one
    callable further on, so that none always runs right after the same one:
    a call can leave a cost to the next.  (In a virtual machine, memory
    freed for a few seconds goes back to the host, and the next call that
    allocates faults it in again at 1-2.5 ms a MiB: on AMD EPYC Zen 5, a
    linear_cross_entropy right after the 6.7 s of three products took
    1.08x the time of the same call run next.)
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    names = list(calls)
    times = {name: [] for name in names}
    calls_in_row = range(number)
    for round_ in range(repeat):
        start_at = round_ % len(names)
        for name in names[start_at:] + names[:start_at]:
            call = calls[name]
            start = time.perf_counter()
            for _ in calls_in_row:
                call()
            times[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(function, shape, axis=-1, dtype="float32", *, num_threads, repeat, out=True,
            peers=PEERS):
    """Medians of every contender of one case: name -> seconds."""
    args, kwargs = make_inputs(function, shape, axis, dtype, out=out)
    medians = interleaved_medians(contenders(function, args, kwargs, num_threads, peers), repeat)
    # on small arrays handing the halves to threads costs more than the copy
    # itself (tens of microseconds): the floor is then the one-thread copy
    medians["floor"] = min(medians["floor"], medians["copy"])
    return medians


def calls_per_sample(calls, most=SMALL_NUMBER, seconds=SMALL_SAMPLE_SECONDS):
    """How many calls in a row make a sample of about ``seconds`` for the
    slowest of ``calls`` (one untimed and one timed call each), at most ``most``."""
    slowest = 0.0
    for call in calls.values():
        call()
        start = time.perf_counter()
        call()
        slowest = max(slowest, time.perf_counter() - start)
    return max(1, min(most, int(seconds / max(slowest, 1e-9))))


def measure_small(function, shape, dtype="float32", *, num_threads, repeat, most=SMALL_NUMBER,
                  peers=PEERS):
    """Median seconds per call of fastsoftmax and each installed peer on one
    small case (inputs allocated by each call, no ``out=``): name -> seconds."""
    args, kwargs = make_inputs(function, shape, dtype=dtype, out=False)
    calls = {"fastsoftmax": fastsoftmax_call(function, args, kwargs, num_threads),
             **peer_calls(function, args, kwargs, num_threads, peers)}
    return interleaved_medians(calls, repeat, number=calls_per_sample(calls, most))


def measure_linear(shape, dtype="float32", *, num_threads, repeat, peers=LINEAR_PEERS):
    """Medians of every contender of one head: name -> seconds."""
    args, kwargs = make_linear_inputs(shape, dtype)
    return interleaved_medians(linear_contenders(args, kwargs, num_threads, peers), repeat)

def threshold(num_threads=2, repeat=15, n_cols=64, log2_sizes=range(10, 21)):
    """Softmax on 1 and on ``num_threads`` threads over growing sizes.

    Yields ``(elements, seconds_1_thread, seconds_n_threads)``: where the
    second first wins is the serial/parallel crossover.
    """
    for log2 in log2_sizes:
        shape = (max(1, (1 << log2) // n_cols), n_cols)
        args, kwargs = make_inputs("softmax", shape, dtype="float64", seed=0)
        calls = {n: fastsoftmax_call("softmax", args, kwargs, n) for n in (1, num_threads)}
        medians = interleaved_medians(calls, repeat, warmup=0)
        yield args[0].size, medians[1], medians[num_threads]


def markdown_table(header, rows):
    """Lines of a Markdown table with aligned columns; None shows as ``-``."""
    def text(v):
        if v is None:
            return "-"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    table = [list(map(str, header))] + [[text(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |"
             for row in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines
