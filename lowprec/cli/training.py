"""The ``lowprec train`` and ``lowprec compare`` subcommands.

:func:`add_training_commands` adds both to the subparsers of ``lowprec``'s parser
(see :mod:`lowprec.cli`). Options left unset fall back to :class:`TrainConfig`'s
defaults (``train``) or to :data:`lowprec.training.compare.DEFAULTS` (``compare``).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from lowprec.training.loop import ACTIVATIONS, DATASETS, LOSS_SCALES, OPTIMIZERS

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


def _add_shared(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training settings")
    g.add_argument("--dataset", choices=DATASETS, help="default digits")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="default sgd")
    g.add_argument("--lr", type=_number, help="learning rate (2**k accepted)")
    g.add_argument("--momentum", type=float, help="SGD momentum")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="micro-batch size")
    g.add_argument("--seed", type=int)
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
        help="clip the global gradient norm (after unscaling)",
    )
    g.add_argument(
        "--hidden",
        type=_widths,
        metavar="W[,W...]",
        help="hidden layer widths, e.g. 64 or 128,64",
    )
    g.add_argument("--activation", choices=ACTIVATIONS)
    g.add_argument(
        "--layer-norm",
        action="store_true",
        default=None,
        help="LayerNorm after each hidden layer",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        metavar="STEPS",
        help="evaluate every STEPS steps (default: every epoch)",
    )
    p.add_argument("--json", metavar="PATH", help="write the full log as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _SHARED if getattr(args, k) is not None}


def _train(args: argparse.Namespace) -> int:
    from lowprec.training.loop import TrainConfig, train

    fields = _overrides(args)
    fields["policy"] = args.policy
    fields["loss_scale"] = args.loss_scale
    result = train(TrainConfig(**fields), progress=not args.quiet)
    print(result.summary_text())
    if args.json:
        result.to_json(args.json)
        print(f"log written to {args.json}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from lowprec.training.compare import DEFAULT_RUNS, DEFAULTS, compare
    from lowprec.training.loop import TrainConfig

    runs = args.runs.split(",") if args.runs else list(DEFAULT_RUNS)
    config = TrainConfig(**{**DEFAULTS, **_overrides(args)})
    if args.png:  # fail before training, not after, if matplotlib is missing
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError(
                "--png needs matplotlib: pip install 'lowprec[plot]'"
            ) from None
    c = config
    print(describe(c), flush=True)
    result = compare(runs, config, progress=not args.quiet)
    print(result.table())
    if args.json:
        result.to_json(args.json)
        print(f"log written to {args.json}")
    if args.png:
        result.plot(args.png)
        print(f"figure written to {args.png}")
    return 0


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
        "bf16_pure_sr, bf16_pure_kahan (default fp16_mixed)",
    )
    tr.add_argument(
        "--loss-scale",
        choices=LOSS_SCALES,
        default="none",
        help="loss scaling (static uses --init-scale)",
    )
    _add_shared(tr)
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
        "--png", metavar="PATH", help="write the figure (needs matplotlib)"
    )
    _add_shared(cmp)
    cmp.set_defaults(func=_compare)


def main(argv: list[str] | None = None) -> int:
    """Run ``train``/``compare`` alone (for tests before cli.py has them)."""
    parser = argparse.ArgumentParser(prog="lowprec")
    add_training_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"lowprec: error: {exc}", file=sys.stderr)
        return 2
