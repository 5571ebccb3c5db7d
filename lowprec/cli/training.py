"""The ``lowprec train`` and ``lowprec compare`` subcommands.

:func:`add_training_commands` adds both to the subparsers of ``lowprec``'s parser
(see :mod:`lowprec.cli`). Options left unset fall back to :class:`TrainConfig`'s
defaults (``train``) or to :data:`lowprec.training.compare.DEFAULTS` (``compare``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from lowprec._atomic import write_text
from lowprec.cli._parser import output_path, save
from lowprec.training.compare import DEFAULTS
from lowprec.training.loop import (
    ACTIVATIONS,
    DATASETS,
    LOSS_SCALES,
    OPTIMIZERS,
    TrainConfig,
)

__all__ = ["add_training_commands"]

# option dest -> TrainConfig field, for the options both commands share
_SHARED = (
    "dataset",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "epochs",
    "batch_size",
    "seed",
    "loss_weight",
    "init_scale",
    "growth_interval",
    "accumulate",
    "clip",
    "hidden",
    "activation",
    "layer_norm",
    "eval_every",
)


def _number(text: str) -> float:
    """A float that may be written as a power of two: ``2**-12``."""
    from lowprec.training.compare import parse_number

    try:
        return parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints, got {text!r}"
        ) from None
    return widths


def _defaults(**changes: Any) -> dict[str, Any]:
    """TrainConfig's defaults for the shared options, with ``changes``; as the
    command line writes them, so that ``--help`` shows them that way."""
    d = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    d = {k: d[k] for k in _SHARED} | changes
    d["hidden"] = ",".join(map(str, d["hidden"]))  # argparse converts it back
    return d


def _add_shared(p: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    g = p.add_argument_group("training settings")
    g.add_argument("--dataset", choices=DATASETS, help="the data to train on")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="the optimizer")
    g.add_argument("--lr", type=_number, help="learning rate (2**k accepted)")
    g.add_argument("--momentum", type=float, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, help="decoupled weight decay")
    g.add_argument("--epochs", type=int, help="passes over the training set")
    g.add_argument("--batch-size", type=int, help="micro-batch size")
    g.add_argument("--seed", type=int, help="seed of the weights and batches")
    g.add_argument(
        "--loss-weight",
        type=_number,
        help="multiply the loss by this (e.g. 2**-12: tiny gradients)",
    )
    g.add_argument(
        "--init-scale",
        type=_number,
        help="the static scale / the dynamic scaler's first scale",
    )
    g.add_argument(
        "--growth-interval",
        type=int,
        help="clean steps before the dynamic scale doubles",
    )
    g.add_argument(
        "--accumulate", type=int, metavar="K", help="micro-batches per optimizer step"
    )
    g.add_argument(
        "--clip",
        type=float,
        metavar="NORM",
        help="clip the global gradient norm, after unscaling (None: no clipping)",
    )
    g.add_argument(
        "--hidden",
        type=_widths,
        metavar="W[,W...]",
        help="hidden layer widths, e.g. 64 or 128,64",
    )
    g.add_argument("--activation", choices=ACTIVATIONS, help="hidden activation")
    g.add_argument(
        "--layer-norm",
        action="store_true",
        help="LayerNorm after each hidden layer",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        metavar="STEPS",
        help="evaluate every STEPS steps (0: at the end of every epoch)",
    )
    g.set_defaults(**defaults)
    p.add_argument(
        "--json", type=output_path, metavar="PATH", help="write the full log as JSON"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace, **fields: Any) -> TrainConfig:
    """The TrainConfig of the options; its errors name the options."""
    fields = {k: getattr(args, k) for k in _SHARED} | fields
    try:
        return TrainConfig(**fields)
    except (ValueError, TypeError) as err:
        message = str(err)
        for name in sorted(fields, key=len, reverse=True):
            if message.startswith((f"{name} ", f"{name}:")):
                option = "--" + name.replace("_", "-")
                raise type(err)(option + message[len(name) :]) from None
        raise


def _end_progress_line(args: argparse.Namespace) -> None:
    # an interrupted progress bar has not ended its line: end it, so that the
    # message of the interruption is a line of its own
    if not args.quiet:
        print(file=sys.stderr)


def _warn_diverged(prog: str, label: str, result: Any) -> None:
    reason = result.summary.get("diverged")
    if reason:
        print(f"{prog}: warning: {label}diverged ({reason})", file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    from lowprec.training.loop import train

    config = _config(args, policy=args.policy, loss_scale=args.loss_scale)
    try:
        result = train(config, progress=not args.quiet)
    except KeyboardInterrupt:
        _end_progress_line(args)
        raise
    print(result.summary_text())
    _warn_diverged("lowprec train", "the run ", result)
    if args.json:
        text = json.dumps(result.to_dict(), allow_nan=False) + "\n"
        return save("lowprec train", "--json", args.json,
                    lambda tmp: write_text(tmp, text), "log")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from lowprec.training.compare import DEFAULT_RUNS, Comparison, parse_run
    from lowprec.training.loop import load_dataset, train

    runs = args.runs.split(",") if args.runs else list(DEFAULT_RUNS)
    if len(set(runs)) != len(runs):
        raise ValueError(f"--runs: runs must be distinct, got {args.runs!r}")
    config = _config(args)
    try:
        specs = {r: parse_run(r) for r in runs}  # validate all before training
    except ValueError as err:
        raise ValueError(f"--runs: {err}") from None
    if args.png:  # fail before training, not after, if matplotlib is missing
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError(
                "--png needs matplotlib: pip install 'lowprec[plot]'"
            ) from None
    print(describe(config), flush=True)
    data = load_dataset(config.dataset, config.seed)
    results: dict[str, Any] = {}
    status = 0
    try:  # as lowprec.training.compare.compare, keeping each run as it ends
        for label, spec in specs.items():
            results[label] = train(config.replace(**spec), dataset=data,
                                   progress=not args.quiet, label=f"{label:<20}")
    except KeyboardInterrupt:
        _end_progress_line(args)
        then = "writing those that finished" if results else "nothing to write"
        print(f"lowprec compare: interrupted after {len(results)} of {len(specs)} "
              f"runs; {then}", file=sys.stderr)
        status = 130
        if not results:
            return status
    result = Comparison(results)
    print(result.table())
    for label, r in results.items():
        _warn_diverged("lowprec compare", f"run {label} ", r)
    return _write_comparison(args, result) or status


def _write_comparison(args: argparse.Namespace, result: Any) -> int:
    """Write --json and --png; the worst exit status of the two."""
    status = 0
    if args.json:
        text = json.dumps(result.to_dict(), allow_nan=False) + "\n"
        status |= save("lowprec compare", "--json", args.json,
                       lambda tmp: write_text(tmp, text), "log")
    if args.png:
        status |= save("lowprec compare", "--png", args.png,
                       lambda tmp: result.plot(Path(tmp)), "figure")
    return status


def _power(x: float) -> str:
    """``2^k`` for a power of two, else the number."""
    m, e = math.frexp(x)
    return f"2^{e - 1}" if m == 0.5 else f"{x:g}"


def describe(c: Any) -> str:
    """One line saying what a comparison trains."""
    sizes = "-".join(map(str, c.hidden))
    lr = f"lr {c.lr:g}"
    if c.loss_weight != 1.0:
        lr += f" (lr x loss weight = {c.lr * c.loss_weight:g})"
    opt = f"{c.optimizer} {lr}" + (
        f", momentum {c.momentum:g}" if c.optimizer == "sgd" else ""
    )
    return (
        f"{c.dataset}, MLP {sizes} hidden, {opt}, batch {c.effective_batch}, "
        f"{c.epochs} epochs, loss weight {_power(c.loss_weight)}, seed {c.seed}"
    )


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``compare`` to the subparsers of the ``lowprec`` parser."""
    tr = sub.add_parser(
        "train",
        help="train an MLP under a precision policy, with telemetry",
        description="Train an MLP on the bundled digits under a precision policy "
        "and print a summary (accuracy under the policy and in fp32, "
        "skipped steps, gradients flushed, updates swallowed).",
    )
    tr.add_argument(
        "--policy",
        default="fp16_mixed",
        help="fp64, fp32, fp16_pure, fp16_mixed, bf16_mixed, bf16_pure, "
        "bf16_pure_sr, bf16_pure_kahan",
    )
    tr.add_argument(
        "--loss-scale",
        choices=LOSS_SCALES,
        default="none",
        help="loss scaling (static uses --init-scale)",
    )
    _add_shared(tr, _defaults())
    tr.set_defaults(func=_train)
    cmp = sub.add_parser(
        "compare",
        help="train several policies side by side (the main job)",
        description="Train the same MLP under several policies from the same "
        "start and print a table; optionally a PNG of loss curves and "
        "gradient-exponent histograms. Runs are POLICY[:SCALING] with "
        "SCALING none, dynamic, static or static=S.",
    )
    cmp.add_argument(
        "--runs",
        "--policies",
        dest="runs",
        metavar="RUN[,RUN...]",
        help="comma-separated runs (default: the eight lessons)",
    )
    cmp.add_argument(
        "--png",
        type=output_path,
        metavar="PATH",
        help="write the figure (needs matplotlib)",
    )
    _add_shared(cmp, _defaults(**DEFAULTS))
    cmp.set_defaults(func=_compare)


def main(argv: list[str] | None = None) -> int:
    """Run ``lowprec`` (kept for the callers that imported it from here)."""
    from lowprec.cli.app import main as lowprec_main

    return lowprec_main(argv)
