"""``python -m fastsoftmax``: check the compiled kernels, then time them.

    python -m fastsoftmax              # self-check + speed table (< 1 minute)
    python -m fastsoftmax bench ...    # the speed table with options
    python -m fastsoftmax threshold    # measure the serial/parallel crossover

Times are medians of interleaved repeats, reported as a ratio to
``np.copyto`` of the same bytes measured in the same run, so that figures
from a busy or slower machine stay comparable.
"""

import argparse
import sys
import time

import numpy as np

from . import _api, _reference, _runtime
from ._config import get_config
from ._api import log_softmax, logsumexp, softmax, softmax_backward, log_softmax_backward

DEFAULT_CASES = ["4096x4096", "256x32000", "1048576x128"]
# the main job's table: the same row lengths, a quarter of the long-batch
# rows, so that the whole job (NumPy's reference included) stays under a
# minute on two cores
MAIN_JOB_CASES = ["4096x4096", "256x32000", "262144x128"]


def _parse_shape(text):
    return tuple(int(s) for s in text.lower().split("x"))


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def self_check():
    """Compare every compiled function with the NumPy reference on random data."""
    rng = np.random.default_rng(0)
    problems = []
    shapes = [((7,), -1), ((33, 129), -1), ((33, 129), 0), ((4, 50, 9), 1), ((5, 6, 7), (0, 2)),
              ((3, 70001), -1), ((6, 5), None)]
    n_checks = 0
    for dtype, rtol in ((np.float32, 2e-5), (np.float64, 1e-12)):
        for shape, axis in shapes:
            x = (rng.standard_normal(shape) * 5).astype(dtype)
            x.reshape(-1)[::17] = -np.inf
            dy = rng.standard_normal(shape).astype(dtype)
            where = rng.random(shape) < 0.8
            pairs = [
                ("softmax", softmax(x, axis), _reference.softmax(x, axis)),
                ("log_softmax", log_softmax(x, axis), _reference.log_softmax(x, axis)),
                ("logsumexp", logsumexp(x, axis), _reference.logsumexp(x, axis)),
                ("softmax(where=)", softmax(x, axis, where=where),
                 _reference.softmax(x, axis, where=where)),
            ]
            y, ly = _reference.softmax(x, axis), _reference.log_softmax(x, axis)
            pairs += [
                ("softmax_backward", softmax_backward(dy, y, axis),
                 _reference.softmax_backward(dy, y, axis)),
                ("log_softmax_backward", log_softmax_backward(dy, ly, axis),
                 _reference.log_softmax_backward(dy, ly, axis)),
            ]
            for name, got, want in pairs:
                n_checks += 1
                if not np.allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True):
                    err = np.nanmax(np.abs(np.asarray(got, np.float64) - want))
                    problems.append(f"{name} {shape} axis={axis} {np.dtype(dtype).name}: "
                                    f"max abs difference {err:.3g}")
    return n_checks, problems


