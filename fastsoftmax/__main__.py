"""``python -m fastsoftmax``: check the compiled kernels, then time them.

    python -m fastsoftmax              # self-check + speed table (< 1 minute)
    python -m fastsoftmax bench ...    # the speed table with options
    python -m fastsoftmax threshold    # measure the serial/parallel crossover

Times are medians of interleaved repeats, reported as a ratio to
``np.copyto`` of the same bytes measured in the same run (and to the same
copy on two threads, the memory floor), so that figures from a busy or
slower machine stay comparable.
"""

import argparse
import importlib
import itertools
import sys

import numpy as np

from . import _reference, _runtime, _timing

# this package under whatever name it has (a vendored copy's own)
fs = importlib.import_module(__package__)


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
            y, ly = _reference.softmax(x, axis), _reference.log_softmax(x, axis)
            # (label, function, arguments): each called in fastsoftmax and _reference
            checks = [
                ("softmax", "softmax", (x, axis), {}),
                ("log_softmax", "log_softmax", (x, axis), {}),
                ("logsumexp", "logsumexp", (x, axis), {}),
                ("softmax(where=)", "softmax", (x, axis), {"where": where}),
                ("softmax_backward", "softmax_backward", (dy, y, axis), {}),
                ("log_softmax_backward", "log_softmax_backward", (dy, ly, axis), {}),
            ]
            for label, name, args, kwargs in checks:
                n_checks += 1
                got = getattr(fs, name)(*args, **kwargs)
                want = getattr(_reference, name)(*args, **kwargs)
                if not np.allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True):
                    err = np.nanmax(np.abs(np.asarray(got, np.float64) - want))
                    problems.append(f"{label} {shape} axis={axis} {np.dtype(dtype).name}: "
                                    f"max abs difference {err:.3g}")
    return n_checks, problems


COLUMNS = ["function", "shape", "dtype", "threads", "fastsoftmax_ms", "fastsoftmax/floor",
           "fastsoftmax/copy", "numpy/copy", "scipy/copy", "torch/copy", "sklearn/copy",
           "fastsoftmax/torch"]


def bench(funcs, shapes, dtypes, threads, repeats):
    """Time every (dtype, shape, function) case; return one row of ratios each."""
    rows = []
    cases = list(itertools.product(dtypes, shapes, funcs))
    for k, (dtype, shape, func) in enumerate(cases, 1):
        dtype = np.dtype(dtype).name
        _progress(f"[{k}/{len(cases)}] {func} {shape} {dtype} ...")
        med = _timing.measure(func, shape, dtype=dtype, num_threads=threads, repeat=repeats)
        copy, fast = med.pop("copy"), med["fastsoftmax"]
        rows.append({
            "function": func, "shape": _timing.shape_name(shape), "dtype": dtype,
            "threads": threads, "copy_ms": copy * 1e3, "fastsoftmax_ms": fast * 1e3,
            "fastsoftmax/floor": fast / med["floor"],
            **{f"{name}/copy": seconds / copy for name, seconds in med.items()},
            "fastsoftmax/torch": fast / med["torch"] if "torch" in med else None,
        })
    return rows


def print_table(rows):
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    print("\n".join(_timing.markdown_table(cols, [[r.get(c) for c in cols] for r in rows])))


def measure_threshold(threads=2, repeats=15):
    """Time 1 thread vs `threads` threads on growing sizes; print the crossover."""
    print(f"elements  1-thread us  {threads}-thread us")
    crossover = None
    for size, t1, tn in _timing.threshold(threads, repeats):
        print(f"{size:8d}  {t1 * 1e6:11.1f}  {tn * 1e6:11.1f}")
        if crossover is None and tn < t1:
            crossover = size
    print(f"parallel first wins at {crossover} elements "
          f"(SERIAL_THRESHOLD is {_runtime.SERIAL_THRESHOLD})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastsoftmax", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="the speed table, with options")
    b.add_argument("--functions", default="softmax,log_softmax",
                   help="comma-separated: " + ", ".join(_timing.FUNCTIONS))
    b.add_argument("--shapes", default=",".join(map(_timing.shape_name, _timing.BENCH_SHAPES)),
                   help="e.g. 4096x4096,256x32000")
    b.add_argument("--dtypes", default="float32", help="float32,float64")
    b.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    b.add_argument("--repeats", type=int, default=7)
    t = sub.add_parser("threshold", help="measure the serial/parallel crossover")
    t.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    cfg = fs.get_config()
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
        funcs, shapes, dtypes = ["softmax", "log_softmax"], _timing.MAIN_JOB_SHAPES, ["float32"]
        threads, repeats = None, 5
    else:
        funcs = args.functions.split(",")
        shapes = [_timing.parse_shape(s) for s in args.shapes.split(",")]
        dtypes = args.dtypes.split(",")
        threads, repeats = args.threads, args.repeats
    threads = threads or _runtime.default_num_threads()
    rows = bench(funcs, shapes, dtypes, threads, repeats)
    print(f"\nmedian of {repeats} interleaved runs, {threads} thread(s); "
          "x/copy = time / time of np.copyto of the same bytes; "
          f"x/floor = time / time of that copy on {_timing.FLOOR_THREADS} threads")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
