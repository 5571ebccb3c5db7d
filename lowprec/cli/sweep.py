"""The ``lowprec sweep`` subcommand: run a TOML grid of training runs, or report
on a store.

:func:`add_sweep_command` adds it to the subparsers of ``lowprec``'s parser::

    lowprec sweep SPEC.toml [--store sweep.db] [--force]
                  [--scheduler tcp://HOST:PORT | --scheduler-file F | --serial]
    lowprec sweep --report sweep.db [--pivot policy,lr] [--metric test_loss]
                  [--png F] [--csv F]

Bad input is a ValueError naming the option (or the spec key and its line),
which ``lowprec`` prints as one line. The exit status is 0 when every point is
done, 1 when some point failed, 130 after Ctrl-C (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys

from lowprec.sweep import EXTRA, SweepResult, pivot, read_store, run

__all__ = ["add_sweep_command"]


def add_sweep_command(sub: argparse._SubParsersAction) -> None:
    """Register ``lowprec sweep`` on the ``lowprec`` parser's subparsers."""
    p = sub.add_parser(
        "sweep",
        help="run a TOML grid of training runs on Dask (resumable), or report",
        description=(
            "Run the points of SPEC.toml that the store does not hold yet "
            "([base]: shared settings, [grid]: lists whose product is run, "
            "[[include]]: extra points), or with --report print a store's pivot "
            f"table. Dask is the optional extra: pip install '{EXTRA}'."
        ),
    )
    p.add_argument("spec", nargs="?", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument(
        "--store", default="sweep.db", help="the SQLite store (default sweep.db)"
    )
    p.add_argument("--force", action="store_true", help="recompute done points")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="an existing Dask scheduler, e.g. tcp://HOST:8786 "
        "(default: an embedded LocalCluster)",
    )
    where.add_argument(
        "--scheduler-file", metavar="F", help="connect through a scheduler file"
    )
    where.add_argument(
        "--serial", action="store_true", help="run in this process, without Dask"
    )
    p.add_argument("--workers", help="workers of the embedded cluster (default: CPUs)")
    p.add_argument(
        "--timeout", default="10", help="seconds to wait for a scheduler (default 10)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep = p.add_argument_group("report")
    rep.add_argument("--report", metavar="DB", help="report on this store instead")
    rep.add_argument("--pivot", help="one or two settings, e.g. policy,lr")
    rep.add_argument("--metric", default="test_loss", help="default test_loss")
    rep.add_argument("--png", metavar="F", help="write a heatmap")
    rep.add_argument("--csv", metavar="F", help="write the table as CSV")
    p.set_defaults(func=_sweep)


def _number(text: str, option: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{option} must be {kind.__name__}, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"{option} must be positive, got {text!r}")
    return value


def _sweep(args: argparse.Namespace) -> int:
    if args.report is not None:
        if args.spec is not None:
            raise ValueError("give SPEC.toml or --report DB, not both")
        return _report(args)
    if args.spec is None:
        raise ValueError("SPEC.toml is missing (or give --report DB)")
    timeout = _number(args.timeout, "--timeout", float)
    workers = None if args.workers is None else _number(args.workers, "--workers", int)
    scheduler = "serial" if args.serial else args.scheduler
    try:
        result = run(
            args.spec,
            scheduler=scheduler,
            store=args.store,
            scheduler_file=args.scheduler_file,
            force=args.force,
            n_workers=workers,
            timeout=timeout,
            progress=not args.no_progress,
        )
    except ImportError as exc:  # the extra is missing: one line, not a traceback
        raise ValueError(str(exc)) from None
    except KeyboardInterrupt:
        print(
            f"lowprec sweep: interrupted; what finished is in {args.store}, "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    failed = result.failed
    print(
        f"{len(result.points)} points: {result.computed} computed, "
        f"{result.skipped} already done, {len(failed)} failed; store {args.store}"
    )
    for record in failed:
        label = ", ".join(f"{k}={v}" for k, v in _label(result, record.key).items())
        print(f"  failed: {label}: {record.error}")
    return 1 if failed else 0


def _label(result: SweepResult, key: str) -> dict[str, object]:
    return next(p.label for p in result.points if p.key == key)


def _report(args: argparse.Namespace) -> int:
    by = None if args.pivot is None else [k.strip() for k in args.pivot.split(",")]
    table = pivot(read_store(args.report), by, args.metric)
    print(table.text())
    if args.csv:
        table.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.png:
        table.to_png(args.png)
        print(f"wrote {args.png}")
    return 0
