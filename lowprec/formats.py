"""Floating-point formats: one frozen record of parameters, everything else derived.

A :class:`Format` holds only what defines a binary floating-point format: its
precision ``p`` (significand bits, the hidden bit included), its exponent width,
its exponent bias, whether it has subnormals, and which special values it keeps.
Every other number (``emax``, ``max``, ``eps``, the encodings) is a property
computed from those, and named as :class:`numpy.finfo` names it.

The special-value conventions (``specials``):

``"ieee"``
    IEEE 754: the all-ones exponent holds ±inf and the NaNs (fp16, bf16, e5m2).
``"fn"``
    Finite, one NaN per sign: only ``S.1111.111`` is NaN, the rest of the
    all-ones exponent holds normal numbers; no inf (OCP ``float8_e4m3fn``).
``"fnuz"``
    Finite, unsigned zero: no inf, no -0; the negative-zero code ``1000...0`` is
    the only NaN (Graphcore ``float8_e4m3fnuz`` / ``float8_e5m2fnuz``).
``"none"``
    No special values at all: every code is a finite number (the OCP MX element
    types fp6 and fp4).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lowprec import _ml_dtypes

__all__ = [
    "Format",
    "as_format",
    "custom_format",
    "builtin_formats",
    "SPECIALS",
    "fp64",
    "fp32",
    "tf32",
    "fp16",
    "bf16",
    "fp8_e5m2",
    "fp8_e4m3fn",
    "fp8_e4m3",
    "fp8_e4m3fnuz",
    "fp8_e5m2fnuz",
    "fp6_e2m3fn",
    "fp6_e3m2fn",
    "fp4_e2m1fn",
    # scale and integer formats of the block layer (issue 17)
    "ScaleFormat",
    "IntegerFormat",
    "e8m0",
    "int8",
    "int4",
    "mxint8_element",
]

SPECIALS = ("ieee", "fn", "fnuz", "none")


@dataclass(frozen=True)
class Format:
    """A binary floating-point format, given by its parameters.

    Build one with :func:`custom_format` (which validates) or use a built-in such
    as ``lowprec.fp16``. The attributes below the parameters are derived, with the
    names :class:`numpy.finfo` uses, except ``precision``: here it is the number
    of significand bits ``p`` with the hidden bit (11 for fp16), not numpy's
    count of decimal digits.

    Parameters
    ----------
    name : str
        The name the format prints as.
    precision : int
        Significand bits including the hidden bit, ``p`` (fp16: 11).
    exponent_bits : int
        Width of the exponent field (fp16: 5).
    bias : int
        Exponent bias (fp16: 15).
    subnormals : bool
        Whether values below ``smallest_normal`` keep gradual underflow.
    specials : {"ieee", "fn", "fnuz", "none"}
        Which special values the format has (see the module docstring).

    Examples
    --------
    >>> import lowprec
    >>> lowprec.fp16.max, lowprec.fp16.eps, lowprec.fp16.smallest_subnormal
    (65504.0, 0.0009765625, 5.960464477539063e-08)
    >>> lowprec.fp8_e4m3fn.max
    448.0
    """

    name: str
    precision: int
    exponent_bits: int
    bias: int
    subnormals: bool = True
    specials: str = "ieee"

    # -- sizes ---------------------------------------------------------------
    @property
    def nmant(self) -> int:
        """Stored significand (mantissa) bits, ``p - 1``."""
        return self.precision - 1

    @property
    def nexp(self) -> int:
        """Exponent bits (``numpy.finfo`` name)."""
        return self.exponent_bits

    @property
    def iexp(self) -> int:
        """Exponent bits (``numpy.finfo`` name)."""
        return self.exponent_bits

    @property
    def bits(self) -> int:
        """Total storage bits: sign, exponent and stored significand."""
        return 1 + self.exponent_bits + self.nmant

    # -- exponent range ------------------------------------------------------
    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite number.

        IEEE formats keep the all-ones exponent for inf/NaN; the others use it
        for numbers.
        """
        top = (1 << self.exponent_bits) - 1
        return top - 1 - self.bias if self.specials == "ieee" else top - self.bias

    @property
    def minexp(self) -> int:
        """``numpy.finfo`` name for :attr:`emin`."""
        return self.emin

    @property
    def maxexp(self) -> int:
        """``numpy.finfo`` convention: the smallest power of two that overflows."""
        return self.emax + 1

    # -- values --------------------------------------------------------------
    @property
    def max(self) -> float:
        """Largest finite value.

        With ``specials="fn"`` the all-ones significand of the top binade is
        NaN, so the largest significand is one ulp lower (e4m3fn: 448, not 480).
        """
        top_ulps = 2 if self.specials == "fn" else 1
        return math.ldexp(2.0 - math.ldexp(top_ulps, -self.nmant), self.emax)

    @property
    def smallest_normal(self) -> float:
        """Smallest positive normal value, ``2**emin``."""
        return math.ldexp(1.0, self.emin)

    @property
    def tiny(self) -> float:
        """``numpy.finfo`` alias for :attr:`smallest_normal`."""
        return self.smallest_normal

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value: ``2**(emin - p + 1)``.

        For a format without subnormals this is :attr:`smallest_normal`, the
        smallest positive value it has.
        """
        if not self.subnormals:
            return self.smallest_normal
        return math.ldexp(1.0, self.emin - self.nmant)

    @property
    def eps(self) -> float:
        """Distance from 1.0 to the next larger value, ``2**(1 - p)``."""
        return math.ldexp(1.0, -self.nmant)

    @property
    def epsneg(self) -> float:
        """Distance from 1.0 to the next smaller value: ``2**-p`` when that value is
        normal; the subnormal spacing when 1.0 is the smallest normal (fp4, fp6).
        """
        if self.emin <= -1:
            return math.ldexp(1.0, -self.precision)
        if not self.subnormals:
            return 1.0  # nothing between 0 and 2**emin >= 1
        return min(math.ldexp(1.0, self.emin - self.nmant), 1.0)

    @property
    def machep(self) -> int:
        """``numpy.finfo`` name: the exponent of :attr:`eps`."""
        return -self.nmant

    @property
    def negep(self) -> int:
        """``numpy.finfo`` name: the exponent of :attr:`epsneg`."""
        return math.frexp(self.epsneg)[1] - 1

    @property
    def unit_roundoff(self) -> float:
        """``u = 2**-p``, the bound on the relative error of round-to-nearest in the
        normal range."""
        return math.ldexp(1.0, -self.precision)

    # -- special values ------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        """Whether ±inf are values of the format."""
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        """Whether the format has a NaN code."""
        return self.specials != "none"

    @property
    def has_negative_zero(self) -> bool:
        """Whether -0 is a value of the format (not in ``fnuz`` formats)."""
        return self.specials != "fnuz"

    # -- encodings -----------------------------------------------------------
    @property
    def ml_dtype(self) -> np.dtype | None:
        """The NumPy or ml_dtypes dtype that stores this format, or None.

        Matched on the five defining parameters, so a custom format equal to
        bf16 gets ``ml_dtypes.bfloat16`` too. fp16, fp32 and fp64 give NumPy's
        float16, float32 and float64 (without ml_dtypes installed); the other
        formats import ml_dtypes, raising ImportError (with the command to install
        it, ``pip install 'lowprec[ml_dtypes]'``) when it is absent. None where
        neither has the format (tf32, e4m4, a format without subnormals...).

        Examples
        --------
        >>> import lowprec
        >>> lowprec.fp8_e4m3fn.ml_dtype
        dtype(float8_e4m3fn)
        >>> lowprec.fp16.ml_dtype, lowprec.tf32.ml_dtype
        (dtype('float16'), None)
        """
        return _ml_dtypes.dtype_of((self.precision, self.exponent_bits, self.bias,
                                    self.subnormals, self.specials))

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest unsigned integer dtype that holds a code."""
        for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
            if self.bits <= np.dtype(dt).itemsize * 8:
                return np.dtype(dt)
        raise AssertionError("formats have at most 64 bits")

    @property
    def sign_mask(self) -> int:
        """The sign bit of a code."""
        return 1 << (self.bits - 1)

    @property
    def num_codes(self) -> int:
        """How many codes the format has, ``2**bits``."""
        return 1 << self.bits

    @property
    def max_code(self) -> int:
        """Code of :attr:`max` (positive sign)."""
        top = (1 << self.exponent_bits) - 1
        mant = (1 << self.nmant) - 1
        if self.specials == "ieee":
            return ((top - 1) << self.nmant) | mant
        if self.specials == "fn":
            return (top << self.nmant) | (mant - 1)
        return (top << self.nmant) | mant

    @property
    def inf_code(self) -> int | None:
        """Code of +inf, or None when the format has no inf."""
        if not self.has_inf:
            return None
        return ((1 << self.exponent_bits) - 1) << self.nmant

    @property
    def nan_code(self) -> int | None:
        """Code of the canonical (quiet, positive) NaN, or None when there is none.

        IEEE formats: all-ones exponent with the top significand bit set; ``fn``:
        all ones; ``fnuz``: the negative-zero code.
        """
        top = (1 << self.exponent_bits) - 1
        if self.specials == "ieee":
            return (top << self.nmant) | (1 << (self.nmant - 1))
        if self.specials == "fn":
            return (top << self.nmant) | ((1 << self.nmant) - 1)
        if self.specials == "fnuz":
            return self.sign_mask
        return None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return (
            f"Format({self.name!r}, precision={self.precision}, "
            f"exponent_bits={self.exponent_bits}, bias={self.bias}, "
            f"subnormals={self.subnormals}, specials={self.specials!r})"
        )


