"""Compare fastsoftmax with NumPy, SciPy, PyTorch and scikit-learn in one interleaved run.

For each function and row length (rows of 10 ... 2**17 elements at a fixed
total size, the softmax axis last) every library's call is timed in turn,
round after round, together with ``np.copyto`` of the input's bytes on one
thread and on two (the memory floor); the result is each library's median
time divided by the copies' median times.  A second table gives the time
per call of small calls (``_timing.SMALL_SHAPES``: one sample, a minibatch,
a batch), where a call's fixed cost counts, beside PyTorch's eager call on
tensors.  Writes ``peer_comparison.md``, ``peer_comparison.csv``,
``peer_small_calls.csv`` and ``peer_comparison.png`` into ``--out``.

    python tools/compare_peers.py                 # 2**24 float32, 2 threads
    python tools/compare_peers.py --quick --out /tmp/peers
    python tools/compare_peers.py --quick --size 65536 --out /tmp/peers   # seconds
    python tools/compare_peers.py --only-linear       # the classifier head alone

The classifier head (``linear_cross_entropy``, N x H x V: 8192 x 1024 x
32000, ``--quick`` 2048 x 512 x 8000) has its own table: time / the time
of its three matrix products alone, and the peak memory of one call above
its inputs and gradients (each library in a fresh process), beside
PyTorch's naive path and its fused ``linear_cross_entropy``.

Every library allocates its result (no ``out=``), as a plain call does.  The
cases, contenders and timing are ``fastsoftmax._timing``'s, as in
``python -m fastsoftmax bench`` and the asv suite: NumPy is fastsoftmax's
pure-NumPy twin (``fastsoftmax._reference``); SciPy and NumPy run on one
thread whatever ``--threads`` says; PyTorch gets
``torch.set_num_threads(threads)``.  Libraries that are not installed, or
lack a function, are left out of that function's row.
"""

import argparse
import csv
import os
import platform
import sys

import numpy as np

from fastsoftmax import _timing

LIBRARIES = ("fastsoftmax",) + _timing.PEERS
COLORS = {"fastsoftmax": "C0", "numpy": "C1", "scipy": "C2", "torch": "C3", "sklearn": "C4"}


def run(args):
    dtype = np.dtype(args.dtype)
    total = args.size or 1 << (22 if args.quick else 24)
    lengths = _timing.PEER_QUICK_ROW_LENGTHS if args.quick else _timing.PEER_ROW_LENGTHS
    lengths = [n for n in lengths if n <= total]
    repeat = args.repeat or (3 if args.quick else 5)
    rows = []
    for function in _timing.FUNCTIONS:
        for n_cols in lengths:
            n_rows = total // n_cols
            medians = _timing.measure(function, (n_rows, n_cols), dtype=dtype,
                                      num_threads=args.threads, repeat=repeat, out=False)
            copy, floor = medians.pop("copy"), medians.pop("floor")
            for library, seconds in medians.items():
                rows.append({"function": function, "n_rows": n_rows, "n_cols": n_cols,
                             "dtype": dtype.name, "threads": args.threads,
                             "library": library, "median_s": seconds,
                             "copy_s": copy, "ratio_to_copy": seconds / copy,
                             "floor_s": floor, "ratio_to_floor": seconds / floor})
            print(f"{function:22s} {n_rows:>8d} x {n_cols:<7d} "
                  + "  ".join(f"{lib} {s / copy:6.2f}" for lib, s in medians.items()),
                  flush=True)
    return rows, {"total": total, "repeat": repeat, "dtype": dtype.name,
                  "threads": args.threads}


def run_small(args):
    """Median microseconds per call of each library on each small case."""
    dtype = np.dtype(args.dtype)
    repeat = args.repeat or (3 if args.quick else 15)
    most = 20 if args.quick else _timing.SMALL_NUMBER
    rows = []
    for function in _timing.SMALL_FUNCTIONS:
        for shape in _timing.SMALL_SHAPES:
            medians = _timing.measure_small(function, shape, dtype, num_threads=args.threads,
                                            repeat=repeat, most=most)
            torch = medians.get("torch")
            for library, seconds in medians.items():
                rows.append({"function": function, "shape": _timing.shape_name(shape),
                             "dtype": dtype.name, "threads": args.threads,
                             "library": library, "us_per_call": seconds * 1e6,
                             "ratio_to_torch": None if torch is None else seconds / torch})
            print(f"{function:22s} {_timing.shape_name(shape):>9s} "
                  + "  ".join(f"{lib} {s * 1e6:7.2f} us" for lib, s in medians.items()),
                  flush=True)
    return rows, {"repeat": repeat, "most": most}


