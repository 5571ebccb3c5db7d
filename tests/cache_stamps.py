"""Checks of the kernels' cache stamps (``lowprec.rounding._kernel._source_stamp``).

Numba's on-disk cache keys a function on its own source file only, so the kernel
modules keep a stamp of the other modules' source (and of the JIT options) in
every compiled function's closure, which the cache key includes.
"""

from __future__ import annotations

import sys

import lowprec
from lowprec.rounding._kernel import _source_stamp


def jitted_modules(module, seen=None) -> set:
    """The lowprec modules whose jitted functions ``module``'s can reach."""
    seen = set() if seen is None else seen
    for value in vars(module).values():
        py_func = getattr(value, "py_func", None)
        if py_func is None or not py_func.__module__.startswith("lowprec"):
            continue
        dep = sys.modules[py_func.__module__]
        if dep is not module and dep not in seen:
            seen.add(dep)
            jitted_modules(dep, seen)
    return seen


def assert_stamped(module, extra_kernels, minimum: int) -> None:
    """``module._STAMPED`` covers every module its jitted code reaches and the JIT
    options, ``module._HELPERS`` is their stamp, and every compiled (not inlined)
    function of the module, ``extra_kernels`` included, holds it in its closure."""
    assert jitted_modules(module) | {lowprec._jit} <= set(module._STAMPED)
    assert module._HELPERS == _source_stamp(*module._STAMPED)
    kernels = list(extra_kernels) + [
        v for v in vars(module).values() if getattr(v, "py_func", None) is not None
    ]
    kernels = [
        d
        for d in kernels
        if d.py_func.__module__ == module.__name__
        and d.targetoptions.get("inline") != "always"
    ]
    assert len(kernels) >= minimum
    for d in kernels:
        cells = [c.cell_contents for c in d.py_func.__closure__ or ()]
        assert module._HELPERS in cells, d.py_func.__qualname__
