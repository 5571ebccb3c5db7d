"""Speed of ``lowprec.matmul`` against single-thread float32 BLAS and NumPy emulations.

Run from the repository root::

    python benchmarks/bench_matmul.py            # n = 256, 512, 1024, best of 5
    python benchmarks/bench_matmul.py --quick    # n = 128, 256, best of 3
    python benchmarks/bench_matmul.py --only unspecified v100  # some methods only

The operands are square n x n matrices of uniform [0, 1) values (``--normal``:
standard normal) rounded with ``lowprec.round`` to each preset's input format, so
they are values of that format. Rows: every preset of ``lowprec.arith.matmul.PRESETS``
with every order (``"unspecified"``, the float32-BLAS fast path, only where the
preset allows it: exact products, fp32 accumulation, inputs of at most 12 bits),
the tensor-core models ``model="v100"`` and ``"a100"`` (fp16 inputs), and
``rounding="stochastic"`` for ``fp16_fp16acc``. Columns: GFLOP/s (2 n**3 / time),
the ratio of NumPy's float32 matmul time (sgemm, same inputs, same run) to the
method's time, and the largest relative error against the float64 product of the
same inputs (a sanity check, not a benchmark).

Baselines, the same per-addition-rounded fp16 matmul as ``fp16_fp16acc`` with
order ``"sequential"`` (exact products, every addition rounded to fp16), composed
CPFloat-style from elementwise rounding after each rank-1 update,
``C = round_fp16(C + outer(a[:, k], b[k, :]))``, on float64 arrays:

- "NumPy, astype(float16)": the rounding is NumPy's own float64 -> float16 cast
  (independent of lowprec);
- "NumPy, lowprec.round": the rounding is ``lowprec.round(..., "fp16", out=C)``;
- "pychop Chop": the rounding is pychop's fp16 ``Chop`` (from PyPI,
  benchmark-only; skipped with a note if it is not installed).

The products of fp16 values are exact in float64 (22 bits), and the float64 sum
``C + product`` is inexact only when the product is below about 2**-30 of ``C``,
too small to move the fp16 rounding, so each step is the exact sum rounded once:
the baselines should agree with lowprec bit for bit, which is checked and printed.

Everything runs on one thread: ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` /
``OMP_NUM_THREADS`` are set to 1 before NumPy is imported (and checked with
threadpoolctl when installed), and ``numba.set_num_threads(1)``. Every method is
first called on 16 x 16 inputs, so JIT compilation is excluded. Each time is the
best of N calls, each call counting the smaller of its wall-clock and process CPU
time (time lost to other jobs on a loaded machine does not count), the methods
taken in turn, round robin, so that a burst of load hits them alike; fast methods
get one untimed full-size warm-up call first. Slow methods get fewer calls: one
call when a call is expected to take more than ``--once`` seconds, none (a
printed note) past ``--skip`` seconds, the expectation being the time at the
previous n times (n / previous n)**3.

Prints Markdown (the tables of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import os

# BLAS reads these once, when NumPy loads it: they must be set before the import.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", category=RuntimeWarning)

ORDERS = ("sequential", "pairwise", "blocked", "kahan", "unspecified")
MODELS = ("v100", "a100")
SGEMM = "NumPy float32 matmul (sgemm)"
REFERENCE = ("fp16_fp16acc", "sequential", "ties_to_even")  # what the baselines compute


@dataclass
class Method:
    """One row of the table: a way to multiply two n x n matrices."""

    library: str
    preset: str
    order: str
    rounding: str
    make: object  # make(data) -> a function of no arguments returning the product
    inputs: str = "fp16"
    times: list[float] = field(default_factory=list)
    note: str = ""
    result: np.ndarray | None = None  # the first full-size result
    error: float = math.nan

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.library, self.preset, self.order, self.rounding)


def run_time(fn) -> tuple[float, object]:
    """One call's time and result: the smaller of wall-clock and process CPU time,
    so that being preempted by other jobs does not count (the code is
    single-threaded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return min(time.perf_counter() - wall, time.process_time() - cpu), out


# --- the methods -------------------------------------------------------------------


def lowprec_methods() -> list[Method]:
    import lowprec
    from lowprec.arith.matmul import PRESETS

    methods = []
    for name, preset in PRESETS.items():
        fast_path_ok = (
            preset.products is None
            and preset.accumulate == "fp32"
            and 2 * lowprec.as_format(preset.inputs).precision <= 24
        )
        for order in ORDERS:
            if order == "unspecified" and not fast_path_ok:
                continue
            methods.append(
                Method(
                    "lowprec",
                    name,
                    order,
                    "ties_to_even",
                    lambda d, name=name, order=order: (
                        lambda: lowprec.matmul(d[0], d[1], name, order=order)
                    ),
                    inputs=preset.inputs,
                )
            )
    for model in MODELS:
        methods.append(
            Method(
                "lowprec",
                "fp16_fp32acc",
                f"model={model}",
                "ties_to_even",
                lambda d, model=model: (
                    lambda: lowprec.matmul(d[0], d[1], "fp16_fp32acc", model=model)
                ),
            )
        )
    methods.append(
        Method(
            "lowprec",
            "fp16_fp16acc",
            "sequential",
            "stochastic",
            lambda d: (
                lambda: lowprec.matmul(
                    d[0], d[1], "fp16_fp16acc", rounding="stochastic", rng=0
                )
            ),
        )
    )
    return methods


def rank1_numpy_cast(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fp16_fp16acc, sequential: round to fp16 after each rank-1 update, the
    rounding being NumPy's float64 -> float16 cast (ties to even)."""
    c = np.zeros((a.shape[0], b.shape[1]))
    t = np.empty_like(c)
    h = np.empty(c.shape, dtype=np.float16)
    for k in range(a.shape[1]):
        np.multiply(a[:, k, None], b[None, k, :], out=t)  # exact products
        t += c  # exact, or too close to c to change the fp16 rounding
        np.copyto(h, t, casting="unsafe")  # round to fp16
        np.copyto(c, h)
    return c


def rank1_lowprec_round(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """As :func:`rank1_numpy_cast`, rounding with ``lowprec.round``."""
    import lowprec

    c = np.zeros((a.shape[0], b.shape[1]))
    t = np.empty_like(c)
    for k in range(a.shape[1]):
        np.multiply(a[:, k, None], b[None, k, :], out=t)
        t += c
        lowprec.round(t, "fp16", out=c)
    return c


def pychop_rank1():
    """As :func:`rank1_numpy_cast`, rounding with pychop's fp16 ``Chop``; None
    (and the reason) when pychop is not installed."""
    try:
        import pychop
    except ImportError:
        return None, "pychop is not installed (pip install pychop): baseline skipped"
    pychop.backend("numpy")
    version = getattr(pychop, "__version__", "?")
    chops: dict[int, object] = {}

    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        size = a.shape[0] * b.shape[1]
        if size not in chops:
            # chunk_size above the array size keeps pychop off Dask and its threads
            chops[size] = pychop.Chop(
                exp_bits=5, sig_bits=10, rmode=1, chunk_size=size + 1
            )
        chop = chops[size]
        c = np.zeros((a.shape[0], b.shape[1]))
        t = np.empty_like(c)
        for k in range(a.shape[1]):
            np.multiply(a[:, k, None], b[None, k, :], out=t)
            t += c
            c = np.asarray(chop(t), dtype=np.float64)
        return c

    return matmul, f"pychop {version}"


def baseline_methods() -> tuple[list[Method], list[str]]:
    """(methods, notes): the NumPy sgemm and the rank-1-update emulations."""
    methods = [
        Method("NumPy", SGEMM, "BLAS", "ties_to_even", lambda d: lambda: d[2] @ d[3]),
        Method(
            "NumPy, astype(float16)",
            "fp16_fp16acc",
            "rank-1 updates",
            "ties_to_even",
            lambda d: lambda: rank1_numpy_cast(d[0], d[1]),
        ),
        Method(
            "NumPy, lowprec.round",
            "fp16_fp16acc",
            "rank-1 updates",
            "ties_to_even",
            lambda d: lambda: rank1_lowprec_round(d[0], d[1]),
        ),
    ]
    notes = []
    chop_matmul, label = pychop_rank1()
    if chop_matmul is None:
        notes.append(label)
    else:
        methods.append(
            Method(
                f"{label} Chop",
                "fp16_fp16acc",
                "rank-1 updates",
                "ties_to_even",
                lambda d: lambda: chop_matmul(d[0], d[1]),
            )
        )
    return methods, notes


# --- data and checks ---------------------------------------------------------------


def make_data(n: int, normal: bool, seed: int = 0) -> dict[str, tuple]:
    """For each input format: (a, b) rounded to it, as float64, and as float32."""
    import lowprec

    rng = np.random.default_rng(seed)
    shape = (n, n)
    x, y = (
        (rng.standard_normal(shape), rng.standard_normal(shape))
        if normal
        else (rng.random(shape), rng.random(shape))
    )
    data = {}
    for fmt in ("fp16", "bf16", "tf32", "fp32"):
        a, b = lowprec.round(x, fmt), lowprec.round(y, fmt)
        data[fmt] = (a, b, a.astype(np.float32), b.astype(np.float32))
    return data


def differing(x: np.ndarray, y: np.ndarray) -> int:
    """How many elements of x and y differ in their float64 bits (NaN = NaN)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    same = (x.view(np.int64) == y.view(np.int64)) | (np.isnan(x) & np.isnan(y))
    return int(x.size - np.count_nonzero(same))


def agreement(name: str, x: np.ndarray, y: np.ndarray) -> str:
    diff = differing(x, y)
    verdict = "bit-identical" if diff == 0 else f"{diff} of {x.size} elements differ"
    return f"{name}: {verdict}"


def small_checks(baselines: list[Method]) -> list[str]:
    """The rank-1-update baselines against lowprec's fp16_fp16acc sequential on
    small cases, both signs and the subnormal range included."""
    import lowprec

    lines = []
    rng = np.random.default_rng(1)
    cases = {
        "48x40 @ 40x56 uniform [0, 1)": (rng.random((48, 40)), rng.random((40, 56))),
        "48x40 @ 40x56 standard normal": (
            rng.standard_normal((48, 40)),
            rng.standard_normal((40, 56)),
        ),
        # 2**-20 .. 2**4 with both signs: subnormal partial sums and cancellation
        "32x64 @ 64x32 sign * 2**uniform(-20, 4)": tuple(
            rng.choice([-1.0, 1.0], s) * np.exp2(rng.uniform(-20, 4, s))
            for s in ((32, 64), (64, 32))
        ),
    }
    for case, (x, y) in cases.items():
        a, b = lowprec.round(x, "fp16"), lowprec.round(y, "fp16")
        ref = lowprec.matmul(a, b, "fp16_fp16acc", order="sequential")
        for m in baselines:
            if m.order == "rank-1 updates":
                lines.append(
                    "- "
                    + agreement(
                        f"{m.library} vs lowprec fp16_fp16acc sequential, {case}",
                        m.make((a, b))(),
                        ref,
                    )
                )
    return lines


# --- timing ------------------------------------------------------------------------


def time_methods(methods: list[Method], data: dict, n: int, state: dict, args) -> None:
    """Best-of times of every method at size n, round robin, fewer calls (or none)
    for slow methods; fills ``times``, ``note``, ``error`` and ``result``.

    ``state`` carries across sizes: ``(n, best time)`` of each method's last
    measurement under its key, and the methods that raised under ``"failed"``.
    """
    ref64 = {fmt: d[0] @ d[1] for fmt, d in data.items()}
    failed = state.setdefault("failed", {})
    active = []
    for m in methods:
        m.times, m.note, m.result, m.error = [], "", None, math.nan
        if m.key in failed:
            m.note = failed[m.key]
            continue
        est = 0.0
        if m.key in state:
            n0, t0 = state[m.key]
            est = t0 * (n / n0) ** 3
        if est > args.skip:
            m.note = f"skipped: about {est:.0f} s per call"
            continue
        fn = m.make(data[m.inputs])
        if est <= args.warm:
            try:
                fn()  # full-size warm-up: page faults, caches
            except Exception as exc:  # keep going: report it in the table
                failed[m.key] = m.note = f"raises {type(exc).__name__}: {exc}"
                continue
        active.append((m, fn, 1 if est > args.once else args.repeat))
    for _ in range(args.repeat):
        for m, fn, calls in active:
            if m.key in failed or len(m.times) >= calls:
                continue
            if m.times and sum(m.times) + min(m.times) > args.budget:
                continue
            try:
                t, out = run_time(fn)
            except Exception as exc:
                failed[m.key] = m.note = f"raises {type(exc).__name__}: {exc}"
                continue
            m.times.append(t)
            if len(m.times) == 1:
                out = np.asarray(out, dtype=np.float64)
                ref = ref64[m.inputs]
                nz = ref != 0
                m.error = float(np.max(np.abs(out[nz] - ref[nz]) / np.abs(ref[nz])))
                if m.key[1:] == REFERENCE or m.order == "rank-1 updates":
                    m.result = out
    for m, _, calls in active:
        if m.times:
            state[m.key] = (n, min(m.times))
            if calls == 1 and args.repeat > 1:
                m.note = f"1 call (expected > {args.once:.0f} s)"
            elif len(m.times) < calls:
                m.note = f"time budget ({args.budget:.0f} s) reached"


def table_rows(methods: list[Method], n: int, sgemm: float | None) -> list[str]:
    rows = []
    flops = 2.0 * n**3
    for m in methods:
        if m.times:
            t = min(m.times)
            ratio = f"{sgemm / t:.4f}" if sgemm else ""
            cells = (
                f"{t * 1e3:.1f} | {flops / t / 1e9:.3f} | {ratio} | "
                f"{m.error:.2e} | {len(m.times)}"
            )
        else:
            cells = " |  |  |  | 0"
        rows.append(
            f"| {n} | {m.library} | {m.preset} | {m.order} | {m.rounding} "
            f"| {cells} | {m.note} |"
        )
    return rows


# --- report ------------------------------------------------------------------------


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads: threadpoolctl not installed (*_NUM_THREADS=1)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "BLAS threads: threadpoolctl found no BLAS"
    desc = ", ".join(
        f"{p.get('internal_api')} {p.get('version')} "
        f"({p.get('num_threads')} thread"
        f"{'s' if p.get('num_threads') != 1 else ''})"
        for p in pools
    )
    bad = [p for p in pools if p.get("num_threads") != 1]
    return f"BLAS: {desc}" + (" -- NOT single-threaded!" if bad else "")


def machine() -> list[str]:
    import numba

    model = platform.processor() or platform.machine()
    cores, simd = str(os.cpu_count()), "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = fields.get("CPU(s)", cores).strip()
        flags = fields.get("Flags", "")
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "?"
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"- date: {datetime.date.today().isoformat()}",
        f"- CPU: {model}, {cores} logical CPUs, {simd} (timed on 1 thread); "
        f"load average at start {load}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, "
        f"Numba {numba.__version__}, {platform.system()} {platform.release()}",
        f"- {blas_threads()}",
    ]


def find(methods, preset, order, rounding="ties_to_even", library="lowprec"):
    for m in methods:
        if m.key == (library, preset, order, rounding):
            return m
    return None


def targets(results: dict[int, list[Method]], sgemm: dict[int, float]) -> list[str]:
    """The issue's targets, with the measured values."""

    def best(ms, preset, order):
        m = find(ms, preset, order)
        return min(m.times) if m is not None and m.times else None

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for n, ms in results.items():
        ratios = {}
        for preset in ("fp16_fp32acc", "bf16_fp32acc", "tf32_fp32acc"):
            t = best(ms, preset, "unspecified")
            if t and sgemm.get(n):
                ratios[preset] = sgemm[n] / t
        shown = ", ".join(f"{p} {r:.2f}x" for p, r in ratios.items())
        ok = bool(ratios) and min(ratios.values()) >= 0.5
        lines.append(
            f"- fast path (order='unspecified') >= 0.5x sgemm, n={n}: "
            f"{shown or 'not measured'} -- {verdict(ok)}"
        )
    # the sequential fp16-accumulate kernel: rounding after every addition
    seq = {n: best(ms, "fp16_fp16acc", "sequential") for n, ms in results.items()}
    seq = {n: t for n, t in seq.items() if t}
    at = 512 if 512 in seq else max(seq, default=None)
    if at is None:
        lines.append("- sequential fp16_fp16acc >= 2 GFLOP/s at n=512: not measured")
    else:
        g = 2.0 * at**3 / seq[at] / 1e9
        where = "" if at == 512 else f" (n=512 not run; measured at n={at})"
        aim = "aim met" if g >= 4 else "aim not reached"
        lines.append(
            f"- sequential fp16_fp16acc >= 2 GFLOP/s at n=512 (aim 4): "
            f"{g:.2f} GFLOP/s{where} -- {verdict(g >= 2)}, {aim}"
        )
    # issue 14 section 5: Kahan and stochastic accumulation against the
    # ties_to_even per-addition kernel (fp16_fp16acc sequential), same run
    for n, ms in results.items():
        if n != at or n not in seq:
            continue
        sr = find(ms, "fp16_fp16acc", "sequential", "stochastic")
        for label, t in [
            ("kahan", best(ms, "fp16_fp16acc", "kahan")),
            ("stochastic", min(sr.times) if sr is not None and sr.times else None),
        ]:
            if t is None:
                continue
            lines.append(
                f"- fp16_fp16acc {label} within 3x of the ties_to_even sequential "
                f"kernel, n={n}: {t / seq[n]:.2f}x -- {verdict(t / seq[n] <= 3)}"
            )
    for n, ms in results.items():
        seq32 = best(ms, "fp16_fp32acc", "sequential")
        for model in MODELS:
            t = best(ms, "fp16_fp32acc", f"model={model}")
            if t is None or n not in seq:
                continue
            extra = f"; {t / seq32:.2f}x fp16_fp32acc sequential" if seq32 else ""
            label = "" if model == "v100" else " (not a target, for comparison)"
            lines.append(
                f"- {model.upper()} model within 2x of the sequential kernel{label}, "
                f"n={n}: {t / seq[n]:.2f}x the time of fp16_fp16acc sequential"
                f"{extra} -- {verdict(t / seq[n] <= 2)}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 128, 256, best of 3")
    parser.add_argument(
        "--normal",
        action="store_true",
        help="standard normal inputs instead of uniform [0, 1)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="matrix sizes (default 256 512 1024; --quick 128 256)",
    )
    parser.add_argument(
        "--once",
        type=float,
        default=8.0,
        metavar="S",
        help="time a method once when a call should take > S s (8)",
    )
    parser.add_argument(
        "--skip",
        type=float,
        default=None,
        metavar="S",
        help="skip a method when a call should take > S s (60; --quick 20)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="S",
        help="stop timing a method at one size after S s (15; --quick 5)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="time only the methods whose 'library preset order rounding' contains "
        "one of these (sgemm is always timed); e.g. --only unspecified model=v100",
    )
    args = parser.parse_args()
    sizes = args.sizes or ([128, 256] if args.quick else [256, 512, 1024])
    args.repeat = 3 if args.quick else 5
    args.skip = args.skip if args.skip is not None else (20.0 if args.quick else 60.0)
    args.budget = (
        args.budget if args.budget is not None else (5.0 if args.quick else 15.0)
    )
    args.warm = 0.5  # full-size warm-up only for calls expected under 0.5 s

    import numba

    numba.set_num_threads(1)

    ours = lowprec_methods()
    others, notes = baseline_methods()
    methods = [others[0]] + [
        m
        for m in ours + others[1:]
        if not args.only or any(t in " ".join(m.key) for t in args.only)
    ]

    print("### Machine\n\n" + "\n".join(machine()))
    flags = " --quick" if args.quick else ""
    flags += " --normal" if args.normal else ""
    flags += f" --sizes {' '.join(map(str, sizes))}" if args.sizes else ""
    flags += " --only " + " ".join(map(shlex.quote, args.only)) if args.only else ""
    dist = "standard normal" if args.normal else "uniform [0, 1)"
    print(
        f"- command: `python benchmarks/bench_matmul.py{flags}` (n = "
        f"{', '.join(map(str, sizes))}; {dist} inputs; best of {args.repeat})"
    )
    for note in notes:
        print(f"- note: {note}")

    # JIT warm-up on small inputs: compiles every kernel before anything is timed
    print(
        "  compiling (first call of every method on 16 x 16 inputs)",
        file=sys.stderr,
        flush=True,
    )
    small = make_data(16, args.normal)
    for m in methods:
        try:
            m.make(small[m.inputs])()
        except Exception as exc:
            print(
                f"- note: {m.library} {m.preset} {m.order} {m.rounding} raises "
                f"{type(exc).__name__}: {exc}"
            )

    print("\n### Agreement of the rank-1-update baselines with lowprec\n")
    print("\n".join(small_checks([m for m in others if m.order == "rank-1 updates"])))

    print("\n### Matmul throughput\n")
    print(
        "GFLOP/s = 2 n^3 / time; vs sgemm = sgemm time / time (NumPy float32 matmul "
        "of the fp16-rounded inputs on one thread, same run); max rel err against "
        "the float64 product of the same inputs; calls = how many timed calls the "
        "best is of.\n"
    )
    rows = [
        "| n | library | preset | order | rounding | time (ms) | GFLOP/s | vs sgemm "
        "| max rel err | calls | note |",
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    state: dict = {}
    results: dict[int, list[Method]] = {}
    sgemm: dict[int, float] = {}
    agree: list[str] = []
    for n in sizes:
        print(f"  timing n={n}", file=sys.stderr, flush=True)
        data = make_data(n, args.normal)
        time_methods(methods, data, n, state, args)
        sgemm[n] = min(methods[0].times) if methods[0].times else None
        rows += table_rows(methods, n, sgemm[n])
        results[n] = [
            Method(
                m.library,
                m.preset,
                m.order,
                m.rounding,
                None,
                m.inputs,
                list(m.times),
                m.note,
            )
            for m in methods
        ]
        ref = find(methods, *REFERENCE)
        for m in methods:
            if (
                m.order == "rank-1 updates"
                and m.result is not None
                and ref is not None
                and ref.result is not None
            ):
                agree.append(
                    "- "
                    + agreement(
                        f"n={n}: {m.library} vs lowprec fp16_fp16acc sequential",
                        m.result,
                        ref.result,
                    )
                )
        for m in methods:
            m.result = None
        print("\n".join(rows[-len(methods) :]), file=sys.stderr, flush=True)
    print("\n".join(rows))
    if agree:
        print("\nThe baselines' results in the table against lowprec's:\n")
        print("\n".join(agree))
    print("\n### Targets (issue 4)\n")
    print("\n".join(targets(results, sgemm)))


if __name__ == "__main__":
    main()
