"""Throughput of ``lowprec.round`` against the memory limit and other libraries.

Run from the repository root::

    python benchmarks/bench_round.py            # 10**7 values, best of 7
    python benchmarks/bench_round.py --quick    # 10**6 values, best of 3

Everything runs on one thread (``numba.set_num_threads(1)``; NumPy's elementwise
operations are single-threaded; pychop is kept off Dask). Each time is the best of
N calls after a warm-up call, so JIT compilation is excluded, and each call counts
the smaller of its wall-clock and process CPU time, so that time lost to other jobs
on a loaded machine does not count; lowprec and ``np.copyto`` are timed in turn,
round robin. The ratio column is ``np.copyto`` of the same array, timed in the same
run, over the method's time (1.0 = as fast as copying the array: the memory limit). The inputs are
``sign * 2**uniform(lo, hi)``: for fp16 over (-28, 17), which covers fp16's
subnormals, values below its smallest subnormal and overflow; for bf16 the same
range (as in the issue) and bf16's whole range (-137, 128), where float32 inputs
include float32 subnormals. The "exact" column is the fraction of results
bit-identical to lowprec's round to nearest (NaN compared as NaN).

The compile section starts fresh interpreters with an empty ``NUMBA_CACHE_DIR``:
``import lowprec`` must compile no kernel, and the first call of a kernel
compiles it (a second interpreter then loads it from the cache).

Prints Markdown (the tables of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=RuntimeWarning)


def run_time(fn) -> float:
    """One call's time: the smaller of wall-clock and process CPU time, so that
    being preempted by other jobs does not count (the code timed is single-threaded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return min(time.perf_counter() - wall, time.process_time() - cpu)


def best_times(fns: list, repeat: int) -> list[float]:
    """Best time of each function over ``repeat`` rounds, taken in turn (round
    robin), so that a burst of load on the machine hits all of them alike."""
    for fn in fns:
        fn()  # warm-up: JIT compilation, page faults, caches
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for j, fn in enumerate(fns):
            best[j] = min(best[j], run_time(fn))
    return best


def best_time(fn, repeat: int, budget: float = 20.0) -> float:
    """Best time of ``repeat`` calls (fewer if they exceed ``budget`` s)."""
    fn()
    times = []
    for _ in range(repeat):
        times.append(run_time(fn))
        if sum(times) > budget and len(times) >= 2:
            break
    return min(times)


def make_input(n: int, lo: float, hi: float, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], n) * np.exp2(rng.uniform(lo, hi, n))
    return x.astype(dtype)  # float32: values past 2**128 become inf


def same_bits(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=b.dtype)
    eq = a.view(np.uint8).reshape(a.size, -1) == b.view(np.uint8).reshape(b.size, -1)
    eq = eq.all(axis=1) | (np.isnan(a) & np.isnan(b))
    return float(eq.mean())


def baselines(fmt: str, x: np.ndarray):
    """(name, mode, function) of the other libraries that round ``x`` to fmt."""
    out = []
    if fmt == "fp16":
        out.append(
            (
                "numpy astype(float16) round trip",
                "ties_to_even",
                lambda: x.astype(np.float16).astype(x.dtype),
            )
        )
    try:
        import ml_dtypes
    except ImportError:
        ml_dtypes = None
    if fmt == "bf16" and ml_dtypes is not None:
        out.append(
            (
                "ml_dtypes astype(bfloat16) round trip",
                "ties_to_even",
                lambda: x.astype(ml_dtypes.bfloat16).astype(x.dtype),
            )
        )
    try:
        import pychop

        pychop.backend("numpy")
        bits = {"fp16": (5, 10), "bf16": (8, 7)}[fmt]
        for rmode, mode in ((1, "ties_to_even"), (5, "stochastic")):
            # chunk_size > x.size keeps pychop off Dask (and its threads)
            chop = pychop.Chop(
                exp_bits=bits[0], sig_bits=bits[1], rmode=rmode, chunk_size=x.size + 1
            )
            out.append(
                (
                    f"pychop {pychop.__version__} Chop (numpy)",
                    mode,
                    lambda chop=chop: chop(x),
                )
            )
    except ImportError:
        pass
    try:
        import gfloat
        from gfloat.formats import format_info_bfloat16, format_info_binary16

        fi = {"fp16": format_info_binary16, "bf16": format_info_bfloat16}[fmt]
        srbits = np.random.default_rng(1).integers(0, 2**32, x.size, dtype=np.uint64)
        out.append(
            (
                "gfloat round_ndarray",
                "ties_to_even",
                lambda: gfloat.round_ndarray(fi, x),
            )
        )
        out.append(
            (
                "gfloat round_ndarray (32 random bits)",
                "stochastic",
                lambda: gfloat.round_ndarray(
                    fi, x, rnd=gfloat.RoundMode.Stochastic, srbits=srbits, srnumbits=32
                ),
            )
        )
    except ImportError:
        pass
    return out