def custom_format(
    precision: int,
    exponent_bits: int,
    *,
    bias: int | None = None,
    subnormals: bool = True,
    specials: str = "ieee",
    name: str | None = None,
) -> Format:
    """Make a binary floating-point format from its parameters.

    Parameters
    ----------
    precision : int
        Significand bits including the hidden bit, 2 to 53.
    exponent_bits : int
        Width of the exponent field, 2 to 11.
    bias : int, optional
        Exponent bias; defaults to the IEEE ``2**(exponent_bits - 1) - 1``.
    subnormals : bool, default True
        Whether the format has subnormal numbers.
    specials : {"ieee", "fn", "fnuz", "none"}, default "ieee"
        The special-value convention (see :mod:`lowprec.formats`).
    name : str, optional
        Display name; defaults to ``"e{exponent_bits}m{precision-1}"`` with a
        suffix for non-default settings.

    Returns
    -------
    Format

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range, or the format's values do not fit in
        float64 (which lowprec uses to carry them).

    Examples
    --------
    >>> import lowprec
    >>> f = lowprec.custom_format(5, 4)
    >>> f.name, f.max, f.smallest_subnormal
    ('e4m4', 248.0, 0.0009765625)
    """
    _check_int("precision", precision, 2, 53)
    _check_int("exponent_bits", exponent_bits, 2, 11)
    if bias is None:
        bias = (1 << (exponent_bits - 1)) - 1
    elif isinstance(bias, bool) or not isinstance(bias, int | np.integer):
        raise TypeError(f"bias must be an int, got {type(bias).__name__}")
    if not isinstance(subnormals, bool | np.bool_):
        raise TypeError(f"subnormals must be a bool, got {type(subnormals).__name__}")
    if specials not in SPECIALS:
        raise ValueError(f"specials must be one of {SPECIALS}, got {specials!r}")
    if specials == "ieee" and exponent_bits < 2:
        raise ValueError("exponent_bits must be at least 2 for specials='ieee'")
    if name is None:
        name = f"e{exponent_bits}m{precision - 1}"
        if bias != (1 << (exponent_bits - 1)) - 1:
            name += f"_b{bias}"
        if specials != "ieee":
            name += specials if specials != "none" else "_finite"
        if not subnormals:
            name += "_nosub"
    elif not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    fmt = Format(name, int(precision), int(exponent_bits), int(bias), bool(subnormals),
                 specials)
    # lowprec carries values in float64: every value of the format must be one.
    if fmt.emax > 1023:
        raise ValueError(
            f"bias={bias} gives emax={fmt.emax}; values above 2**1023 do not fit "
            "in float64 (raise the bias)"
        )
    if fmt.emin < -1022:
        raise ValueError(
            f"bias={bias} gives emin={fmt.emin}; lowprec needs the smallest normal "
            "to be a float64 normal, 2**-1022 or more (lower the bias)"
        )
    if fmt.emax < fmt.emin:
        raise ValueError(
            f"exponent_bits={exponent_bits} with specials={specials!r} leaves no "
            "normal binade"
        )
    return fmt


