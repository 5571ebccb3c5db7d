"""The ``lowprec`` command: info, round, matmul-error, bench, train and compare."""

from __future__ import annotations

import argparse
import math
import os
import sys
from fractions import Fraction

import numpy as np

from lowprec.cli._parser import Parser, seed
from lowprec.cli._values import format_g, read_value, round_exact_value, stand_in
from lowprec.cli.blocks import (
    add_blocks_command,
    block_format_table,
    describe_block_format,
    is_block_format,
)
from lowprec.cli.memory import add_memory_command
from lowprec.cli.sweep import add_sweep_command
from lowprec.cli.training import add_training_commands
from lowprec.formats import Format, as_format, builtin_formats
from lowprec.modes import MODE_ALIASES, ROUNDING_MODES, canonical_mode
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
    if args.markdown and args.format is not None and is_block_format(args.format):
        raise ValueError(f"--markdown: {args.format!r} is a block format, which "
                         "has no row in the table; drop --markdown to see it")
    if args.format is None or args.markdown:  # --markdown FMT: that format's row
        one = args.format is not None
        formats = (as_format(args.format, "FMT"),) if one else builtin_formats()
        print(format_table(formats, markdown=args.markdown))
        if not one and not args.markdown:  # the block formats (issue 17)
            print("\nblock formats\n" + block_format_table())
        return 0
    if is_block_format(args.format):
        print(describe_block_format(args.format))
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
    most 51 significand bits (Boldo and Melquiond, 2008). A value beyond float64
    (``1e999``) gives ±max(float64), which overflows like it in every format
    but fp64 (see :func:`lowprec.cli._values.round_exact_value`).
    """
    return stand_in(read_value(text), precision)


def _round(args: argparse.Namespace) -> int:
    fmt = as_format(args.to, "--to")
    rounding = canonical_mode(args.rounding, "--rounding")
    q = read_value(args.value)
    r = round_exact_value(q, fmt, rounding, saturate=args.saturate,
                          subnormals=not args.no_subnormals, seed=args.seed)
    if math.isnan(r) and not fmt.has_nan:  # decide before printing anything
        raise ValueError(f"VALUE: {args.value!r} rounds to NaN, and {fmt.name} "
                         "has no NaN (nor a code for it)")
    with np.errstate(over="ignore"):  # describe(inf, fp64) warns, prints +inf
        bits = describe(r, fmt)
    lines = [f"input      {args.value}",
             f"rounded    {r!r}  ({rounding} to {fmt.name})",
             f"bits       {bits}",
             f"code       {int(encode(r, fmt)):#0{(fmt.bits + 3) // 4 + 2}x}"]
    finite = not (isinstance(q, float) and not math.isfinite(q))
    if finite and math.isfinite(r):
        err = Fraction(r) - Fraction(q)  # exact: q is the decimal, not a float64
        rel = err / Fraction(q) if q != 0 else Fraction(0)
        lines.append(f"error      {format_g(err)}  (relative {format_g(rel, 3)})")
    if finite:
        lines += _neighbours(Fraction(q), fmt)
    print("\n".join(lines))
    return 0


def _neighbours(q: Fraction, fmt: Format) -> list[str]:
    """The lines ``below`` and ``above``: the values of ``fmt`` around ``q``."""
    if abs(q) > Fraction(fmt.max):  # overflow: one side has no value of fmt
        edge = -fmt.max if q < 0 else fmt.max
        pair = (None, edge) if q < 0 else (edge, None)
    else:
        pair = tuple(float(round_to(stand_in(q, fmt.precision, m), fmt,
                                    rounding=m, saturate=True))
                     for m in ("toward_negative", "toward_positive"))
        if pair[0] == pair[1]:  # representable: show the adjacent values
            pair = _adjacent(pair[0], fmt)
    lines = []
    for label, v in zip(("below", "above"), pair, strict=True):
        if v is None:
            edge = -fmt.max if label == "below" else fmt.max
            lines.append(f"{label:<10} {'overflow':<24} no value of {fmt.name} is "
                         f"{label} {edge!r}")
        else:
            lines.append(f"{label:<10} {v!r:<24} {describe(v, fmt).split(' = ')[0]}")
    return lines


def _adjacent(v: float, fmt: Format) -> tuple[float | None, float | None]:
    """The values of ``fmt`` just below and just above a value of it (None past
    ±max)."""
    down = float(round_to(np.nextafter(v, -np.inf), fmt, rounding="toward_negative",
                          saturate=True)) if v > -fmt.max else None
    up = float(round_to(np.nextafter(v, np.inf), fmt, rounding="toward_positive",
                        saturate=True)) if v < fmt.max else None
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
    sizes = _sizes(args.sizes)
    print(f"componentwise error max|C - AB| / (|A||B|), {args.dist} data, "
          f"16 x n times n x 16, output in the accumulator format")
    print(matmul_error_table(sizes, presets, args.dist, args.seed))
    return 0


def _sizes(text: str) -> list[int]:
    """``--sizes``: comma-separated ints, each at least 1."""
    sizes = []
    for v in text.split(","):
        try:
            n = int(v.strip())
        except ValueError:
            raise ValueError(f"--sizes: expected comma-separated ints, got {v!r} "
                             f"in {text!r}") from None
        if n < 1:
            raise ValueError(f"--sizes: each size must be at least 1, got {n}")
        sizes.append(n)
    return sizes


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
    parser = Parser(
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
    rnd.add_argument("--rounding", default="ties_to_even",
                     choices=ROUNDING_MODES + tuple(MODE_ALIASES), metavar="MODE",
                     help=f"{', '.join(ROUNDING_MODES)}; nearest and rne are "
                     "ties_to_even")
    rnd.add_argument("--saturate", action="store_true",
                     help="overflow to max instead of inf or NaN")
    rnd.add_argument("--no-subnormals", action="store_true",
                     help="flush results below the smallest normal to zero")
    rnd.add_argument("--seed", type=seed, default=0,
                     help="seed for the stochastic modes")
    rnd.set_defaults(func=_round)
    err = sub.add_parser("matmul-error",
                         help="error of emulated matmul presets against n")
    err.add_argument("--sizes", default="16,64,256,1024,4096",
                     help="comma-separated inner dimensions n")
    err.add_argument("--presets", default="fp16_fp16acc,fp16_fp32acc,bf16_fp32acc",
                     help="comma-separated presets (see lowprec.PRESETS)")
    err.add_argument("--dist", choices=("uniform", "normal"), default="uniform",
                     help="input data: uniform on [0, 1) or standard normal")
    err.add_argument("--seed", type=seed, default=0, help="seed of the data")
    err.set_defaults(func=_matmul_error)
    bench = sub.add_parser("bench", help="run the benchmark suite (source checkout)")
    bench.add_argument("--quick", action="store_true", help="smaller sizes")
    bench.set_defaults(func=_bench)
    add_training_commands(sub)
    add_memory_command(sub)
    add_sweep_command(sub)
    add_blocks_command(sub)
    return parser


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again; point
    # it at devnull first, as the Python docs advise (signal module, SIGPIPE)
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``lowprec`` command; return its exit status.

    Bad input is one line on stderr, ``lowprec CMD: error: ...``, and status 2;
    an OSError is one line and status 1; Ctrl-C is one line and status 130.
    Never a traceback.
    """
    prog = "lowprec"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)  # SystemExit(2) on bad options
        prog = f"lowprec {args.command}"
        if extra:  # argparse would blame "lowprec", not the subcommand
            parser.exit(2, f"{prog}: error: unrecognized arguments: "
                        f"{' '.join(extra)}\n")
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (lowprec info | head): stop quietly
        _silence_stdout()
        return 1
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{prog}: error: out of memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