def small_calls_markdown(rows, info):
    """The small calls' table: microseconds per call, and fastsoftmax / PyTorch."""
    libraries = [lib for lib in LIBRARIES if any(r["library"] == lib for r in rows)]
    cases = {}  # (function, shape) -> {library: row}
    for r in rows:
        cases.setdefault((r["function"], r["shape"]), {})[r["library"]] = r
    table = [[function, shape]
             + [same[lib]["us_per_call"] if lib in same else None for lib in libraries]
             + [same["fastsoftmax"]["ratio_to_torch"]]
             for (function, shape), same in cases.items()]
    return [
        "## Small calls",
        "",
        (f"Median microseconds per call (up to {info['most']} calls in a row, "
         f"{info['repeat']} interleaved rounds), each call allocating its result; the last "
         f"column is "
         f"fastsoftmax's time / PyTorch's eager call on tensors made once from the same "
         f"arrays. Cross-entropy is the mean loss and its gradient, as above."),
        "",
        *_timing.markdown_table(["function", "shape", *[f"{lib} (us)" for lib in libraries],
                                 "fastsoftmax / torch"], table),
    ]


def run_linear(args):
    """The classifier head's row: ratios to the three products, and peak memory."""
    dtype = np.dtype(args.dtype)
    shape = args.linear_shape or (_timing.LINEAR_QUICK_SHAPE if args.quick
                                  else _timing.LINEAR_PEER_SHAPE)
    n_rows, n_features, n_classes = shape
    medians = _timing.measure_linear(shape, dtype, num_threads=args.threads,
                                     repeat=args.repeat or 3)
    floor = medians.pop("matmuls")
    rows = []
    for library, seconds in medians.items():
        peak = _timing.linear_peak_memory(library, shape, dtype.name, args.threads)
        rows.append({"function": "linear_cross_entropy", "n_rows": n_rows,
                     "n_cols": n_classes, "dtype": dtype.name, "threads": args.threads,
                     "library": library, "median_s": seconds, "copy_s": floor,
                     "ratio_to_copy": seconds / floor, "floor_s": floor,
                     "ratio_to_floor": seconds / floor, "peak_extra_bytes": peak})
        print(f"linear_cross_entropy {n_rows}x{n_features}x{n_classes} {library}: "
              f"{seconds / floor:.3f} x the products, {peak / 2**30:.3f} GiB above inputs "
              f"and outputs", flush=True)
    return rows, shape


def linear_markdown(rows, shape, threads):
    """The head's table: time / the three products, memory / PyTorch's naive path."""
    naive = next((r["peak_extra_bytes"] for r in rows if r["library"] == "torch"), None)
    table = [[r["library"], r["median_s"], r["ratio_to_floor"], r["peak_extra_bytes"] / 2**30,
              r["peak_extra_bytes"] / naive if naive else None] for r in rows]
    return [
        "",
        f"## linear_cross_entropy, N x H x V = {' x '.join(map(str, shape))}",
        "",
        (f"Loss and the three gradients (x, weight, bias), {rows[0]['dtype']}, {threads} "
         f"thread(s). Time / median time of the three matrix products alone (the floor); "
         f"peak memory of one call above its inputs and gradients, each library in a fresh "
         f"process. torch: linear, cross_entropy and autograd; torch_fused: its "
         f"linear_cross_entropy with LinearCrossEntropyOptions()."),
        "",
        *_timing.markdown_table(["library", "median (s)", "time / products",
                                 "peak above inputs (GiB)", "memory / torch"], table),
    ]


