"""Measure the accuracy figures quoted in the documentation's accuracy page.

(a) The largest error, in units in the last place (ulp), of the exp used by
    each SIMD path (``fastsoftmax._loops.exp``), over a dense sweep of
    t <= 0: [-103, 0] for float32, [-745, 0] for float64.  The reference is
    ``np.exp`` in ``np.longdouble`` (x87 extended precision, 64-bit
    significand), spot-checked against mpmath at 50 digits where mpmath is
    installed.
(b) The worst relative error of softmax, ``max |y - ref| / ref``, on rows
    of 10 ... 2**20 inputs drawn uniformly from [-20, 20], for fastsoftmax,
    ``scipy.special.softmax`` and PyTorch (when installed), float32 and
    float64 inputs.  The reference is computed in ``np.longdouble`` from the
    same (already rounded) inputs.

Run from the repository root after building the extension::

    python docs/scripts/measure_accuracy.py

It prints reStructuredText tables.  ``--points`` sets the sweep size and
``--elements`` the number of elements per row length in (b).
"""

import argparse
import platform
import time

import numpy as np

import fastsoftmax as fs
from fastsoftmax import _runtime

_kernels = _runtime.kernels

LD = np.longdouble


def ulp_of(ref, dtype):
    """The ulp of the ``dtype`` number nearest ``ref`` (subnormal ulp below)."""
    info = np.finfo(dtype)
    _, e = np.frexp(ref)                      # ref = m * 2**e, 0.5 <= m < 1
    # [2**(e-1), 2**e) has ulp 2**(e - nmant - 1); the smallest is the subnormal ulp
    emin_sub = int(np.log2(info.smallest_subnormal))
    k = np.maximum(e.astype(np.int64) - info.nmant - 1, emin_sub)
    return np.ldexp(LD(1), k)


def exp_ulp_error(dtype, isa, t):
    got_isa = _runtime.set_simd(isa)
    y = np.empty_like(t)
    _kernels.exp(t, y)
    ref = np.exp(t.astype(LD))
    err = np.abs(y.astype(LD) - ref) / ulp_of(ref, dtype)
    i = int(np.argmax(err))
    return got_isa, float(err[i]), float(t[i]), err


def mpmath_spot_check(t, y, dtype, n=2000, seed=0):
    """Worst ulp error on ``n`` of the points against mpmath, or None."""
    try:
        import mpmath
    except ImportError:
        return None
    mpmath.mp.dps = 50
    rng = np.random.default_rng(seed)
    idx = rng.choice(t.size, size=min(n, t.size), replace=False)
    info = np.finfo(dtype)
    emin_sub = int(np.log2(info.smallest_subnormal))
    worst = 0.0
    for i in idx:
        ref = mpmath.exp(mpmath.mpf(float(t[i])))
        e = int(mpmath.floor(mpmath.log(ref, 2))) + 1
        ulp = mpmath.ldexp(1, max(e - info.nmant - 1, emin_sub))
        worst = max(worst, float(abs(mpmath.mpf(float(y[i])) - ref) / ulp))
    return worst


def part_a(points):
    print("Exp: largest error in ulp over a sweep of t <= 0")
    print()
    rows = []
    for dtype, lo in ((np.float32, -103.0), (np.float64, -745.0)):
        # evenly spaced points plus random bit patterns of the same range
        rng = np.random.default_rng(1)
        even = np.linspace(lo, 0.0, points, dtype=np.float64).astype(dtype)
        rand = rng.uniform(lo, 0.0, points).astype(dtype)
        t = np.unique(np.concatenate([even, rand])).astype(dtype)
        for isa in reversed(_runtime.ISA_NAMES):
            got, worst, at, _ = exp_ulp_error(dtype, isa, t)
            if got != isa:
                rows.append((np.dtype(dtype).name, isa, "not available", "", ""))
                continue
            y = np.empty_like(t)
            _kernels.exp(t, y)
            mp = mpmath_spot_check(t, y, dtype)
            rows.append((np.dtype(dtype).name, isa, f"{worst:.3f}", f"{at:.6g}",
                         "-" if mp is None else f"{mp:.3f}"))
    _runtime.set_simd("avx512")       # back to the best available path
    header = ("dtype", "path", "max ulp error", "at t", "mpmath check (2000 pts)")
    print_table(header, rows)
    print(f"({points} evenly spaced and {points} random points per dtype; the reference is "
          f"np.exp in longdouble, {np.finfo(LD).nmant + 1}-bit significand)")
    print()


def rel_error(y, ref):
    return float(np.max(np.abs(y.astype(LD) - ref) / ref))


def reference_softmax(x):
    xl = x.astype(LD)
    e = np.exp(xl - xl.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def part_b(elements):
    import scipy.special

    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    print("Softmax: worst relative error max|y - ref| / ref, rows uniform in [-20, 20]")
    print()
    lengths = [10, 100, 1000, 10_000, 100_000, 1 << 20]
    header = ["dtype", "row length", "fastsoftmax", "scipy", "fastsoftmax / scipy"]
    if torch is not None:
        header += ["PyTorch", "PyTorch / scipy"]
    rows = []
    for dtype in (np.float32, np.float64):
        for n in lengths:
            rng = np.random.default_rng(n)
            n_rows = max(1, elements // n)
            x = rng.uniform(-20, 20, size=(n_rows, n)).astype(dtype)
            ref = reference_softmax(x)
            e_fs = rel_error(fs.softmax(x, axis=-1), ref)
            e_sp = rel_error(scipy.special.softmax(x, axis=-1), ref)
            row = [np.dtype(dtype).name, f"{n}", f"{e_fs:.3g}", f"{e_sp:.3g}",
                   f"{e_fs / e_sp:.2f}"]
            if torch is not None:
                e_pt = rel_error(torch.softmax(torch.from_numpy(x), dim=-1).numpy(), ref)
                row += [f"{e_pt:.3g}", f"{e_pt / e_sp:.2f}"]
            rows.append(row)
    print_table(header, rows)
    print(f"({elements} elements per row length: {elements} // n rows of n; "
          f"SIMD path {fs.get_config()['simd']})")
    print()


def print_table(header, rows):
    """An RST simple table."""
    cols = list(zip(header, *rows))
    widths = [max(len(str(c)) for c in col) for col in cols]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(rule)
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print(rule)
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=1 << 23,
                   help="evenly spaced (and as many random) exp arguments per dtype")
    p.add_argument("--elements", type=int, default=1 << 21,
                   help="elements per row length in the softmax measurement")
    args = p.parse_args()
    t0 = time.perf_counter()
    print(f"fastsoftmax {fs.__version__}, NumPy {np.__version__}, {platform.machine()}, "
          f"{fs.get_config()['compiler']}")
    print()
    part_a(args.points)
    part_b(args.elements)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
