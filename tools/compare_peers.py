"""Compare fastsoftmax with NumPy, SciPy and PyTorch in one interleaved run.

For each function and row length (rows of 10 ... 2**17 elements at a fixed
total size, the softmax axis last) every library's call is timed in turn,
round after round, together with ``np.copyto`` of the input's bytes; the
result is each library's median time divided by the copy's median time.
Writes ``peer_comparison.md``, ``peer_comparison.csv`` and
``peer_comparison.png`` into ``--out``.

    python tools/compare_peers.py                 # 2**24 float32, 2 threads
    python tools/compare_peers.py --quick --out /tmp/peers

NumPy is fastsoftmax's pure-NumPy twin (``fastsoftmax._reference``); SciPy
and NumPy run on one thread whatever ``--threads`` says; PyTorch gets
``torch.set_num_threads(threads)``.  Libraries that are not installed, or
lack a function, are left out of that function's row.
"""

import argparse
import csv
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastsoftmax
from fastsoftmax import _reference

try:
    import scipy
    import scipy.special
except ImportError:  # pragma: no cover - depends on the environment
    scipy = None
try:
    import torch
    import torch.nn.functional
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

LIBRARIES = ["fastsoftmax", "numpy", "scipy", "torch"]
COLORS = {"fastsoftmax": "C0", "numpy": "C1", "scipy": "C2", "torch": "C3"}
FUNCTIONS = ["softmax", "log_softmax", "logsumexp", "softmax_backward",
             "log_softmax_backward", "cross_entropy"]
# The memory-bound floor of each function as a ratio to the copy: read one
# array and write one; backward reads two; logsumexp writes almost nothing.
FLOORS = {"softmax": 1.0, "log_softmax": 1.0, "logsumexp": 0.5, "softmax_backward": 1.5,
          "log_softmax_backward": 1.5, "cross_entropy": 1.0}
ROW_LENGTHS = [10, 32, 128, 512, 2048, 8192, 32768, 131072]
QUICK_ROW_LENGTHS = [10, 512, 32768, 131072]


def _numpy_cross_entropy(logits, target, return_grad=True):
    """Mean cross-entropy of class indices and its gradient, plain NumPy."""
    logp = _reference.log_softmax(logits, axis=-1)
    rows = np.arange(target.size)
    loss = -logp[rows, target].mean()
    grad = np.exp(logp)
    grad[rows, target] -= 1
    grad /= target.size
    return loss, grad


def make_inputs(function, n_rows, n_cols, dtype, rng):
    """NumPy inputs of ``function``: ``x`` or ``(dy, y)`` or ``(logits, target)``."""
    x = rng.standard_normal((n_rows, n_cols), dtype=dtype)
    if function in ("softmax_backward", "log_softmax_backward"):
        forward = _reference.softmax if function == "softmax_backward" else _reference.log_softmax
        return {"dy": rng.standard_normal((n_rows, n_cols), dtype=dtype), "y": forward(x)}
    if function == "cross_entropy":
        return {"logits": x * 3, "target": rng.integers(0, n_cols, size=n_rows)}
    return {"x": x}


def callables(function, inputs, threads):
    """library -> a no-argument callable computing ``function`` on ``inputs``."""
    fs = getattr(fastsoftmax, function, None)
    ref = getattr(_reference, function, None)
    calls = {}
    if function in ("softmax", "log_softmax", "logsumexp"):
        x = inputs["x"]
        calls["fastsoftmax"] = lambda: fs(x, axis=-1, num_threads=threads)
        calls["numpy"] = lambda: ref(x, axis=-1)
        if scipy is not None:
            sp = getattr(scipy.special, function)
            calls["scipy"] = lambda: sp(x, axis=-1)
        if torch is not None:
            tx = torch.from_numpy(x)
            tf = getattr(torch, function)
            calls["torch"] = lambda: tf(tx, -1)
    elif function in ("softmax_backward", "log_softmax_backward"):
        dy, y = inputs["dy"], inputs["y"]
        calls["fastsoftmax"] = lambda: fs(dy, y, axis=-1, num_threads=threads)
        calls["numpy"] = lambda: ref(dy, y, axis=-1)
        if torch is not None:
            tdy, ty = torch.from_numpy(dy), torch.from_numpy(y)
            tb = (torch._softmax_backward_data if function == "softmax_backward"
                  else torch._log_softmax_backward_data)
            calls["torch"] = lambda: tb(tdy, ty, -1, ty.dtype)
    elif function == "cross_entropy":
        logits, target = inputs["logits"], inputs["target"]
        if fs is not None:
            calls["fastsoftmax"] = lambda: fs(logits, target, axis=-1, return_grad=True,
                                              num_threads=threads)
        if ref is not None:
            calls["numpy"] = lambda: ref(logits, target, axis=-1, return_grad=True)
        else:
            calls["numpy"] = lambda: _numpy_cross_entropy(logits, target)
        if torch is not None:
            tl = torch.from_numpy(logits).requires_grad_(True)
            tt = torch.from_numpy(target)

            def torch_loss_and_grad():
                tl.grad = None
                loss = torch.nn.functional.cross_entropy(tl, tt)
                loss.backward()
                return loss, tl.grad

            calls["torch"] = torch_loss_and_grad
    return calls


