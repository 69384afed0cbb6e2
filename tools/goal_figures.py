"""Every row of the performance goals in one run: time ÷ copy, ÷ floor, ÷ PyTorch.

For each case: medians of interleaved rounds of

- the fastsoftmax call (into ``out=`` unless the case says it allocates),
- ``np.copyto`` of the input's bytes on one thread ("÷ copy"),
- the same copy split over two threads ("÷ floor", the memory floor),
- PyTorch's nearest call where there is one ("÷ torch"),

the two copies written into the call's own output array, so that kernel and
copy touch the same pages.  The backward functions read two arrays and write
one: their goal of 1.5 is against a copy of one array's bytes.  One-thread
rows use one thread for the call and the copy.

    python tools/goal_figures.py [--dtype float32] [--repeat 9] [--only SUBSTRING]

Needs PyTorch for the ÷ torch column (left empty without it).  Measure on a
quiet machine and name its CPU (printed first).
"""

import argparse

import numpy as np

import fastsoftmax as fs
from fastsoftmax import _timing


def _cases(dt, rng, torch, F):
    """(label, goal, input, out buffer, fastsoftmax call, torch call or None, threads)."""
    def arr(shape):
        return rng.standard_normal(shape).astype(dt)

    def t(a):
        return torch.from_numpy(a) if torch else None

    def soft(label, goal, shape, axis=-1, log=False, threads=2):
        x = arr(shape)
        y = np.empty_like(x)
        f = fs.log_softmax if log else fs.softmax
        tf = (torch.log_softmax if log else torch.softmax) if torch else None
        tx = t(x)
        return (label, goal, x, y, lambda: f(x, axis=axis, out=y, num_threads=threads),
                (lambda: tf(tx, dim=axis)) if torch else None, threads)

    yield soft("softmax (4096, 4096)", 1.25, (4096, 4096))
    yield soft("softmax (256, 32000)", 1.25, (256, 32000))
    yield soft("softmax (8, 2**21)", 1.25, (8, 2**21))
    yield soft("log_softmax (4096, 4096)", 1.25, (4096, 4096), log=True)
    yield soft("log_softmax (256, 32000)", 1.25, (256, 32000), log=True)
    yield soft("softmax (1048576, 128)", 1.6, (1048576, 128))
    yield soft("softmax (4194304, 10)", 1.8, (4194304, 10))
    yield soft("softmax (2097152, 32)", 1.8, (2097152, 32))
    yield soft("softmax axis 0 (4096, 4096)", 2.2, (4096, 4096), axis=0)
    yield soft("softmax axis 1 (64, 1000, 64)", 2.0, (64, 1000, 64), axis=1)
    yield soft("softmax axis 1 (256, 10, 4096)", 2.0, (256, 10, 4096), axis=1)

    for log in (False, True):
        x, dy, dx = arr((4096, 4096)), arr((4096, 4096)), np.empty((4096, 4096), dt)
        y = fs.log_softmax(x) if log else fs.softmax(x)
        f = fs.log_softmax_backward if log else fs.softmax_backward
        name = "log_softmax_backward" if log else "softmax_backward"
        tcall = None
        if torch:
            ty, tdy = t(y), t(dy)
            tb = torch._log_softmax_backward_data if log else torch._softmax_backward_data
            tcall = lambda tb=tb, ty=ty, tdy=tdy: tb(tdy, ty, -1, ty.dtype)  # noqa: E731
        yield (f"{name} (4096, 4096)", 1.5, x, dx,
               lambda f=f, dy=dy, y=y, dx=dx: f(dy, y, out=dx, num_threads=2), tcall, 2)

    def ce(label, goal, shape, axis=-1, grad=True):
        x = arr(shape)
        g = np.empty_like(x) if grad else None
        tshape = list(shape)
        n_classes = tshape.pop(axis)
        target = rng.integers(0, n_classes, tshape)
        kw = {"return_grad": True, "out": g} if grad else {}
        tcall = None
        if torch:
            tx = t(np.ascontiguousarray(np.moveaxis(x, axis, 1)) if x.ndim > 2 else x)
            tt = t(target)

            def tcall():
                xx = tx.clone().requires_grad_(grad)
                loss = F.cross_entropy(xx, tt)
                if grad:
                    loss.backward()
        return (label, goal, x, g, lambda: fs.cross_entropy(x, target, axis=axis, num_threads=2,
                                                            **kw), tcall, 2)

    yield ce("cross_entropy loss+grad (4096, 4096), out=", 1.3, (4096, 4096))
    yield ce("cross_entropy loss+grad (4194304, 10), out=", 1.8, (4194304, 10))
    yield ce("cross_entropy loss+grad (64, 21, 16384) axis 1", 2.0, (64, 21, 16384), axis=1)
    yield ce("cross_entropy loss only (4096, 4096)", 0.8, (4096, 4096), grad=False)

    def masked(label, shape, mask):
        x = arr(shape)
        y = np.empty_like(x)
        tcall = None
        if torch:
            tx, tm = t(x), t(~mask)
            tcall = lambda: torch.softmax(tx.masked_fill(tm, float("-inf")), -1)  # noqa: E731
        return (label, 1.6, x, y, lambda: fs.softmax(x, where=mask, out=y, num_threads=2),
                tcall, 2)

    yield masked("softmax where=causal (16, 1024, 1024)", (16, 1024, 1024),
                 np.tril(np.ones((1024, 1024), bool)))
    yield masked("softmax where=random (4096, 4096)", (4096, 4096),
                 rng.random((4096, 4096)) < 0.5)

    yield soft("softmax (4096, 4096), 1 thread", 1.2, (4096, 4096), threads=1)
    yield soft("softmax (256, 32000), 1 thread", 1.2, (256, 32000), threads=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--only", default=None, help="only cases whose label contains this")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(2)
    except ImportError:
        torch = F = None
    dt = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    print(f"CPU: {_timing.cpu_name()}; fastsoftmax {fs.__version__} "
          f"simd={fs.get_config()['simd']}; {dt.name}; medians of {args.repeat} interleaved rounds")
    print(f"{'case':50s} {'÷ copy':>7s} {'÷ floor':>8s} {'÷ torch':>8s} {'goal':>6s}")
    for label, goal, x, out, call, tcall, threads in _cases(dt, rng, torch, F):
        if args.only and args.only not in label:
            continue
        calls = {"copy": _timing.copy_call(x, dst=out),
                 "floor": _timing.floor_call(x, n_threads=threads, dst=out), "fs": call}
        if tcall is not None:
            torch.set_num_threads(threads)
            calls["torch"] = tcall
        m = _timing.interleaved_medians(calls, repeat=args.repeat, warmup=2)
        vs_torch = f"{m['fs'] / m['torch']:8.2f}" if "torch" in m else f"{'-':>8s}"
        print(f"{label:50s} {m['fs'] / m['copy']:7.2f} {m['fs'] / m['floor']:8.2f} {vs_torch} "
              f"{goal:6.2f}", flush=True)
    # the allocating call against an allocating copy
    if args.only and args.only not in "softmax (4096, 4096) allocating":
        return
    x = rng.standard_normal((4096, 4096)).astype(dt)
    m = _timing.interleaved_medians(
        {"copy": lambda: np.copyto(np.empty_like(x), x),
         "fs": lambda: fs.softmax(x, num_threads=2)},
        repeat=args.repeat, warmup=2)
    print(f"{'softmax (4096, 4096) allocating ÷ copyto(empty_like)':50s} "
          f"{m['fs'] / m['copy']:7.2f} {'':8s} {'':8s} {1.0:6.2f}")


if __name__ == "__main__":
    main()
