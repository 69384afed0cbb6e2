"""The performance page's summary table and plot, from peer-comparison CSVs.

    python docs/scripts/peer_summary.py /tmp/peers32/peer_comparison.csv \
        /tmp/peers64/peer_comparison.csv --machine "AMD EPYC (Zen 5), 2 cores"

reads the CSVs that ``tools/compare_peers.py`` writes (one per dtype) and
writes into ``docs/_static/``:

- ``peer_comparison.csv``: the rows of every input, concatenated (the page's
  download);
- ``peer_summary.csv``: one row per function and dtype: fastsoftmax's time
  ÷ ``np.copyto``, ÷ PyTorch and ÷ SciPy, each the geometric mean over the
  row lengths measured (ratios multiply, so their mean is geometric), with
  the worst row length's ÷ copy beside it;
- ``peer_comparison.png``: time ÷ copy against row length, one panel per
  function and one line per library and dtype, log scales.
"""

import argparse
import csv
import math
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "_static"
LIBRARIES = {"fastsoftmax": ("fastsoftmax", "C0"), "numpy": ("NumPy (reference)", "C1"),
             "scipy": ("SciPy", "C2"), "torch": ("PyTorch", "C3"),
             "sklearn": ("scikit-learn", "C4")}


def read(paths):
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def geomean(values):
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summary(rows):
    """(function, dtype) -> ratios of fastsoftmax, in the order measured."""
    cases = {}
    for r in rows:
        key = (r["function"], r["dtype"])
        cases.setdefault(key, {}).setdefault(r["n_cols"], {})[r["library"]] = float(r["median_s"])
        cases[key][r["n_cols"]]["copy"] = float(r["copy_s"])
    table = []
    for (function, dtype), by_length in cases.items():
        def ratios(peer, by_length=by_length):
            return [t["fastsoftmax"] / t[peer] for t in by_length.values() if peer in t]

        to_copy = ratios("copy")
        table.append({
            "function": function, "dtype": dtype,
            "row lengths": f"{min(map(int, by_length))}-{max(map(int, by_length))}",
            "÷ np.copyto": geomean(to_copy), "worst ÷ np.copyto": max(to_copy),
            "÷ PyTorch": geomean(ratios("torch")), "÷ SciPy": geomean(ratios("scipy")),
        })
    return table


def write_summary(table, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        for row in table:
            writer.writerow({k: "-" if v is None else f"{v:.2f}" if isinstance(v, float) else v
                             for k, v in row.items()})


def plot(rows, machine, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = list(dict.fromkeys(r["function"] for r in rows))
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    n_cols = 3
    n_panels = (len(functions) + n_cols - 1) // n_cols
    fig, axes = plt.subplots(n_panels, n_cols, figsize=(15, 4.6 * n_panels), squeeze=False,
                             sharey=True)
    for ax, function in zip(axes.flat, functions):
        for library, (label, color) in LIBRARIES.items():
            for dtype, style in zip(dtypes, ("-", "--")):
                points = sorted((int(r["n_cols"]), float(r["ratio_to_copy"])) for r in rows
                                if r["function"] == function and r["library"] == library
                                and r["dtype"] == dtype)
                if points:
                    x, y = zip(*points)
                    ax.plot(x, y, style, marker="o", color=color, label=f"{label}, {dtype}")
        ax.axhline(1.0, color="0.5", lw=1, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(function, fontsize=13)
        ax.set_xlabel("row length (softmax axis, last)", fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("time ÷ np.copyto of the same bytes", fontsize=11)
    for ax in axes.flat[len(functions):]:
        ax.remove()
    legend = {}  # every library and dtype of any panel, once
    for ax in axes.flat[:len(functions)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=11)
    fig.suptitle(f"Time ÷ np.copyto (lower is better; 1 = the memory floor) — {machine}",
                 fontsize=14)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="peer_comparison.csv files, one per dtype")
    parser.add_argument("--machine", required=True, help="the CPU, for the plot's title")
    parser.add_argument("--out", default=str(STATIC))
    args = parser.parse_args(argv)
    rows = read(args.csv)
    out = Path(args.out)
    with open(out / "peer_comparison.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_summary(summary(rows), out / "peer_summary.csv")
    plot(rows, args.machine, out / "peer_comparison.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
