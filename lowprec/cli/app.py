"""The ``lowprec`` command: info, round, matmul-error, bench, train and compare."""

from __future__ import annotations

import argparse
import math
import sys
from fractions import Fraction

import numpy as np

from lowprec.cli.memory import add_memory_command
from lowprec.cli.training import add_training_commands
from lowprec.formats import Format, as_format, builtin_formats
from lowprec.modes import ROUNDING_MODES
from lowprec.rounding.encoding import describe, encode
from lowprec.rounding.rounder import round as round_to

_COLUMNS = ("name", "bits", "p", "exp", "bias", "emin", "emax", "max",
            "smallest_normal", "smallest_subnormal", "eps", "inf", "nan", "-0")


def format_row(fmt: Format) -> tuple[str, ...]:
    """One row of the format table, as strings."""
    yes = {True: "yes", False: "no"}
    return (fmt.name, str(fmt.bits), str(fmt.precision), str(fmt.exponent_bits),
            str(fmt.bias), str(fmt.emin), str(fmt.emax), f"{fmt.max:.6g}",
            f"{fmt.smallest_normal:.4g}", f"{fmt.smallest_subnormal:.4g}",
            f"{fmt.eps:.4g}", yes[fmt.has_inf], yes[fmt.has_nan],
            yes[fmt.has_negative_zero])


def format_table(formats: tuple[Format, ...], markdown: bool = False) -> str:
    """The built-in formats and their constants as a text (or Markdown) table."""
    rows = [_COLUMNS] + [format_row(f) for f in formats]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * len(_COLUMNS))
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     .rstrip() for r in rows)


def _info(args: argparse.Namespace) -> int:
    if args.format is None:
        print(format_table(builtin_formats(), markdown=args.markdown))
        return 0
    fmt = as_format(args.format, "FMT")
    print(repr(fmt))
    for name in ("bits", "precision", "exponent_bits", "bias", "emin", "emax", "max",
                 "smallest_normal", "smallest_subnormal", "eps", "epsneg",
                 "unit_roundoff", "has_inf", "has_nan", "has_negative_zero"):
        print(f"  {name:<19} {getattr(fmt, name)!r}")
    for label, code in (("max", fmt.max_code), ("inf", fmt.inf_code),
                        ("nan", fmt.nan_code)):
        if code is not None:
            print(f"  {label + ' code':<19} {code:#0{(fmt.bits + 3) // 4 + 2}x}")
    return 0


def parse_value(text: str, precision: int) -> float:
    """A decimal or hex string as a float64 that rounds like the exact number.

    A decimal such as ``"0.1"`` is not a float64; converting it to the nearest
    float64 and then rounding to the format could round twice. Rounding it to
    float64 *to odd* instead keeps the result correct for every format with at
    most 51 significand bits (Boldo and Melquiond, 2008).
    """
    t = text.strip().lower()
    if t in ("inf", "+inf", "infinity", "-inf", "-infinity", "nan", "+nan", "-nan"):
        return float(t)
    if "0x" in t:
        return float.fromhex(t)
    try:
        q = Fraction(t)
    except ValueError:
        raise ValueError(f"VALUE: cannot read {text!r} as a number") from None
    f = float(q)
    if precision > 51 or math.isinf(f) or Fraction(f) == q:
        return f if q != 0 or not t.startswith("-") else -0.0
    lo = f if Fraction(f) < q else math.nextafter(f, -math.inf)
    hi = math.nextafter(lo, math.inf)
    return lo if int(np.float64(lo).view(np.int64)) & 1 else hi


def _round(args: argparse.Namespace) -> int:
    fmt = as_format(args.to, "--to")
    x = parse_value(args.value, fmt.precision)
    opts = dict(rounding=args.rounding, saturate=args.saturate)
    if args.no_subnormals:
        opts["subnormals"] = False
    if args.rounding in ("stochastic", "stochastic_equal"):
        opts["rng"] = args.seed
    r = float(round_to(x, fmt, **opts))
    print(f"input      {args.value}")
    print(f"rounded    {r!r}  ({args.rounding} to {fmt.name})")
    print(f"bits       {describe(r, fmt)}")
    code = int(encode(r, fmt))
    print(f"code       {code:#0{(fmt.bits + 3) // 4 + 2}x}")
    if math.isfinite(r) and math.isfinite(x):
        err = Fraction(r) - Fraction(args.value if "0x" not in args.value else x)
        rel = float(err / Fraction(x)) if x != 0 else 0.0
        print(f"error      {float(err):.6g}  (relative {rel:.3g})")
    if math.isfinite(x):
        below = float(round_to(x, fmt, rounding="toward_negative", saturate=True))
        above = float(round_to(x, fmt, rounding="toward_positive", saturate=True))
        if below == above:  # representable: show the adjacent values
            below, above = _adjacent(below, fmt)
        for label, v in (("below", below), ("above", above)):
            print(f"{label:<10} {v!r:<24} {describe(v, fmt).split(' = ')[0]}")
    return 0