def write_csv(rows, path):
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def write_markdown(rows, info, path, small_lines=(), linear=()):
    linear = list(linear)
    rows = [r for r in rows if r["function"] != "linear_cross_entropy"]
    libraries = [lib for lib in LIBRARIES if any(r["library"] == lib for r in rows)]
    cases = {}  # (function, n_rows, n_cols) -> {library: row}, in the order measured
    for r in rows:
        cases.setdefault((r["function"], r["n_rows"], r["n_cols"]), {})[r["library"]] = r
    table = []
    for (function, n_rows, n_cols), same in cases.items():
        first = next(iter(same.values()))
        table.append([function, f"{n_rows} x {n_cols}", first["copy_s"] * 1e3,
                      first["copy_s"] / first["floor_s"]]
                     + [same[lib]["ratio_to_copy"] if lib in same else None
                        for lib in libraries])
    lines = [
        "# fastsoftmax and its peers",
        "",
        (f"Median time / median time of `np.copyto` of the input's bytes, measured "
         f"in one interleaved run ({info['repeat']} rounds); lower is better. "
         f"{info['dtype']}, {info['total']} elements per call (rows x row length), "
         f"softmax axis last, {info['threads']} thread(s) for fastsoftmax and PyTorch "
         f"(NumPy and SciPy use one). Floor: 1 (backward: 1.5, logsumexp: about 0.5); "
         f"\"copy / floor\" is the copy's time / the same copy's on "
         f"{_timing.FLOOR_THREADS} threads. Cross-entropy is the mean loss and its "
         f"gradient (PyTorch: forward + autograd backward; scikit-learn: per-sample "
         f"loss and gradient). {', '.join(_timing.peer_versions())}; "
         f"{platform.machine()}, {os.cpu_count()} CPUs."),
        "",
        *_timing.markdown_table(["function", "rows x row length", "copy (ms)", "copy / floor",
                                 *libraries], table),
    ] if rows else ["# fastsoftmax and its peers"]
    if small_lines:
        lines += ["", *small_lines]
    lines += linear
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_plot(rows, info, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8), sharex=True)
    for ax, function in zip(axes.flat, _timing.FUNCTIONS):
        for library in LIBRARIES:
            sel = [r for r in rows if r["function"] == function and r["library"] == library]
            if sel:
                ax.plot([r["n_cols"] for r in sel], [r["ratio_to_copy"] for r in sel],
                        marker="o", color=COLORS[library], label=library)
        ax.axhline(_timing.FLOORS[function], color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(function)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("row length")
        ax.set_ylabel("time / copy time")
        ax.legend(fontsize="small")
    fig.suptitle(f"Ratio to np.copyto, {info['dtype']}, {info['total']} elements, "
                 f"{info['threads']} thread(s) (dashed: memory-bound floor)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    default_out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               os.pardir, "docs", "_static")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="output directory (default: docs/_static/, or none with "
                             "--only-linear: its figures are printed, and the tables of "
                             "the docs are not replaced by its one row)")
    parser.add_argument("--quick", action="store_true",
                        help="2**22 elements, 4 row lengths, 3 rounds")
    parser.add_argument("--size", type=int, default=None,
                        help="elements per call (default 2**24, --quick 2**22)")
    parser.add_argument("--threads", type=int, default=2, help="threads (default 2)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=None,
                        help="rounds of interleaved timings (default 5, --quick 3)")
    parser.add_argument("--linear-shape", type=_timing.parse_shape, default=None,
                        help="N x H x V of the linear_cross_entropy row "
                             "(default 8192x1024x32000, --quick 2048x512x8000)")
    parser.add_argument("--only-linear", action="store_true",
                        help="the linear_cross_entropy row alone")
    args = parser.parse_args(argv)
    if args.out is None and not args.only_linear:
        args.out = os.path.normpath(default_out)
    rows, info = ([], {"dtype": args.dtype, "threads": args.threads}) if args.only_linear \
        else run(args)
    small_rows, small_info = ([], None) if args.only_linear else run_small(args)
    linear_rows, shape = run_linear(args)
    if args.out is None:
        return 0
    os.makedirs(args.out, exist_ok=True)
    write_csv(rows + linear_rows, os.path.join(args.out, "peer_comparison.csv"))
    if small_rows:
        write_csv(small_rows, os.path.join(args.out, "peer_small_calls.csv"))
    write_markdown(rows, info, os.path.join(args.out, "peer_comparison.md"),
                   small_calls_markdown(small_rows, small_info) if small_rows else (),
                   linear_markdown(linear_rows, shape, args.threads))
    if rows:
        write_plot(rows, info, os.path.join(args.out, "peer_comparison.png"))
    print(f"wrote peer_comparison.md, .csv, .png and peer_small_calls.csv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