def _check_int(arg: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{arg} must be between {lo} and {hi}, got {value}")


def _builtin(name: str, p: int, e: int, **kw: object) -> Format:
    return custom_format(p, e, name=name, **kw)


# The built-ins are made by the same factory as custom formats.
fp64 = _builtin("fp64", 53, 11)
fp32 = _builtin("fp32", 24, 8)
tf32 = _builtin("tf32", 11, 8)
fp16 = _builtin("fp16", 11, 5)
bf16 = _builtin("bf16", 8, 8)
fp8_e5m2 = _builtin("fp8_e5m2", 3, 5)
fp8_e4m3fn = _builtin("fp8_e4m3fn", 4, 4, specials="fn")
fp8_e4m3 = _builtin("fp8_e4m3", 4, 4)
fp8_e4m3fnuz = _builtin("fp8_e4m3fnuz", 4, 4, bias=8, specials="fnuz")
fp8_e5m2fnuz = _builtin("fp8_e5m2fnuz", 3, 5, bias=16, specials="fnuz")
fp6_e2m3fn = _builtin("fp6_e2m3fn", 4, 2, specials="none")
fp6_e3m2fn = _builtin("fp6_e3m2fn", 3, 3, specials="none")
fp4_e2m1fn = _builtin("fp4_e2m1fn", 2, 2, specials="none")

_BUILTINS = (fp64, fp32, tf32, fp16, bf16, fp8_e5m2, fp8_e4m3fn, fp8_e4m3,
             fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e2m3fn, fp6_e3m2fn, fp4_e2m1fn)

_ALIASES = {
    "fp64": ("float64", "double", "binary64", "f64"),
    "fp32": ("float32", "single", "binary32", "f32"),
    "tf32": ("tensorfloat32", "tensorfloat-32"),
    "fp16": ("float16", "half", "binary16", "f16"),
    "bf16": ("bfloat16", "brainfloat16", "bfloat"),
    "fp8_e5m2": ("float8_e5m2", "e5m2"),
    "fp8_e4m3fn": ("float8_e4m3fn", "e4m3fn"),
    "fp8_e4m3": ("float8_e4m3", "e4m3"),
    "fp8_e4m3fnuz": ("float8_e4m3fnuz", "e4m3fnuz"),
    "fp8_e5m2fnuz": ("float8_e5m2fnuz", "e5m2fnuz"),
    "fp6_e2m3fn": ("float6_e2m3fn", "e2m3fn"),
    "fp6_e3m2fn": ("float6_e3m2fn", "e3m2fn"),
    "fp4_e2m1fn": ("float4_e2m1fn", "e2m1fn"),
}

_BY_NAME: dict[str, Format] = {}
for _f in _BUILTINS:
    _BY_NAME[_f.name] = _f
    for _alias in _ALIASES[_f.name]:
        _BY_NAME[_alias] = _f


@functools.cache
def _ml_format(name: str, params: tuple) -> Format:
    """The format of an ml_dtypes type that has no built-in, named as ml_dtypes."""
    p, e, bias, subnormals, specials = params
    return custom_format(p, e, bias=bias, subnormals=subnormals, specials=specials,
                         name=name)


def builtin_formats() -> tuple[Format, ...]:
    """The built-in formats, widest first."""
    return _BUILTINS


def as_format(fmt: Format | str | np.dtype | type, arg: str = "fmt") -> Format:
    """Turn a format name, a NumPy/ml_dtypes dtype or a :class:`Format` into a Format.

    Parameters
    ----------
    fmt : Format, str, numpy.dtype or dtype-like
        ``lowprec.fp16``, ``"fp16"``, ``"half"``, ``"bfloat16"``, ``np.float16``...
        Names are case-insensitive.
    arg : str
        The argument name to use in error messages.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    TypeError
        For anything that is not a name, dtype or Format.

    Examples
    --------
    >>> import lowprec
    >>> lowprec.as_format("half") is lowprec.fp16
    True

    ml_dtypes types map to the format with their parameters; the two without a
    built-in (``float8_e3m4``, ``float8_e4m3b11fnuz``) give a custom format with
    the ml_dtypes name:

    >>> import ml_dtypes
    >>> lowprec.as_format(ml_dtypes.float8_e4m3fn) is lowprec.fp8_e4m3fn
    True
    >>> lowprec.as_format(ml_dtypes.float8_e4m3b11fnuz).max
    30.0
    """
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, str):
        key = fmt.strip().lower().replace("-", "_")
        if key in _BY_NAME:
            return _BY_NAME[key]
        names = ", ".join(f.name for f in _BUILTINS)
        raise ValueError(
            f"{arg}: unknown format {fmt!r}; built-in formats are {names} "
            "(or make one with lowprec.custom_format)"
        )
    if isinstance(fmt, np.dtype) or isinstance(fmt, type):
        try:
            name = np.dtype(fmt).name
        except TypeError:
            name = None
        if name is not None and name in _BY_NAME:
            return _BY_NAME[name]
        found = None if name is None else _ml_dtypes.params_of(np.dtype(fmt))
        if found is not None:  # an ml_dtypes type without a built-in (e3m4, ...)
            return _ml_format(*found)
        raise ValueError(f"{arg}: dtype {fmt!r} is not a known floating-point format"
                         " (lowprec formats are signed binary floating point)")
    raise TypeError(
        f"{arg} must be a lowprec.Format, a format name or a dtype, "
        f"got {type(fmt).__name__}"
    )


