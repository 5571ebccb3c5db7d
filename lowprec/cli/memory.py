"""The ``lowprec memory`` subcommand: bytes per GPU of a policy, with ZeRO.

:func:`add_memory_command` adds it to the subparsers of ``lowprec``'s parser. It
prints :meth:`lowprec.amp.memory.Projection.table` for ``--params N --policy P
--optimizer adam|sgd [--world-size W --zero 0|1|2|3 --activations-gb A]``, in GB
= 10**9 bytes. Every option is read by the handler, not by argparse, so bad input
is a ValueError naming the option: ``lowprec`` prints it as one line, exit 2.
"""

from __future__ import annotations

import argparse

from lowprec.amp.memory import project

__all__ = ["add_memory_command"]

# project()'s argument names -> the options, for its error messages
_OPTIONS = {
    "params": "--params",
    "policy": "--policy",
    "optimizer": "--optimizer",
    "world_size": "--world-size",
    "zero": "--zero",
    "activations_gb": "--activations-gb",
}


def _int(text: str, option: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{option} must be an int, got {text!r}") from None


def _float(text: str, option: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{option} must be a number, got {text!r}") from None


def _as_option(err: ValueError | TypeError) -> ValueError:
    """The error of :func:`project`, naming the option instead of the argument."""
    message = str(err)
    for arg, option in _OPTIONS.items():
        if message.startswith((f"{arg} ", f"{arg}:")):
            return ValueError(option + message[len(arg) :])
    return ValueError(message)


def _memory(args: argparse.Namespace) -> int:
    world_size = _int(args.world_size, "--world-size")
    zero = _int(args.zero, "--zero")
    activations = _float(args.activations_gb, "--activations-gb")
    try:
        projection = project(
            args.params,
            args.policy,
            args.optimizer,
            world_size=world_size,
            zero=zero,
            activations_gb=activations,
        )
    except (ValueError, TypeError) as err:
        raise _as_option(err) from None
    print(projection.table())
    return 0


def add_memory_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``memory`` to the subparsers ``sub`` of the ``lowprec`` parser.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="lowprec")
    >>> mem = add_memory_command(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["memory", "--params", "7.5B", "--policy", "fp32"])
    >>> args.func(args)  # doctest: +ELLIPSIS
    7,500,000,000 parameters, policy fp32, optimizer adam, ZeRO stage 0, 1 GPU
    bytes per GPU, GB = 10^9 bytes
    ...
    total...120.0
    ...
    0
    """
    p = sub.add_parser(
        "memory",
        help="bytes per GPU of a policy at LLM scale, with ZeRO sharding",
        description="Bytes per GPU for the parameters, gradients, master weights "
        "and optimizer state of a policy, sharded as ZeRO stage 0-3 does "
        "(Rajbhandari et al., SC 2020). GB = 10^9 bytes.",
    )
    p.add_argument(
        "--params",
        required=True,
        metavar="N",
        help="parameter count: 7500000000, 7.5e9 or 7.5B (K, M, B, T)",
    )
    p.add_argument("--policy", required=True, metavar="P", help="a policy preset")
    p.add_argument(
        "--optimizer", default="adam", metavar="adam|sgd", help="the optimizer"
    )
    p.add_argument(
        "--world-size", default="1", metavar="W", help="data-parallel GPUs"
    )
    p.add_argument("--zero", default="0", metavar="0|1|2|3", help="ZeRO stage")
    p.add_argument(
        "--activations-gb",
        default="0",
        metavar="A",
        help="activation memory per GPU in GB, added unsharded",
    )
    p.set_defaults(func=_memory)
    return p