def _adjacent(v: float, fmt: Format) -> tuple[float, float]:
    """The values of ``fmt`` just below and just above a value of it."""
    down = float(round_to(np.nextafter(v, -np.inf), fmt, rounding="toward_negative",
                          saturate=True)) if v > -fmt.max else v
    up = float(round_to(np.nextafter(v, np.inf), fmt, rounding="toward_positive",
                        saturate=True)) if v < fmt.max else v
    return down, up


def matmul_error_table(sizes: list[int], presets: list[str], dist: str,
                       seed: int) -> str:
    """Error against n of emulated matmul presets, beside gamma_n and sqrt(n) u.

    The error is componentwise, ``max |C - AB| / (|A| |B|)`` with ``AB`` in float64
    (exact enough here: the inputs have at most 11 significand bits); the bounds
    use the accumulator's unit roundoff.
    """
    from lowprec.arith import error_analysis as ea
    from lowprec.arith.matmul import PRESETS, matmul

    rng = np.random.default_rng(seed)
    head = ["n"] + presets + [f"gamma_n({PRESETS[p].accumulate})" for p in presets[:1]]
    head += [f"sqrt(n)u({PRESETS[p].accumulate})" for p in presets[:1]]
    rows = [head]
    for n in sizes:
        row = [str(n)]
        for name in presets:
            fmt = PRESETS[name].inputs
            draw = rng.random if dist == "uniform" else rng.standard_normal
            a = np.asarray(round_to(draw((16, n)), fmt))
            b = np.asarray(round_to(draw((n, 16)), fmt))
            c = matmul(a, b, name, output=PRESETS[name].accumulate)
            row.append(f"{ea.componentwise_error(c, a, b):.3e}")
        acc = PRESETS[presets[0]].accumulate
        row.append(f"{float(ea.gamma(n, acc)):.3e}")
        row.append(f"{float(ea.probabilistic_bound(n, acc)):.3e}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)


def _matmul_error(args: argparse.Namespace) -> int:
    from lowprec.arith.matmul import PRESETS

    presets = args.presets.split(",")
    for p in presets:
        if p not in PRESETS:
            raise ValueError(f"--presets: unknown preset {p!r}; known: "
                             f"{', '.join(PRESETS)}")
    sizes = [int(v) for v in args.sizes.split(",")]
    print(f"componentwise error max|C - AB| / (|A||B|), {args.dist} data, "
          f"16 x n times n x 16, output in the accumulator format")
    print(matmul_error_table(sizes, presets, args.dist, args.seed))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "benchmarks"
    scripts = sorted(root.glob("bench_*.py"))
    if not scripts:
        raise ValueError("bench: the benchmarks/ folder of a source checkout is "
                         "needed (pip install -e . from a clone)")
    status = 0
    for script in scripts:
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"$ {' '.join(cmd)}", flush=True)
        status |= subprocess.call(cmd)
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lowprec`` command."""
    parser = argparse.ArgumentParser(
        prog="lowprec",
        description="See bit by bit what low-precision floating point does.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="the built-in formats and their constants")
    info.add_argument("format", nargs="?", metavar="FMT",
                      help="one format to show in full (e.g. bf16)")
    info.add_argument("--markdown", action="store_true",
                      help="print the table as Markdown")
    info.set_defaults(func=_info)
    rnd = sub.add_parser("round", help="round one value and show its bits")
    rnd.add_argument("value", metavar="VALUE",
                     help="a decimal, hex float (0x1.8p-3), inf or nan")
    rnd.add_argument("--to", required=True, metavar="FMT", help="target format")
    rnd.add_argument("--rounding", default="ties_to_even", choices=ROUNDING_MODES)
    rnd.add_argument("--saturate", action="store_true")
    rnd.add_argument("--no-subnormals", action="store_true")
    rnd.add_argument("--seed", type=int, default=0,
                     help="seed for the stochastic modes (default 0)")
    rnd.set_defaults(func=_round)
    err = sub.add_parser("matmul-error",
                         help="error of emulated matmul presets against n")
    err.add_argument("--sizes", default="16,64,256,1024,4096",
                     help="comma-separated inner dimensions n")
    err.add_argument("--presets", default="fp16_fp16acc,fp16_fp32acc,bf16_fp32acc",
                     help="comma-separated presets (see lowprec.PRESETS)")
    err.add_argument("--dist", choices=("uniform", "normal"), default="uniform",
                     help="input data: uniform on [0, 1) or standard normal")
    err.add_argument("--seed", type=int, default=0)
    err.set_defaults(func=_matmul_error)
    bench = sub.add_parser("bench", help="run the benchmark suite (source checkout)")
    bench.add_argument("--quick", action="store_true", help="smaller sizes")
    bench.set_defaults(func=_bench)
    add_training_commands(sub)
    add_memory_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``lowprec`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"lowprec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
