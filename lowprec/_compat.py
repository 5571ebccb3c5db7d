"""The module paths of lowprec 0.1's flat layout, kept importable for a release.

``from lowprec.matmul import PRESETS`` and the like still work: each old path is a
stand-in module in ``sys.modules`` whose attributes forward to the module that now
holds them, with a ``DeprecationWarning`` naming the new path. The stand-ins are
not attributes of ``lowprec``, so ``lowprec.matmul``, ``lowprec.sum``,
``lowprec.train`` and ``lowprec.compare`` each mean one thing: the function.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings

MOVED = {
    "lowprec.arithmetic": "lowprec.arith.elementwise",
    "lowprec.compare": "lowprec.training.compare",
    "lowprec.encoding": "lowprec.rounding.encoding",
    "lowprec.error_analysis": "lowprec.arith.error_analysis",
    "lowprec.matmul": "lowprec.arith.matmul",
    "lowprec.policy": "lowprec.amp.policy",
    "lowprec.randomness": "lowprec.rounding.randomness",
    "lowprec.reference": "lowprec.rounding.reference",
    "lowprec.scaler": "lowprec.amp.scaler",
    "lowprec.stats": "lowprec.rounding.stats",
    "lowprec.tensorcore": "lowprec.arith.tensorcore",
    "lowprec.train": "lowprec.training.loop",
}

# modules in ``lowprec.__all__``: the old path is the module itself, no warning
ALIASES = {
    "lowprec.datasets": "lowprec.data.datasets",
    "lowprec.memory": "lowprec.amp.memory",
    "lowprec.telemetry": "lowprec.training.telemetry",
}


class _Moved(types.ModuleType):
    """A stand-in for a moved module: attribute reads warn and forward."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(old, f"Moved to :mod:`{new}`.")
        self.__lowprec_new__ = new

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        new = self.__lowprec_new__
        warnings.warn(
            f"{self.__name__} is now {new}; import {name} from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(new), name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__lowprec_new__))


def install() -> None:
    """Put a stand-in (or the module itself) for each old path in ``sys.modules``."""
    for old, new in MOVED.items():
        sys.modules.setdefault(old, _Moved(old, new))
    for old, new in ALIASES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
