"""Overhead of emulated arrays, and LU in fp16 against the fp16 matmul kernel.

Run from the repository root::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_emulate.py           # 15 rounds
    NUMBA_NUM_THREADS=1 python benchmarks/bench_emulate.py --quick   # 5 rounds

1. ``a + b``, ``a * b``, ``a / b`` on two ``lowprec.emulate(..., "fp16")`` arrays of
   10**6 values against ``lowprec.add`` / ``multiply`` / ``divide`` called directly on
   the same float64 arrays (the issue 21 target: at most 1.2x plus a fixed per-call
   overhead of at most 20 us). The fixed overhead is the same pair timed on arrays of
   8 values: emulated time minus direct time.
2. ``lowprec.algorithms.lu`` of an n = 256 fp16 emulated matrix, as time per flop
   (2n^3/3 flops), against ``lowprec.matmul(a, b, inputs="fp16",
   accumulate="fp16", order="sequential")`` of two 256 x 256 matrices (2n^3 flops):
   the per-addition fp16 kernel.

Each pair is timed interleaved (emulated, direct, emulated, ...) after a warm-up
call, so JIT compilation is excluded; each call counts the smaller of its wall-clock
and process CPU time, and the figure is the median over the rounds. The machine is
shared, so the ratios, not the absolute times, are the result.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import numpy as np


def run_time(fn) -> float:
    """One call: the smaller of wall-clock and process CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return min(time.perf_counter() - wall, time.process_time() - cpu)


def median_times(fns: list, rounds: int, inner: int = 1) -> list[float]:
    """Median per-call time of each function, the functions taken in turn."""
    for fn in fns:
        fn()  # warm-up: JIT compilation, caches
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for j, fn in enumerate(fns):
            if inner == 1:
                times[j].append(run_time(fn))
            else:
                times[j].append(run_time(lambda fn=fn: [fn() for _ in range(inner)])
                                / inner)
    return [statistics.median(t) for t in times]


def elementwise_rows(rounds: int) -> list[str]:
    import lowprec

    rng = np.random.default_rng(0)
    rows = [
        "| op | emulated, 10^6 (ms) | direct, 10^6 (ms) | ratio | emulated, 8 (us) "
        "| direct, 8 (us) | fixed overhead (us) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ops = [("+", np.add, lowprec.add), ("*", np.multiply, lowprec.multiply),
           ("/", np.divide, lowprec.divide)]
    for name, uf, direct in ops:
        out = []
        for n, inner in ((10**6, 1), (8, 200)):
            x = np.asarray(lowprec.round(rng.standard_normal(n), "fp16"))
            y = np.asarray(lowprec.round(rng.standard_normal(n) + 3.0, "fp16"))
            ex, ey = lowprec.emulate(x, "fp16"), lowprec.emulate(y, "fp16")
            out += median_times(
                [lambda ex=ex, ey=ey: uf(ex, ey),
                 lambda x=x, y=y: direct(x, y, "fp16")], rounds, inner)
        big_e, big_d, small_e, small_d = out
        rows.append(
            f"| `a {name} b` | {big_e * 1e3:.2f} | {big_d * 1e3:.2f} "
            f"| {big_e / big_d:.2f} | {small_e * 1e6:.1f} | {small_d * 1e6:.1f} "
            f"| {(small_e - small_d) * 1e6:.1f} |"
        )
    return rows


def lu_rows(rounds: int, n: int = 256) -> list[str]:
    import lowprec
    from lowprec.algorithms import lu

    rng = np.random.default_rng(0)
    a = np.asarray(lowprec.round(rng.standard_normal((n, n)), "fp16"))
    b = np.asarray(lowprec.round(rng.standard_normal((n, n)), "fp16"))
    ea = lowprec.emulate(a, "fp16")
    t_lu, t_mm = median_times(
        [lambda: lu(ea),
         lambda: lowprec.matmul(a, b, inputs="fp16", accumulate="fp16",
                                order="sequential")],
        rounds,
    )
    lu_flop, mm_flop = 2 * n**3 / 3, 2 * n**3
    return [
        "| method | n | time (ms) | flops | ns / flop | ratio (per flop, vs matmul) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| `algorithms.lu(emulate(A, 'fp16'))` | {n} | {t_lu * 1e3:.1f} "
        f"| 2n³/3 | {t_lu / lu_flop * 1e9:.2f} | {(t_lu / lu_flop) / (t_mm / mm_flop):.1f} |",
        f"| `matmul(inputs='fp16', accumulate='fp16', order='sequential')` | {n} "
        f"| {t_mm * 1e3:.1f} | 2n³ | {t_mm / mm_flop * 1e9:.2f} | 1.0 |",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, not 15")
    args = parser.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    rounds = 5 if args.quick else 15
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{platform.python_implementation()} {platform.python_version()}, numpy "
          f"{np.__version__}, numba {numba.__version__}, 1 thread, median of {rounds} "
          "interleaved rounds\n")
    print("\n".join(elementwise_rows(rounds)))
    print()
    print("\n".join(lu_rows(max(3, rounds // 3))))


if __name__ == "__main__":
    main()