def _time_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _contenders(func, x, threads):
    """name -> zero-argument callable, for one function on input x (last axis)."""
    from . import cross_entropy
    out = np.empty_like(x)
    rng = np.random.default_rng(1)
    c = {"copy": lambda: np.copyto(out, x)}
    if func in ("softmax_backward", "log_softmax_backward"):
        log = func == "log_softmax_backward"
        y = log_softmax(x) if log else softmax(x)
        dy = rng.standard_normal(x.shape).astype(x.dtype)
        fast = log_softmax_backward if log else softmax_backward
        c["fastsoftmax"] = lambda: fast(dy, y, out=out, num_threads=threads)
        c["numpy"] = lambda: getattr(_reference, func)(dy, y)
    elif func == "cross_entropy":
        target = rng.integers(0, x.shape[-1], x.shape[:-1])
        c["fastsoftmax"] = lambda: cross_entropy(x, target, return_grad=True, num_threads=threads)
        c["numpy"] = lambda: _reference.cross_entropy(x, target, return_grad=True)
    else:
        fast = {"softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp}[func]
        if func == "logsumexp":
            c["fastsoftmax"] = lambda: fast(x, num_threads=threads)
        else:
            c["fastsoftmax"] = lambda: fast(x, out=out, num_threads=threads)
        c["numpy"] = lambda: getattr(_reference, func)(x)
    try:
        import scipy.special as sp
        if func in ("softmax", "log_softmax", "logsumexp"):
            c["scipy"] = lambda: getattr(sp, func)(x, axis=-1)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(threads)
        xt = torch.from_numpy(x)
        if func.endswith("_backward"):
            yt, dyt = torch.from_numpy(y), torch.from_numpy(dy)
            tb = torch._log_softmax_backward_data if log else torch._softmax_backward_data
            c["torch"] = lambda: tb(dyt, yt, -1, yt.dtype)
        elif func == "cross_entropy":
            tt = torch.from_numpy(target)

            def torch_xent():
                xg = xt.detach().requires_grad_()
                torch.nn.functional.cross_entropy(xg, tt).backward()
                return xg.grad
            c["torch"] = torch_xent
        elif func == "logsumexp":
            c["torch"] = lambda: torch.logsumexp(xt, -1)
        else:
            tf = getattr(torch, func)
            ot = torch.from_numpy(out)
            c["torch"] = lambda: tf(xt, -1, out=ot) if func == "softmax" else tf(xt, -1)
    except ImportError:
        pass
    if func == "cross_entropy" and x.dtype == np.float64:
        try:
            from sklearn._loss._loss import CyHalfMultinomialLoss
            yf = target.astype(np.float64)
            loss_out = np.empty(x.shape[0])
            grad_out = np.empty_like(x)
            sk = CyHalfMultinomialLoss()
            c["sklearn"] = lambda: sk.loss_gradient(yf, x, None, loss_out, grad_out, threads)
        except ImportError:
            pass
    return c


def bench(funcs, shapes, dtypes, threads, repeats):
    """Run the interleaved timing and return rows of results."""
    rows = []
    total = len(funcs) * len(shapes) * len(dtypes)
    k = 0
    for dtype in dtypes:
        for shape in shapes:
            x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
            for func in funcs:
                k += 1
                _progress(f"[{k}/{total}] {func} {shape} {np.dtype(dtype).name} ...")
                c = _contenders(func, x, threads)
                for fn in c.values():       # warm up: page faults, thread pools
                    fn()
                times = {name: [] for name in c}
                for _ in range(repeats):
                    for name, fn in c.items():
                        times[name].append(_time_once(fn))
                med = {name: float(np.median(t)) for name, t in times.items()}
                copy = med["copy"]
                rows.append({
                    "function": func, "shape": "x".join(map(str, shape)),
                    "dtype": np.dtype(dtype).name, "threads": threads,
                    "copy_ms": copy * 1e3, "fastsoftmax_ms": med["fastsoftmax"] * 1e3,
                    **{f"{name}/copy": med[name] / copy for name in c if name != "copy"},
                    "fastsoftmax/torch": med["fastsoftmax"] / med["torch"] if "torch" in med else None,
                })
    return rows


def print_table(rows):
    cols = ["function", "shape", "dtype", "threads", "fastsoftmax_ms", "fastsoftmax/copy",
            "numpy/copy", "scipy/copy", "torch/copy", "sklearn/copy", "fastsoftmax/torch"]
    cols = [c for c in cols if any(r.get(c) is not None for r in rows)]

    def fmt(v):
        if v is None:
            return "-"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    table = [cols] + [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(table[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")


def measure_threshold(threads=2, repeats=15):
    """Time 1 thread vs `threads` threads on growing sizes; print the crossover."""
    print("elements  1-thread us  %d-thread us" % threads)
    crossover = None
    for log2 in range(10, 21):
        x = np.random.default_rng(0).standard_normal((max(1, (1 << log2) // 64), 64))
        out = np.empty_like(x)
        t1, tn = [], []
        for _ in range(repeats):
            t1.append(_time_once(lambda: softmax(x, out=out, num_threads=1)))
            tn.append(_time_once(lambda: softmax(x, out=out, num_threads=threads)))
        a, b = np.median(t1) * 1e6, np.median(tn) * 1e6
        print(f"{x.size:8d}  {a:11.1f}  {b:11.1f}")
        if crossover is None and b < a:
            crossover = x.size
    print(f"parallel first wins at {crossover} elements "
          f"(SERIAL_THRESHOLD is {_runtime.SERIAL_THRESHOLD})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastsoftmax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="the speed table, with options")
    b.add_argument("--functions", default="softmax,log_softmax",
                   help="comma-separated: softmax, log_softmax, logsumexp, softmax_backward, "
                        "log_softmax_backward, cross_entropy")
    b.add_argument("--shapes", default=",".join(DEFAULT_CASES), help="e.g. 4096x4096,256x32000")
    b.add_argument("--dtypes", default="float32", help="float32,float64")
    b.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    b.add_argument("--repeats", type=int, default=7)
    t = sub.add_parser("threshold", help="measure the serial/parallel crossover")
    t.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    cfg = get_config()
    print(f"fastsoftmax: backend={cfg['backend']} simd={cfg['simd']} openmp={cfg['openmp']} "
          f"threads={cfg['default_num_threads']}")
    if args.command == "threshold":
        measure_threshold(args.threads)
        return 0
    if args.command is None:
        _progress("checking the compiled kernels against the NumPy reference ...")
        n, problems = self_check()
        if problems:
            print(f"FAILED {len(problems)} of {n} checks:")
            for p in problems:
                print("  " + p)
            return 1
        print(f"self-check: {n} of {n} comparisons with the NumPy reference agree")
        funcs, shapes, dtypes = ["softmax", "log_softmax"], MAIN_JOB_CASES, ["float32"]
        threads, repeats = None, 5
    else:
        funcs = args.functions.split(",")
        shapes, dtypes = args.shapes.split(","), args.dtypes.split(",")
        threads, repeats = args.threads, args.repeats
    threads = threads or _runtime.default_num_threads()
    rows = bench(funcs, [_parse_shape(s) for s in shapes], dtypes, threads, repeats)
    print(f"\nmedian of {repeats} interleaved runs, {threads} thread(s); "
          "x/copy = time / time of np.copyto of the same bytes")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
