"""The ``lowprec quantize-blocks`` subcommand, and the block-format lines of ``info``.

``lowprec quantize-blocks VALUES... --format F`` quantizes the values (padded with
zeros to whole blocks) and prints, for each block, its scale code and value, then
each element's input, code, value, and absolute and relative error. Bad input is
a ValueError naming the option, which ``lowprec`` prints as one line, exit 2.
"""

from __future__ import annotations

import argparse

import numpy as np

from lowprec.blocks.formats import (
    MX_SCALE_RULES,
    NVFP4_SCALE_RULES,
    BlockFormat,
    as_block_format,
    block_formats,
)
from lowprec.blocks.quantize import BlockArray, quantize_blocks
from lowprec.modes import ROUNDING_MODES, STOCHASTIC
from lowprec.rounding.encoding import decode

__all__ = ["add_blocks_command", "block_format_table", "describe_block_format",
           "is_block_format"]

_HEAD = ("name", "element", "elem max", "block", "scale", "rule", "bits/elem",
         "tensor scale")


def block_format_table() -> str:
    """The built-in block formats as a text table (for ``lowprec info``)."""
    rows = [_HEAD] + [(f.name, f.element.name, f"{f.elem_max:g}", str(f.block_size),
                       f.scale.name, f.scale_rule, f"{f.bits_per_element:g}",
                       f.tensor_scale.name if f.tensor_scale else "-")
                      for f in block_formats()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     .rstrip() for r in rows)


def is_block_format(name: str) -> bool:
    """Whether ``name`` names a built-in block format."""
    try:
        as_block_format(name)
    except ValueError:
        return False
    return True


def describe_block_format(name: str) -> str:
    """The lines ``lowprec info NAME`` prints for a block format."""
    f = as_block_format(name, "FMT")
    rules = NVFP4_SCALE_RULES if f.two_level else MX_SCALE_RULES
    lines = [f"BlockFormat({f.name!r})"]
    for label, value in (("element", f.element.name), ("elem_max", f.elem_max),
                         ("emax_elem", f.emax_elem), ("block_size", f.block_size),
                         ("scale", f.scale.name), ("scale_rule", f.scale_rule),
                         ("scale rules", ", ".join(rules)),
                         ("bits_per_element", f.bits_per_element),
                         ("tensor_scale", f.tensor_scale.name if f.tensor_scale
                          else None)):
        lines.append(f"  {label:<19} {value!r}" if not isinstance(value, str)
                     else f"  {label:<19} {value}")
    return "\n".join(lines)


def _values(texts: list[str]) -> np.ndarray:
    out = []
    for text in texts:
        for part in text.replace(",", " ").split():
            try:
                out.append(float(part))
            except ValueError:
                raise ValueError(f"VALUES: cannot read {part!r} as a number") from None
    if not out:
        raise ValueError("VALUES: give at least one number")
    return np.array(out)


def _scale_text(q: BlockArray, code: int) -> str:
    fmt = q.format
    if fmt.two_level:
        return f"{float(decode(code, fmt.scale))!r} ({fmt.scale.name})"
    if code == fmt.scale.nan_code:
        return f"NaN ({fmt.scale.name})"
    return f"2^{code - fmt.scale.bias} ({fmt.scale.name})"


def block_report(x: np.ndarray, q: BlockArray) -> str:
    """Each block's scale, then each element's input, code, value and errors."""
    fmt: BlockFormat = q.format
    n = q.block_shape[0]  # the CLI makes 1-D blocks
    vals = q.dequantize(np.float64)
    digits = (fmt.element_bits + 3) // 4
    lines = []
    if q.tensor_scale is not None:
        lines.append(f"tensor scale S_enc = {float(q.tensor_scale)!r} (fp32); "
                     "value = code * s_block / S_enc")
    for b, code in enumerate(q.scales.reshape(-1).tolist()):
        lines.append(f"block {b}: scale code {code:#04x} = {_scale_text(q, code)}")
        lines.append(f"  {'i':>3}  {'input':>14}  {'code':>5}  {'value':>14}  "
                     f"{'error':>11}  {'relative':>9}")
        for i in range(b * n, min((b + 1) * n, x.size)):
            xi, vi = float(x[i]), float(vals[i])
            err = vi - xi if np.isfinite(vi) and np.isfinite(xi) else float("nan")
            rel = f"{abs(err) / abs(xi):9.3g}" if xi != 0 and np.isfinite(err) else (
                f"{'-':>9}")
            lines.append(f"  {i:>3}  {xi:>14.8g}  0x{int(q.codes[i]):0{digits}X}"
                         f"{'':>{3 - digits}}  {vi:>14.8g}  {err:>11.3g}  {rel}")
    return "\n".join(lines)


def _quantize_blocks(args: argparse.Namespace) -> int:
    x = _values(args.values)
    fmt = as_block_format(args.format, "--format")
    if args.rule is not None and args.rule not in (
            NVFP4_SCALE_RULES if fmt.two_level else MX_SCALE_RULES):
        raise ValueError(f"--rule: {fmt.name} takes one of "
                         f"{NVFP4_SCALE_RULES if fmt.two_level else MX_SCALE_RULES}, "
                         f"got {args.rule!r}")
    if args.rounding not in ROUNDING_MODES:
        raise ValueError(f"--rounding must be one of {', '.join(ROUNDING_MODES)}, "
                         f"got {args.rounding!r}")
    dtype = {"float32": np.float32, "float64": np.float64}.get(args.dtype)
    if dtype is None:
        raise ValueError(f"--dtype must be float32 or float64, got {args.dtype!r}")
    x = x.astype(dtype)
    rng = args.seed if args.rounding in STOCHASTIC else None
    q = quantize_blocks(x, fmt, scale_rule=args.rule, rounding=args.rounding,
                        rng=rng, pad=True)
    print(f"{fmt.name}: {fmt.element.name} elements, blocks of {fmt.block_size}, "
          f"{fmt.scale.name} scales, rule {q.scale_rule}, {args.rounding}")
    print(block_report(x, q))
    return 0


def add_blocks_command(sub: argparse._SubParsersAction) -> None:
    """Register ``quantize-blocks`` on the subparsers of ``lowprec``'s parser."""
    p = sub.add_parser("quantize-blocks",
                       help="quantize values to a block format (MX, NVFP4) and "
                            "show each block's scale, codes, values and errors")
    p.add_argument("values", nargs="+", metavar="VALUES",
                   help="numbers, separated by spaces or commas (padded with zeros "
                        "to whole blocks)")
    p.add_argument("--format", "-f", default="mxfp8_e4m3", metavar="FMT",
                   help="block format: " + ", ".join(f.name for f in block_formats())
                   + " (default mxfp8_e4m3)")
    p.add_argument("--rule", default=None, metavar="RULE",
                   help="scale rule: floor, ceil, rceil, even (MX); te, cudnn, div6 "
                        "(NVFP4)")
    p.add_argument("--rounding", default="ties_to_even", metavar="MODE",
                   help="element rounding mode (default ties_to_even)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the stochastic modes (default 0)")
    p.add_argument("--dtype", default="float32", metavar="DTYPE",
                   help="float32 (default) or float64 input values")
    p.set_defaults(func=_quantize_blocks)