def measure(function, n_rows, n_cols, dtype, threads, repeat, rng):
    """Median seconds of each library and of the copy, interleaved."""
    inputs = make_inputs(function, n_rows, n_cols, dtype, rng)
    src = next(iter(inputs.values()))
    dst = np.empty_like(src)
    calls = {"copy": lambda: np.copyto(dst, src)}
    calls.update(callables(function, inputs, threads))
    for call in calls.values():  # warm up: thread pools, page faults, caches
        call()
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(args):
    dtype = np.dtype(args.dtype)
    total = 1 << (22 if args.quick else 24)
    lengths = QUICK_ROW_LENGTHS if args.quick else ROW_LENGTHS
    repeat = args.repeat or (3 if args.quick else 5)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for function in FUNCTIONS:
        for n_cols in lengths:
            n_rows = total // n_cols
            medians = measure(function, n_rows, n_cols, dtype, args.threads, repeat, rng)
            copy = medians.pop("copy")
            for library, seconds in medians.items():
                rows.append({"function": function, "n_rows": n_rows, "n_cols": n_cols,
                             "dtype": dtype.name, "threads": args.threads,
                             "library": library, "median_s": seconds,
                             "copy_s": copy, "ratio_to_copy": seconds / copy})
            print(f"{function:22s} {n_rows:>8d} x {n_cols:<7d} "
                  + "  ".join(f"{lib} {s / copy:6.2f}" for lib, s in medians.items()),
                  flush=True)
    return rows, {"total": total, "repeat": repeat, "dtype": dtype.name,
                  "threads": args.threads}


def versions():
    out = [f"fastsoftmax {fastsoftmax.__version__}", f"NumPy {np.__version__}"]
    if scipy is not None:
        out.append(f"SciPy {scipy.__version__}")
    if torch is not None:
        out.append(f"PyTorch {torch.__version__}")
    return out


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def write_markdown(rows, info, path):
    libraries = [lib for lib in LIBRARIES if any(r["library"] == lib for r in rows)]
    lines = [
        "# fastsoftmax and its peers",
        "",
        f"Median time / median time of `np.copyto` of the input's bytes, measured "
        f"in one interleaved run ({info['repeat']} rounds); lower is better. "
        f"{info['dtype']}, {info['total']} elements per call (rows x row length), "
        f"softmax axis last, {info['threads']} thread(s) for fastsoftmax and PyTorch "
        f"(NumPy and SciPy use one). Floor: 1 (backward: 1.5, logsumexp: about 0.5). "
        f"Cross-entropy is the mean loss and its gradient (PyTorch: forward + autograd "
        f"backward). {', '.join(versions())}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| function | rows x row length | copy (ms) | " + " | ".join(libraries) + " |",
        "|---|---|---:|" + "---:|" * len(libraries),
    ]
    keys = []
    for r in rows:
        key = (r["function"], r["n_rows"], r["n_cols"])
        if key not in keys:
            keys.append(key)
    for function, n_rows, n_cols in keys:
        same = {r["library"]: r for r in rows
                if (r["function"], r["n_rows"], r["n_cols"]) == (function, n_rows, n_cols)}
        copy_ms = next(iter(same.values()))["copy_s"] * 1e3
        cells = [f"{same[lib]['ratio_to_copy']:.2f}" if lib in same else "–"
                 for lib in libraries]
        lines.append(f"| {function} | {n_rows} x {n_cols} | {copy_ms:.2f} | "
                     + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_plot(rows, info, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8), sharex=True)
    for ax, function in zip(axes.flat, FUNCTIONS):
        for library in LIBRARIES:
            sel = [r for r in rows if r["function"] == function and r["library"] == library]
            if sel:
                ax.plot([r["n_cols"] for r in sel], [r["ratio_to_copy"] for r in sel],
                        marker="o", color=COLORS[library], label=library)
        ax.axhline(FLOORS[function], color="grey", linestyle="--", linewidth=1)
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
    parser.add_argument("--out", default=os.path.normpath(default_out),
                        help="output directory (default: docs/_static/)")
    parser.add_argument("--quick", action="store_true",
                        help="2**22 elements, 4 row lengths, 3 rounds")
    parser.add_argument("--threads", type=int, default=2, help="threads (default 2)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=None,
                        help="rounds of interleaved timings (default 5, --quick 3)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows, info = run(args)
    write_csv(rows, os.path.join(args.out, "peer_comparison.csv"))
    write_markdown(rows, info, os.path.join(args.out, "peer_comparison.md"))
    write_plot(rows, info, os.path.join(args.out, "peer_comparison.png"))
    print(f"wrote peer_comparison.md, .csv, .png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
