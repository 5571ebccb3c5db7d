"""What ml_dtypes arrays cost in ``lowprec.round`` and ``lowprec.encode``.

Run from the repository root (one thread)::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_ml_dtypes.py            # 10**7 values
    NUMBA_NUM_THREADS=1 python benchmarks/bench_ml_dtypes.py --quick    # 10**6 values

Each row is timed against a named baseline in the same run: the calls are
interleaved (round robin, after a warm-up call that compiles the kernels) and each
figure is the median over the rounds. The machine is shared, so the ratios, not
the milliseconds, are the figures to quote. The inputs are standard normal
float32 values, and their bfloat16 copies.

* ``round(x_bf16, "fp8_e4m3fn")`` (bf16 in, bf16 out) against
  ``round(x_f32, "fp8_e4m3fn")`` on the same values (float32 in and out);
* ``round(x_f32, fmt, out=<fmt's ml_dtypes array>)`` (the codes written directly)
  against ``round(x_f32, fmt)`` into float32, and against ml_dtypes' own cast
  ``x_f32.astype(fmt.ml_dtype)``, which rounds the same way (ties to even, no
  saturation);
* ``encode(x_f32, fmt, dtype=fmt.ml_dtype)`` against the same ml_dtypes cast.

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import ml_dtypes
import numpy as np

import lowprec

warnings.filterwarnings("ignore", category=RuntimeWarning)


def medians(fns: dict, repeat: int) -> dict[str, float]:
    """Median time of each function, the calls taken in turn (round robin)."""
    for fn in fns.values():
        fn()  # warm-up: compilation, page faults
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def rows(n: int, repeat: int) -> list[tuple[str, str, float, float]]:
    x32 = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    xbf = x32.astype(ml_dtypes.bfloat16)
    out = []
    t = medians({
        "ml": lambda: lowprec.round(xbf, "fp8_e4m3fn"),
        "base": lambda: lowprec.round(x32, "fp8_e4m3fn"),
    }, repeat)
    out.append(('round(x_bf16, "fp8_e4m3fn") -> bf16',
                'round(x_f32, "fp8_e4m3fn") -> float32', t["ml"], t["base"]))
    for name in ("bf16", "fp8_e4m3fn"):
        fmt = lowprec.as_format(name)
        typed = np.empty(n, dtype=fmt.ml_dtype)
        t = medians({
            "out": lambda fmt=fmt, typed=typed: lowprec.round(x32, fmt, out=typed),
            "f32": lambda fmt=fmt: lowprec.round(x32, fmt),
            "cast": lambda fmt=fmt: x32.astype(fmt.ml_dtype),
            "enc": lambda fmt=fmt: lowprec.encode(x32, fmt, dtype=fmt.ml_dtype),
        }, repeat)
        typed_name = fmt.ml_dtype.name
        out.append((f'round(x_f32, "{name}", out={typed_name})',
                    f'round(x_f32, "{name}") -> float32', t["out"], t["f32"]))
        out.append((f'round(x_f32, "{name}", out={typed_name})',
                    f"x_f32.astype({typed_name}) (ml_dtypes)", t["out"], t["cast"]))
        out.append((f'encode(x_f32, "{name}", dtype={typed_name})',
                    f"x_f32.astype({typed_name}) (ml_dtypes)", t["enc"], t["cast"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10**6 values")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    n = 10**6 if args.quick else 10**7
    print(f"{n:.0e} float32 values, median of {args.repeat} interleaved rounds; "
          "time ratio = method / baseline (below 1: faster)\n")
    print("| method | baseline | method (ms) | baseline (ms) | ratio |")
    print("|---|---|---:|---:|---:|")
    for method, base, tm, tb in rows(n, args.repeat):
        print(f"| `{method}` | `{base}` | {tm * 1e3:.2f} | {tb * 1e3:.2f} "
              f"| {tm / tb:.2f} |")


if __name__ == "__main__":
    main()