def run_table(n: int, repeat: int, with_baselines: bool) -> list[str]:
    import numba

    import lowprec

    numba.set_num_threads(1)
    rows = [
        "| input | format | range | method | mode | time (ms) | Melem/s "
        "| vs copy | exact |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    cases = [("fp16", (-28, 17)), ("bf16", (-28, 17)), ("bf16", (-137, 128))]
    for dtype in (np.float32, np.float64):
        for fmt, (lo, hi) in cases:
            x = make_input(n, lo, hi, dtype)
            out = np.empty_like(x)
            rne = lowprec.round(x, fmt)
            ours = [("np.copyto", "", lambda: np.copyto(out, x))]
            for mode in ("ties_to_even", "stochastic"):
                kw = {"rng": 1} if mode == "stochastic" else {}
                ours.append(
                    (
                        "lowprec.round",
                        mode,
                        lambda kw=kw, mode=mode: lowprec.round(
                            x, fmt, rounding=mode, out=out, **kw
                        ),
                    )
                )
                stats = lowprec.RoundingStats()
                ours.append(
                    (
                        "lowprec.round, stats=",
                        mode,
                        lambda kw=kw, mode=mode, stats=stats: lowprec.round(
                            x, fmt, rounding=mode, out=out, stats=stats, **kw
                        ),
                    )
                )
            timed = list(
                zip(ours, best_times([fn for _, _, fn in ours], repeat), strict=True)
            )
            if with_baselines and (lo, hi) == (-28, 17):
                timed += [
                    ((name, mode, fn), best_time(fn, repeat))
                    for name, mode, fn in baselines(fmt, x)
                ]
            copy = timed[0][1]
            for (name, mode, fn), t in timed:
                exact = ""
                if mode == "ties_to_even":
                    exact = f"{same_bits(fn(), rne):.4f}"
                rows.append(
                    f"| {np.dtype(dtype).name} | {fmt} | ({lo}, {hi}) | {name} | {mode} "
                    f"| {t * 1e3:.2f} | {n / t / 1e6:.0f} | {copy / t:.2f} | {exact} |"
                )
            print(f"  done {np.dtype(dtype).name} {fmt} ({lo}, {hi})", file=sys.stderr)
    return rows


_COMPILE_PROBE = r"""
import sys, time
import numpy as np
t0 = time.perf_counter()
import lowprec
t_import = time.perf_counter() - t0
import numba.core.registry
compiled = []
for name, mod in list(sys.modules.items()):
    if name.startswith("lowprec"):
        for obj in vars(mod).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.signatures:
                compiled.append(f"{name}.{obj.__name__}")
from lowprec.rounding import _kernel as _round_kernel
compiled += [str(k) for k in getattr(_round_kernel, "_KERNELS", {})]
x = np.ones(1000, dtype=np.DTYPE)
t0 = time.perf_counter()
lowprec.round(x, "FMT", rounding="MODE", **KW)
t_first = time.perf_counter() - t0
print(f"{t_import:.3f} {t_first:.3f} {len(compiled)}")
"""


def compile_times() -> list[str]:
    rows = [
        "| kernel | `import lowprec` (s) | kernels compiled by the import "
        "| first call, empty cache (s) | first call, warm cache (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    cases = [
        ("float32", "bf16", "ties_to_even", "{}"),
        ("float64", "fp16", "stochastic", "{'rng': 1}"),
        ("float32", "fp16", "ties_to_even", "{'stats': lowprec.RoundingStats()}"),
    ]
    for dtype, fmt, mode, kw in cases:
        code = (
            _COMPILE_PROBE.replace("DTYPE", dtype)
            .replace("FMT", fmt)
            .replace("MODE", mode)
            .replace("**KW", f"**{kw}")
        )
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            runs = []
            for _ in range(2):  # empty cache, then the cache the first run wrote
                res = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(res.stdout.split())
        label = f"{dtype} → {fmt}, {mode}" + (", stats" if "stats" in kw else "")
        rows.append(
            f"| {label} | {runs[0][0]} | {runs[0][2]} | {runs[0][1]} | {runs[1][1]} |"
        )
    return rows


def machine() -> list[str]:
    import numba
    import numpy

    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = fields.get("CPU(s)", "?").strip()
        flags = fields.get("Flags", "")
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "?"
    except OSError:
        cores, simd = str(os.cpu_count()), "?"
    return [
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {model}, {cores} logical CPUs, {simd} (timed on 1 thread)",
        f"- Python {platform.python_version()}, NumPy {numpy.__version__}, "
        f"Numba {numba.__version__}, {platform.system()} {platform.release()}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10**6 values, best of 3")
    parser.add_argument(
        "--no-baselines", action="store_true", help="time lowprec and np.copyto only"
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the compile-time section"
    )
    args = parser.parse_args()
    n, repeat = (10**6, 3) if args.quick else (10**7, 7)
    print(f"### Machine\n\n" + "\n".join(machine()))
    print(
        f"- command: `python benchmarks/bench_round.py{' --quick' if args.quick else ''}`"
        f" ({n:.0e} values, best of {repeat})\n"
    )
    print("### Throughput\n")
    print("\n".join(run_table(n, repeat, not args.no_baselines)))
    if not args.no_compile:
        print("\n### Compilation\n")
        print("\n".join(compile_times()))


if __name__ == "__main__":
    main()
