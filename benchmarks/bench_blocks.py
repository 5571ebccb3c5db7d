"""Throughput of ``lowprec.quantize_blocks`` against memcpy (``np.copyto``).

Run from the repository root, on one thread::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_blocks.py           # 10**7 values
    NUMBA_NUM_THREADS=1 python benchmarks/bench_blocks.py --quick   # 10**6 values

The baseline is ``np.copyto`` of the same float32 array, timed in the same run;
the calls are interleaved (copy, quantize, copy, quantize, ...) after a warm-up
call (so JIT compilation is excluded), and each figure is the median of the
rounds. Each time is the smaller of wall-clock and process CPU time, so time lost
to other jobs on a shared machine does not count. The ratio is copy time over
quantize time: 1.0 would be as fast as copying the array (the memory limit); the
target of issue 17 is 0.5. Inputs are standard normal float32 values.

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import lowprec


def run_time(fn) -> float:
    """One call's time: the smaller of wall-clock and process CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return min(time.perf_counter() - wall, time.process_time() - cpu)


def median_times(fns: list, repeat: int) -> list[float]:
    """Median time of each function over ``repeat`` interleaved rounds."""
    for fn in fns:
        fn()  # warm-up: JIT compilation, page faults
    times = [[] for _ in fns]
    for _ in range(repeat):
        for t, fn in zip(times, fns, strict=True):
            t.append(run_time(fn))
    return [float(np.median(t)) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10**6 values, 5 rounds")
    args = parser.parse_args()
    n, repeat = (10**6, 5) if args.quick else (10**7, 9)
    numba.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    dst = np.empty_like(x)
    print(f"quantize_blocks of {n:,} float32 values, 1 thread, median of {repeat} "
          "interleaved rounds; baseline np.copyto of the same array\n")
    print("| format | rule | quantize ms | copyto ms | ratio copyto/quantize "
          "(target >= 0.5) |")
    print("|---|---|---|---|---|")
    for name, rule in (("mxfp8_e4m3", "floor"), ("mxfp8_e4m3", "rceil"),
                       ("mxfp4_e2m1", "floor"), ("nvfp4", "te")):
        def quantize(name=name, rule=rule):
            lowprec.quantize_blocks(x, name, scale_rule=rule)

        tq, tc = median_times([quantize, lambda: np.copyto(dst, x)], repeat)
        print(f"| {name} | {rule} | {tq * 1e3:.1f} | {tc * 1e3:.1f} | {tc / tq:.2f} |")


if __name__ == "__main__":
    main()
