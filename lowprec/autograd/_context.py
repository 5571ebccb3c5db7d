"""The precision rules of :mod:`lowprec.autograd`, derived once per policy.

A :class:`_Context` holds a policy and what every op asks of it thousands of times
per epoch (the result format of an op, the gradient format of a tensor, how a
backward matmul runs), so that no op compares :class:`~lowprec.formats.Format`
records on its fast path.
"""

from __future__ import annotations

import functools

import numpy as np

from lowprec.amp.policy import Policy
from lowprec.arith.matmul import PRESETS
from lowprec.formats import Format, as_format, fp32, fp64
from lowprec.rounding.rounder import fits


def _contains(wide: Format, narrow: Format) -> bool:
    """Whether every value of ``narrow`` is a value of ``wide``."""
    return wide is narrow or wide == narrow or fits(narrow, wide)


class _Context:
    """A policy and what the ops derive from it, computed once per policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.dtype = policy.dtype
        self.storage = fp32 if self.dtype == np.float32 else fp64
        self.act = policy.activations
        self.grads = policy.gradients
        self.ops = policy.fp32_ops
        self.wide = self.act if _contains(self.act, fp32) else fp32
        self.preset = None if policy.matmul is None else PRESETS[policy.matmul]
        if self.preset is not None:
            self.mm_in = as_format(self.preset.inputs)
            self.mm_acc = as_format(self.preset.accumulate)
            self.mm_products = self.preset.products
        self.order = policy.matmul_order
        # float32 storage: the operands of the BLAS fast path need no conversion
        self.single = self.dtype == np.float32
        # keyed by the formats' ids (the values keep the formats alive and are
        # checked by identity): hashing or comparing Formats on every op costs too
        # much (a dataclass == compares every field)
        self._promote: dict[tuple[int, int], tuple[Format, Format, Format]] = {}
        self._contains: dict[tuple[int, int], tuple[Format, Format, bool]] = {}
        self._backward_mm: dict[tuple[int, int], tuple] = {}

    def contains(self, wide: Format, narrow: Format) -> bool:
        """:func:`_contains`, cached."""
        if wide is narrow:
            return True
        found = self._contains.get((id(wide), id(narrow)))
        if found is None or found[0] is not wide or found[1] is not narrow:
            found = (wide, narrow, _contains(wide, narrow))
            self._contains[id(wide), id(narrow)] = found
        return found[2]

    def promote(self, out: Format, fmt: Format | None) -> Format:
        """``fmt`` if it is strictly wider than ``out``, else ``out``."""
        if fmt is None or fmt is out:
            return out
        found = self._promote.get((id(out), id(fmt)))
        if found is None or found[0] is not out or found[1] is not fmt:
            wider = fmt if (fmt != out and _contains(fmt, out)) else out
            found = (out, fmt, wider)
            self._promote[id(out), id(fmt)] = found
        return found[2]

    def result_fmt(self, *fmts: Format | None, op: str | None = None) -> Format:
        """The format of an op's result (see the module docstring)."""
        out = self.wide if op is not None and op in self.ops else self.act
        for f in fmts:
            out = self.promote(out, f)
        return out

    def grad_fmt(self, fmt: Format) -> Format:
        """The gradient format of a tensor of format ``fmt``."""
        return self.promote(self.grads, fmt)

    def covering(self, *fmts: Format) -> Format:
        """The preset's input format if it holds all ``fmts``, else fp32 or fp64."""
        for wide in (self.mm_in, fp32, fp64):
            if all(self.contains(wide, f) for f in fmts):
                return wide
        raise ValueError(f"no matmul input format holds {[f.name for f in fmts]}")

    def backward_matmul(self, xfmt: Format, yfmt: Format) -> tuple:
        """How a backward matmul of operands in ``xfmt`` and ``yfmt`` runs:
        ``(input format, round x?, round y?, order)``, derived once per pair."""
        found = self._backward_mm.get((id(xfmt), id(yfmt)))
        if found is None or found[0] is not xfmt or found[1] is not yfmt:
            in_fmt = self.covering(xfmt, yfmt)
            order = self.order
            if order == "unspecified" and in_fmt.precision > 12:
                order = "sequential"  # products not exact in float32: no BLAS path
            plan = (
                in_fmt,
                not self.contains(in_fmt, xfmt),
                not self.contains(in_fmt, yfmt),
                order,
            )
            found = (xfmt, yfmt, plan)
            self._backward_mm[id(xfmt), id(yfmt)] = found
        return found[2]


@functools.cache  # unbounded: equal policies must share one context (ops check it)
def _context(policy: Policy) -> _Context:
    return _Context(policy)