# -- the block layer's scale and integer formats (issue 17) ---------------------
# Neither is a Format: e8m0 has no sign, no zero and no significand, and an integer
# format has a fixed point instead of an exponent, so the Format properties (max,
# emax, the codes) and the rounding kernels built on them do not apply.


@dataclass(frozen=True)
class ScaleFormat:
    """OCP MX's ``e8m0`` scale: an unsigned power of two, one code per exponent.

    Code ``b`` means ``2**(b - bias)`` for ``b = 0 .. 2**exponent_bits - 2``; the
    all-ones code is NaN. There is no zero, no inf and no sign (OCP MX v1.0,
    section 5.4.1). Code 0 is ``2**-127``, a float32 subnormal, so it is decoded
    with ``ldexp``, never by writing the code into a float's exponent field.

    Examples
    --------
    >>> import lowprec
    >>> lowprec.e8m0.decode(127), lowprec.e8m0.decode(0) == 2.0**-127
    (1.0, True)
    >>> lowprec.e8m0.nan_code, lowprec.e8m0.min_exponent, lowprec.e8m0.max_exponent
    (255, -127, 127)
    """

    name: str = "e8m0"
    exponent_bits: int = 8
    bias: int = 127

    @property
    def bits(self) -> int:
        """Storage bits (no sign, no significand)."""
        return self.exponent_bits

    @property
    def nan_code(self) -> int:
        """The all-ones code, the only NaN."""
        return (1 << self.exponent_bits) - 1

    @property
    def min_exponent(self) -> int:
        """Exponent of code 0 (e8m0: -127)."""
        return -self.bias

    @property
    def max_exponent(self) -> int:
        """Exponent of the largest non-NaN code (e8m0: 127)."""
        return self.nan_code - 1 - self.bias

    @property
    def max(self) -> float:
        """The largest value, ``2**max_exponent``."""
        return math.ldexp(1.0, self.max_exponent)

    @property
    def smallest(self) -> float:
        """The smallest value, ``2**min_exponent`` (there is no zero)."""
        return math.ldexp(1.0, self.min_exponent)

    def decode(self, code: int) -> float:
        """The value of one code: ``2**(code - bias)``, NaN for the all-ones code."""
        if not 0 <= int(code) <= self.nan_code:
            raise ValueError(f"code: {self.name} codes are 0 to {self.nan_code}, "
                             f"got {code}")
        if code == self.nan_code:
            return math.nan
        return math.ldexp(1.0, int(code) - self.bias)


