"""An array that rounds every operation: NumPy code run in emulated precision.

:func:`emulate` wraps values in an :class:`EmulatedArray`. NumPy then hands every
ufunc (NEP 13, ``__array_ufunc__``) and every array function (NEP 18,
``__array_function__``) called on it to lowprec, which computes the result the way a
machine with that format would:

- ``+ - * /`` and ``sqrt``: the exact result rounded once (lowprec's arithmetic);
- ``abs``, ``negative``, ``maximum``/``minimum``, comparisons, ``where``, indexing,
  reshapes, concatenation and copies: exact, so the format is kept;
- ``exp``, ``log``, ``sin``, ... : computed in float64 and rounded once. This is
  not correctly rounded in general (float64 is not exact), and such elements are
  counted under :attr:`EmulationStats.transcendental`;
- ``sum``, ``dot``, ``matmul``/``@``, ``cumsum``, ``mean`` and ``linalg.norm``:
  every addition rounded to the array's ``accumulate`` format in its ``order``
  (or a tensor-core model), the result rounded to the format.

Mixing formats promotes to the one that holds every value of the other; when
neither does (fp16 with bf16), to fp32 if it holds both, else fp64. The result
takes its other settings (mode, accumulator, random stream, counts) from the first
emulated operand of the result's format. A plain ndarray or Python number operand
is first rounded to the format, to nearest with ties to even (as a compiler
converts a constant), then the operation rounds once. A NumPy function lowprec does
not model raises TypeError naming it: nothing is silently computed in float64.
``np.asarray(a)`` gives the values as float64.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from lowprec.arith import elementwise
from lowprec.arith.matmul import matmul as _matmul
from lowprec.emulation.context import EmulationStats, Settings, make_settings
from lowprec.formats import Format, fp32, fp64
from lowprec.modes import STOCHASTIC
from lowprec.rounding.rounder import fits
from lowprec.rounding.rounder import round as _round
from lowprec.rounding.stats import RoundingStats

__all__ = ["EmulatedArray", "emulate", "promote"]


def emulate(
    x: object,
    fmt: Format | str | None = None,
    *,
    rounding: str | None = None,
    accumulate: Format | str | None = None,
    order: str | None = None,
    model: str | None = None,
    rng: int | np.random.Generator | None = None,
    stats: RoundingStats | None = None,
) -> EmulatedArray:
    """Wrap ``x`` as an array of values of ``fmt`` whose every operation rounds.

    Parameters
    ----------
    x : array_like or EmulatedArray
        The values, rounded once to ``fmt`` (ties to even) if they are not values
        of it.
    fmt : Format or str, optional
        The format; by default the innermost :func:`lowprec.precision` block's.
    rounding : str, optional
        The mode of every operation's rounding (default ``"ties_to_even"``).
    accumulate : Format or str, optional
        Format of the additions of reductions (default: ``fmt``).
    order : {"sequential", "pairwise", "blocked", "kahan"}, optional
        Order of the additions of reductions (default sequential).
    model : str, optional
        A tensor-core model for matmul and dot (``"v100"``, ``"a100"``, ...).
    rng : int or numpy.random.Generator, optional
        Seed or stream of stochastic rounding's random bits.
    stats : RoundingStats, optional
        Counts of every rounding (use :class:`EmulationStats` to count the
        transcendental functions too).

    Examples
    --------
    >>> import numpy as np, lowprec
    >>> x = lowprec.emulate(np.full(4096, 1.0), "fp16")
    >>> float(x.sum())  # every addition rounded to fp16: stops at 2048
    2048.0
    >>> y = x[:3] / 3
    >>> y.fmt.name, float(y[0])
    ('fp16', 0.333251953125)
    """
    settings = make_settings(fmt, rounding, accumulate, order, model, rng, stats)
    data = x._data if isinstance(x, EmulatedArray) else np.asarray(x)
    if data.dtype == object or data.dtype.kind not in "biuf":
        raise TypeError(f"x must hold real numbers, got dtype {data.dtype}")
    values = _round(np.asarray(data, np.float64), settings.fmt)
    return EmulatedArray._wrap(np.asarray(values, np.float64), settings)


def promote(a: Format, b: Format) -> Format:
    """The format of a result with operands of formats ``a`` and ``b``.

    The one that holds every value of the other; if neither does, fp32 when it
    holds both, else fp64.

    Examples
    --------
    >>> import lowprec
    >>> from lowprec.emulation import promote
    >>> promote(lowprec.fp16, lowprec.fp32).name
    'fp32'
    >>> promote(lowprec.fp16, lowprec.bf16).name  # neither holds the other
    'fp32'
    """
    if fits(a, b):
        return b
    if fits(b, a):
        return a
    return fp32 if fits(a, fp32) and fits(b, fp32) else fp64


class EmulatedArray(NDArrayOperatorsMixin):
    """Values of a format, with the settings that say how they compute.

    Make one with :func:`emulate`. ``.fmt`` is the format, ``.settings`` the whole
    :class:`~lowprec.emulation.context.Settings`; shape, ndim, size, T, indexing and the
    arithmetic operators work as on an ndarray.
    """

    __slots__ = ("_data", "settings")
    __array_priority__ = 100

    @classmethod
    def _wrap(cls, data: np.ndarray, settings: Settings) -> EmulatedArray:
        obj = cls.__new__(cls)
        obj._data = data
        obj.settings = settings
        return obj

    @property
    def fmt(self) -> Format:
        """The format of the values."""
        return self.settings.fmt

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        """float64: the dtype the values come out in."""
        return self._data.dtype

    @property
    def T(self) -> EmulatedArray:
        return self._wrap(self._data.T, self.settings)

    def __len__(self) -> int:
        return len(self._data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("np.asarray(EmulatedArray, copy=False): values are "
                             "always copied out")
        data = self._data.copy()
        return data if dtype is None else data.astype(dtype)

    def __float__(self) -> float:
        return float(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __repr__(self) -> str:
        return f"EmulatedArray({np.array2string(self._data)}, fmt={self.fmt.name})"

    def __getitem__(self, key: object) -> EmulatedArray:
        key = _unwrap_key(key)
        return self._wrap(np.asarray(self._data[key]), self.settings)

    def __setitem__(self, key: object, value: object) -> None:
        values = value._data if isinstance(value, EmulatedArray) else value
        values = np.asarray(values, np.float64)
        if not isinstance(value, EmulatedArray) or not fits(value.fmt, self.fmt):
            values = _round(values, self.fmt, rounding=self.settings.rounding,
                            rng=self.settings.rng)
        self._data[_unwrap_key(key)] = values

    def copy(self) -> EmulatedArray:
        return self._wrap(self._data.copy(), self.settings)

    def astype(self, fmt: Format | str) -> EmulatedArray:
        """The values rounded once to another format (the settings follow)."""
        return emulate(self, fmt, rounding=self.settings.rounding,
                       order=self.settings.order, model=self.settings.model,
                       rng=self.settings.rng, stats=self.settings.stats)

    def reshape(self, *shape: int) -> EmulatedArray:
        return np.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: int) -> EmulatedArray:
        return np.transpose(self, axes or None)

    def sum(self, axis: int | None = None, keepdims: bool = False) -> EmulatedArray:
        return np.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | None = None, keepdims: bool = False) -> EmulatedArray:
        return np.mean(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis: int | None = None) -> EmulatedArray:
        return np.cumsum(self, axis=axis)

    def dot(self, other: object) -> EmulatedArray:
        return np.dot(self, other)

    def max(self, axis: int | None = None, keepdims: bool = False) -> EmulatedArray:
        return np.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | None = None, keepdims: bool = False) -> EmulatedArray:
        return np.min(self, axis=axis, keepdims=keepdims)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from lowprec.emulation._ufuncs import apply_ufunc

        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from lowprec.emulation._functions import FUNCTIONS

        impl = FUNCTIONS.get(func)
        if impl is None:
            name = f"{func.__module__}.{func.__name__}"
            raise TypeError(
                f"{name} is not supported on lowprec emulated arrays (it would "
                "compute in float64); convert with np.asarray(x) first if that is "
                "what you want"
            )
        return impl(*args, **kwargs)


def _unwrap_key(key: object) -> object:
    if isinstance(key, EmulatedArray):
        return key._data
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, EmulatedArray) else k for k in key)
    return key


def common_settings(operands: tuple) -> Settings:
    """The settings of a result: the promoted format, the rest from the first
    emulated operand of that format (else the first emulated operand)."""
    emulated = [x for x in operands if isinstance(x, EmulatedArray)]
    fmt = emulated[0].fmt
    for x in emulated[1:]:
        fmt = promote(fmt, x.fmt)
    for x in emulated:
        if x.fmt == fmt:
            return x.settings
    return emulated[0].settings.with_format(fmt)


def values_in(x: object, settings: Settings) -> np.ndarray:
    """An operand's values as float64, each a value of ``settings.fmt``.

    Emulated operands of a narrower format are exact in the wider one; plain arrays
    and numbers are rounded to the format, ties to even.
    """
    if isinstance(x, EmulatedArray):
        if fits(x.fmt, settings.fmt):
            return x._data
        return np.asarray(_round(x._data, settings.fmt), np.float64)
    if isinstance(x, bool | numbers.Number) or isinstance(x, np.ndarray | np.generic):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"operand of dtype {arr.dtype} is not a real number")
        return np.asarray(_round(arr.astype(np.float64), settings.fmt), np.float64)
    raise TypeError(
        f"cannot combine a lowprec emulated array with {type(x).__name__}"
    )


def count_transcendental(settings: Settings, n: int) -> None:
    if isinstance(settings.stats, EmulationStats):
        settings.stats.transcendental += n


def rounded(values: np.ndarray, settings: Settings) -> EmulatedArray:
    """float64 ``values`` rounded once to the format, counted."""
    out = _round(np.asarray(values, np.float64), settings.fmt, **settings.options())
    return EmulatedArray._wrap(np.asarray(out, np.float64), settings)


def matmul_options(settings: Settings) -> dict:
    """Keyword arguments of :func:`lowprec.matmul` for this array's reductions."""
    opts = {
        "inputs": settings.fmt,
        "accumulate": settings.accumulate,
        "output": settings.fmt,
        "rounding": settings.rounding,
        "stats": settings.stats,
    }
    if settings.model is not None:
        opts["model"] = settings.model
    else:
        opts["order"] = settings.order
    if settings.rounding in STOCHASTIC:
        opts["rng"] = settings.rng
    return opts


def emulated_matmul(a: np.ndarray, b: np.ndarray, settings: Settings) -> np.ndarray:
    """2-D ``a @ b`` through lowprec.matmul, as float64."""
    return np.asarray(_matmul(a, b, **matmul_options(settings)), np.float64)


ELEMENTWISE = {
    np.add: elementwise.add,
    np.subtract: elementwise.subtract,
    np.multiply: elementwise.multiply,
    np.true_divide: elementwise.divide,
}
