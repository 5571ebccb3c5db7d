"""Cold start: the README's main command with an empty Numba cache, and what each
kernel's compilation costs.

Run from the repository root::

    python benchmarks/bench_cold_start.py               # cold run, then a warm one
    python benchmarks/bench_cold_start.py --top 30      # more kernels in the table
    python benchmarks/bench_cold_start.py --no-warm     # the cold run only

The command is ``lowprec compare --png <tmp>/compare.png`` (the README's first
screen; without ``--png`` when matplotlib is missing, said in the output). It runs
in a subprocess with a fresh temporary ``NUMBA_CACHE_DIR`` and
``NUMBA_NUM_THREADS=1`` (and one BLAS thread), so every kernel compiles, as on a
fresh install. The warm run repeats it with the cache the cold run filled, so
the difference is the compilation. The subprocess listens to Numba's
``numba:compile`` events (only a cache miss raises one) and records, per jitted
function and signature, the time of its compilation, both including the functions
it compiled on the way (inclusive) and without them (own). Wall times on a shared
machine are noisy: the compile breakdown's shares are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The driver, run in the subprocess: it installs the listener, runs the command
# through lowprec's CLI entry point, and writes the records as JSON.
DRIVER = r"""
import json, sys, time
from numba.core import event

records, stack = [], []

class Compiles(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), 0.0])

    def on_end(self, ev):
        start, children = stack.pop()
        took = time.perf_counter() - start
        if stack:
            stack[-1][1] += took
        d = ev.data["dispatcher"]
        f = d.py_func
        records.append({
            "name": f"{f.__module__}.{f.__qualname__}",
            "args": ", ".join(str(a) for a in ev.data["args"])[:60],
            "inclusive": took,
            "own": took - children,
            "top": not stack,
        })

event.register("numba:compile", Compiles())
from lowprec.cli import main
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    json.dump({"status": status, "records": records}, fh)
"""


def command(tmp: Path) -> tuple[list[str], str]:
    """The README's main command, and a note when --png had to go."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["compare"], " (without --png: matplotlib is not installed)"
    return ["compare", "--png", str(tmp / "compare.png")], ""


def run(args: list[str], cache: Path, tmp: Path) -> tuple[float, dict]:
    """One run of the command in a subprocess; (wall seconds, its records)."""
    env = dict(os.environ)
    env.update(
        NUMBA_CACHE_DIR=str(cache),
        NUMBA_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    out = tmp / "records.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"the command failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(out.read_text())


def by_module(records: list[dict]) -> dict[str, float]:
    """Own compile seconds summed per module."""
    totals: dict[str, float] = {}
    for r in records:
        mod = r["name"].rsplit(".", 1)[0].split(".<locals>")[0]
        mod = mod.rsplit(".", 1)[0] if mod.endswith("_make_kernel") else mod
        totals[mod] = totals.get(mod, 0.0) + r["own"]
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def report(cold: float, warm: float | None, data: dict, top: int, note: str) -> None:
    records = data["records"]
    total = sum(r["own"] for r in records)
    print("### Cold start of `lowprec " + " ".join(ARGS_SHOWN) + "`" + note + "\n")
    print(f"- cold run (empty NUMBA_CACHE_DIR, 1 thread): {cold:.1f} s wall")
    if warm is not None:
        print(f"- warm run (the cache the cold run filled): {warm:.1f} s wall")
        print(f"- difference (compilation and cache writes): {cold - warm:.1f} s")
    print(
        f"- {len(records)} compilations, {total:.1f} s in all "
        f"({total / cold:.0%} of the cold run)\n"
    )
    print("| module | own compile time (s) | share |")
    print("|---|---:|---:|")
    for mod, t in by_module(records).items():
        if t >= 0.05:
            print(f"| {mod} | {t:.2f} | {t / total:.0%} |")
    print(f"\nThe {top} costliest compilations (own time; inclusive counts callees):\n")
    print("| function | signature | own (s) | inclusive (s) |")
    print("|---|---|---:|---:|")
    for r in sorted(records, key=lambda r: -r["own"])[:top]:
        name = r["name"].replace(".<locals>", "")
        print(f"| {name} | {r['args']} | {r['own']:.2f} | {r['inclusive']:.2f} |")


ARGS_SHOWN: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="kernels to list (15)")
    parser.add_argument(
        "--no-warm", action="store_true", help="skip the warm run after the cold one"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lowprec-cold-") as name:
        tmp = Path(name)
        cmd, note = command(tmp)
        ARGS_SHOWN[:] = [a if not a.endswith(".png") else "compare.png" for a in cmd]
        cold, data = run(cmd, tmp / "numba-cache", tmp)
        warm = None if args.no_warm else run(cmd, tmp / "numba-cache", tmp)[0]
        report(cold, warm, data, args.top, note)


if __name__ == "__main__":
    main()