@dataclass(frozen=True)
class IntegerFormat:
    """A two's-complement integer format, optionally with an implicit binary point.

    The value of the integer ``k`` (``-2**(bits-1) <= k < 2**(bits-1)``) is
    ``k * 2**-frac_bits``; a code is the ``bits``-bit two's-complement pattern of
    ``k``. ``int8`` and ``int4`` have ``frac_bits=0``; MXINT8's element is int8
    with ``frac_bits=6`` (OCP MX v1.0, section 5.3.3: values ``k/64``, max 127/64).

    Examples
    --------
    >>> import lowprec
    >>> lowprec.int8.max, lowprec.int8.min, lowprec.mxint8_element.max
    (127.0, -128.0, 1.984375)
    >>> lowprec.int4.decode(0xF), lowprec.mxint8_element.decode(0x80)
    (-1.0, -2.0)
    """

    name: str
    bits: int
    frac_bits: int = 0

    @property
    def min_int(self) -> int:
        """The most negative integer, ``-2**(bits-1)``."""
        return -(1 << (self.bits - 1))

    @property
    def max_int(self) -> int:
        """The largest integer, ``2**(bits-1) - 1``."""
        return (1 << (self.bits - 1)) - 1

    @property
    def max(self) -> float:
        """The largest value, ``max_int * 2**-frac_bits``."""
        return math.ldexp(float(self.max_int), -self.frac_bits)

    @property
    def min(self) -> float:
        """The most negative value, ``min_int * 2**-frac_bits``."""
        return math.ldexp(float(self.min_int), -self.frac_bits)

    @property
    def ulp(self) -> float:
        """The spacing of the values, ``2**-frac_bits``."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def num_codes(self) -> int:
        """How many codes the format has, ``2**bits``."""
        return 1 << self.bits

    @property
    def code_dtype(self) -> np.dtype:
        """uint8: every integer format here has at most 8 bits."""
        return np.dtype(np.uint8)

    def decode(self, code: int) -> float:
        """The value of one code (a ``bits``-bit two's-complement pattern)."""
        if not 0 <= int(code) < self.num_codes:
            raise ValueError(f"code: {self.name} codes are 0 to "
                             f"{self.num_codes - 1}, got {code}")
        k = int(code) - self.num_codes if code > self.max_int else int(code)
        return math.ldexp(float(k), -self.frac_bits)

    def grid_format(self) -> Format:
        """A float format whose values include every value of this one.

        With ``bits`` significand bits and the smallest normal at
        ``2**(bits-1-frac_bits)``, its spacing is ``2**-frac_bits`` up to twice the
        largest magnitude, so rounding onto it and clamping to ``[min, max]`` is
        rounding onto the integers, in every rounding mode of :func:`lowprec.round`.
        """
        emin = self.bits - 1 - self.frac_bits
        return custom_format(self.bits, 2, bias=1 - emin, specials="none",
                             name=f"{self.name}_grid")


e8m0 = ScaleFormat()
int8 = IntegerFormat("int8", 8)
int4 = IntegerFormat("int4", 4)
mxint8_element = IntegerFormat("mxint8_element", 8, frac_bits=6)
