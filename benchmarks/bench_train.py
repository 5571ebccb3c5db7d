"""Time per training epoch on digits for each precision policy, against fp32.

Run from the repository root::

    python benchmarks/bench_train.py            # best of 5 epochs per policy
    python benchmarks/bench_train.py --quick    # best of 2
    python benchmarks/bench_train.py --profile fp16_mixed:dynamic   # + cProfile

Each policy trains the default MLP of ``lowprec train`` (64 inputs, one hidden
layer of 64, 10 classes; SGD, batch 32: 44 steps per epoch) on the bundled digits.
The time is that of the training steps of one epoch (forward, backward, loss
scaling, step), without the evaluations; "+telemetry" adds the per-step gradient
and update statistics that ``lowprec train`` records. A first epoch is run and not
counted (Numba JIT compilation or cache loading), then each epoch counts the
smaller of its wall-clock and process CPU time (so that being preempted by other
jobs does not count), and the best of the repeats is kept; the policies are timed
in turn, round robin. The ratio is against the engine's own ``fp32`` policy in the
same run. Target (issue 5): ``fp16_mixed`` with dynamic loss scaling <= 1.5x.

Prints a Markdown table; with ``--profile RUN``, the top of a cProfile of that run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import platform
import pstats
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lowprec.data.datasets import load_digits  # noqa: E402
from lowprec.training.compare import parse_run  # noqa: E402
from lowprec.training.loop import TrainConfig, _Run  # noqa: E402

RUNS = (
    "fp32",
    "fp64",
    "fp16_pure",
    "fp16_mixed",
    "fp16_mixed:dynamic",
    "bf16_mixed",
    "bf16_pure",
    "bf16_pure_sr",
    "bf16_pure_kahan",
)


class Epoch:
    """One epoch of training steps of a run, repeatable (the model keeps training)."""

    def __init__(self, spec: str, data, telemetry: bool) -> None:
        config = TrainConfig(telemetry=telemetry, epochs=1, **parse_run(spec))
        self.run = _Run(config, data, False, None)
        self.step = 0

    def __call__(self) -> None:
        run, c = self.run, self.run.config
        order = run.rng.permutation(len(run.data.x_train))
        for i in range(run.steps_per_epoch):
            self.step += 1
            lo = i * c.effective_batch
            run.train_step(self.step, 1, order[lo : lo + c.effective_batch])


def run_time(fn) -> float:
    """One call's time: min of wall-clock and process CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return min(time.perf_counter() - wall, time.process_time() - cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="best of 2 instead of 5")
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated runs")
    ap.add_argument("--profile", metavar="RUN", help="cProfile one epoch of RUN")
    args = ap.parse_args()
    numba.set_num_threads(1)
    repeat = 2 if args.quick else 5
    runs = args.runs.split(",")
    if "fp32" not in runs:
        runs.insert(0, "fp32")
    data = load_dataset_once()
    epochs = {(r, t): Epoch(r, data, t) for r in runs for t in (False, True)}
    for fn in epochs.values():
        fn()  # warm-up: JIT compilation or cache loading
    best = dict.fromkeys(epochs, math.inf)
    for _ in range(repeat):
        for key, fn in epochs.items():
            best[key] = min(best[key], run_time(fn))
    steps = epochs["fp32", False].run.steps_per_epoch
    print(
        f"# Training epoch on digits ({steps} steps of batch 32, MLP 64-64-10, "
        f"SGD), best of {repeat}, 1 thread"
    )
    print(
        f"\n{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, NumPy {np.__version__}, Numba "
        f"{numba.__version__}\n"
    )
    print("| run | epoch (ms) | x fp32 | ms/step | +telemetry (ms) | x fp32 |")
    print("|---|---|---|---|---|---|")
    ref, ref_t = best["fp32", False], best["fp32", True]
    for r in runs:
        t, tt = best[r, False], best[r, True]
        print(
            f"| {r} | {1e3 * t:.0f} | {t / ref:.2f} | {1e3 * t / steps:.2f} | "
            f"{1e3 * tt:.0f} | {tt / ref_t:.2f} |"
        )
    if args.profile:
        profile(args.profile, data)


def load_dataset_once():
    return load_digits()


def profile(spec: str, data) -> None:
    """Print the functions that take the time in epochs of ``spec``."""
    fn = Epoch(spec, data, telemetry=False)
    fn()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("tottime")
    stats.print_stats(25)
    print(f"\n## cProfile of 3 epochs of {spec} (sorted by own time)\n")
    print("```\n" + out.getvalue().strip() + "\n```")


if __name__ == "__main__":
    main()
