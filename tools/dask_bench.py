"""fastsoftmax.dask on a LocalCluster beside one-process fastsoftmax, in one run.

Prints medians of interleaved rounds and their ratios (lower is better):

- row softmax: fastsoftmax.dask.softmax of row chunks ÷ fastsoftmax.softmax
  of the same array in this process (goal <= 1.5);
- cross-entropy loss + gradient: fastsoftmax.dask.cross_entropy ÷
  fastsoftmax.cross_entropy (goal <= 3);
- softmax over a split axis: the two-stage fastsoftmax.dask.softmax ÷
  "rechunk the axis into one chunk, then map fastsoftmax.softmax" (goal <= 1.5).

The dask results are kept on the workers (``persist``), as a pipeline that
goes on working with them would; each round's result is then released, and
the next round starts only once the scheduler has forgotten it (the keys of a
graph are the same each round: a result still held would be reused, not
recomputed).  The
input lives on the workers before timing starts.

    python tools/dask_bench.py [--rows 200000] [--cols 1000] [--chunk-mib 100]
                               [--workers 2] [--threads N] [--rounds 5]

``--threads`` sets the one-process calls' thread count (default: the
package's, all the cores this process may use).

On one machine one process is faster: the cluster adds scheduling and
inter-process overhead and each worker runs one kernel thread.  The point of
fastsoftmax.dask is data that does not fit one machine.
"""

import argparse
import logging
import os
import statistics
import time

import numpy as np

import fastsoftmax as fs
from fastsoftmax import _timing


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--chunk-mib", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of the one-process calls")
    args = parser.parse_args()

    import dask
    import dask.array as da
    import distributed

    import fastsoftmax.dask as fsd

    n_rows, n_cols = args.rows, args.cols
    threads = args.threads
    itemsize = np.dtype(np.float32).itemsize
    rows_per_chunk = max(1, int(args.chunk_mib * 2**20 / (n_cols * itemsize)))
    # the split-axis case: two column chunks, the rows halved to keep ~chunk-mib
    split_chunks = (max(1, rows_per_chunk * 2), (n_cols + 1) // 2)

    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        rng = da.random.default_rng(0)
        x = rng.standard_normal((n_rows, n_cols), dtype=np.float32,
                                chunks=(rows_per_chunk, n_cols)).persist()
        target = rng.integers(0, n_cols, n_rows, chunks=rows_per_chunk).persist()
        x_split = x.rechunk(split_chunks).persist()
        distributed.wait([x, target, x_split])
        # the same data in this process, for the one-process calls
        x_local, target_local = dask.compute(x, target)
        # Copied: an array gathered from the workers may start at any byte
        # (it is unpickled from the received frames), and an unaligned input
        # costs the one-process calls a copy of their own, which a user's
        # array made in this process would not.
        x_local, target_local = np.array(x_local), np.array(target_local)

        def forgotten(keys):
            def check(dask_scheduler):
                return not any(key in dask_scheduler.tasks for key in keys)
            return client.run_on_scheduler(check)

        def on_workers(*arrays):
            keys = list(dask.core.flatten([a.__dask_keys__() for a in arrays]))
            held = []

            def run():
                held.append(client.persist(list(arrays)))
                distributed.wait(held[-1])

            def release():  # not timed
                held.clear()
                # A graph built twice has the same keys: the next round would
                # find this round's results still in memory and time nothing.
                while not forgotten(keys):
                    time.sleep(0.005)
            run.release = release
            return run

        out_local = np.empty_like(x_local)
        floor = _timing.floor_call(x_local, threads or fs.get_config()["default_num_threads"],
                                   dst=out_local)
        cases = {
            "one process: copyto (floor)": floor,
            "one process: softmax, out=": lambda: fs.softmax(
                x_local, num_threads=threads, out=out_local),
            "one process: softmax": lambda: fs.softmax(x_local, num_threads=threads),
            "dask: softmax, row chunks": on_workers(fsd.softmax(x)),
            "one process: cross_entropy loss+grad": lambda: fs.cross_entropy(
                x_local, target_local, return_grad=True, num_threads=threads),
            "dask: cross_entropy loss+grad": on_workers(
                *fsd.cross_entropy(x, target, return_grad=True)),
            "dask: softmax, split axis (two-stage)": on_workers(fsd.softmax(x_split)),
            "dask: rechunk, then map softmax": on_workers(
                x_split.rechunk({1: -1}).map_blocks(fs.softmax, dtype=np.float32)),
        }
        times = {name: [] for name in cases}
        for fn in cases.values():  # warm-up: imports, first-touch pages
            fn()
            getattr(fn, "release", lambda: None)()
        for _ in range(args.rounds):
            for name, fn in cases.items():
                times[name].append(_timed(fn))
                getattr(fn, "release", lambda: None)()
        med = {name: statistics.median(t) for name, t in times.items()}

    print(f"CPU: {_timing.cpu_name()}; fastsoftmax {fs.__version__} "
          f"simd={fs.get_config()['simd']}, "
          f"one process on {threads or fs.get_config()['default_num_threads']} threads "
          f"of {os.cpu_count()} cores; "
          f"{args.workers} workers x 1 thread")
    print(f"({n_rows}, {n_cols}) float32, row chunks of {rows_per_chunk} rows, split-axis "
          f"chunks {split_chunks}; medians of {args.rounds} interleaved rounds")
    for name, t in med.items():
        print(f"  {name:42s} {t * 1e3:9.1f} ms")
    print("ratios:")
    ratios = [
        ("row softmax, dask / one process (goal <= 1.5)",
         "dask: softmax, row chunks", "one process: softmax"),
        ("cross-entropy, dask / one process (goal <= 3)",
         "dask: cross_entropy loss+grad", "one process: cross_entropy loss+grad"),
        ("split-axis softmax / rechunk-then-map (goal <= 1.5)",
         "dask: softmax, split axis (two-stage)", "dask: rechunk, then map softmax"),
        ("split-axis softmax, dask / one process",
         "dask: softmax, split axis (two-stage)", "one process: softmax"),
        ("one process: softmax / floor", "one process: softmax", "one process: copyto (floor)"),
        ("one process: softmax out= / floor",
         "one process: softmax, out=", "one process: copyto (floor)"),
        ("row softmax, dask / floor", "dask: softmax, row chunks", "one process: copyto (floor)"),
    ]
    for label, num, den in ratios:
        print(f"  {label:54s} {med[num] / med[den]:6.2f}")


if __name__ == "__main__":
    main()
