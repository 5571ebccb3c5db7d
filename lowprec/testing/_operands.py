"""The :func:`operands` strategy: tuples of a format's values for testing a
binary or ternary operation (add, multiply, fma), biased towards the inputs whose
exact result is a tie, underflows or overflows."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lowprec.formats import Format, as_format
from lowprec.testing._decode import _Magnitudes
from lowprec.testing._support import _check_dtype, _check_specials, _holds_values
from lowprec.testing._values import values


def operands(
    fmt: Format | str,
    n: int = 2,
    *,
    dtype: np.dtype | type = np.float32,
    shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    allow_nan: bool = True,
    allow_infinity: bool = True,
    allow_subnormal: bool = True,
) -> st.SearchStrategy[tuple]:
    """Generate n-tuples of a format's values: operands of an add, mul or fma.

    Each element of a tuple is a value of ``fmt`` stored in ``dtype``. About
    two fifths of the tuples are independent :func:`values`; the others are
    built so that the *exact* result of the operation is where rounding is
    hard:

    - **sum ties**: ``(x, ±ulp(x)/2)``, either order, either sign, and with
      the half ulp replaced by its neighbours in ``fmt`` (just off the tie);
      ``max + ulp(max)/2`` is the overflow bound of round-to-nearest;
    - **product ties**: ``(±1.5 * 2**i, ±s * 2**j)`` with ``s`` of odd
      significand in ``[1, 4/3)``, whose product needs exactly one bit more
      than the format has (no such ``s`` exists for 2-bit significands),
      over every exponent from products that underflow to those that overflow;
    - **fma** (``n >= 3``): a product tie plus ``±0`` or plus the smallest
      value (which breaks the tie: an fma that rounds the product first gets
      it wrong), and a sum tie as ``(x, 1.0, ±ulp(x)/2)``;
    - **edges**: ``(±0, ±0)``, ``(max, max)``, ``(1, -1)``, ``(inf, -inf)``,
      ``(inf, 0)``, ``(NaN, 1)``, ``(tiny, -tiny)``, ``(smallest normal,
      -tiny)``, where the format has these values.

    For ``n > 3`` the operands past the third are independent values; for
    ``n == 1`` the tuples are ``(x,)`` with ``x`` from :func:`values`.

    Parameters
    ----------
    fmt : Format or str
        A format or its name.
    n : int, default 2
        The number of operands.
    dtype : numpy.float32, float64, float16 or an ml_dtypes float type
        The type each operand is stored in, default float32; it must hold
        every value of ``fmt`` (and its inf and NaN, if drawn).
    shape : int, tuple of int or strategy, optional
        Without it (the default) each operand is a NumPy scalar. With it, each
        operand is an array of that shape (one shape per tuple, shared by its
        operands), and each *position* across the arrays is a tuple drawn as
        above, so ties and edges appear elementwise.
    allow_nan, allow_infinity : bool, default True
        Include the format's NaN and infinities (where it has them).
    allow_subnormal : bool, default True
        Include the format's subnormal values (as operands; results may
        still underflow).

    Returns
    -------
    SearchStrategy[tuple]
        Tuples of ``n`` NumPy scalars of ``dtype``, or of ``n`` arrays.

    Raises
    ------
    hypothesis.errors.InvalidArgument
        If ``n < 1``, or ``dtype`` cannot hold the values drawn.

    Examples
    --------
    The sum of two fp8_e4m3fn values is exact in float32 (it needs at most
    18 significand bits), so rounding the float32 sum once must give the
    correctly rounded sum, ties and overflow to NaN included:

    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> import lowprec
    >>> from lowprec.testing import assert_bits_equal, operands
    >>> @settings(deadline=None)  # the first lowprec call compiles its kernel
    ... @given(operands(lowprec.fp8_e4m3fn, dtype=np.float32))
    ... def test_float32_sum_rounds_once(xy):
    ...     x, y = xy
    ...     assert_bits_equal(
    ...         lowprec.round(x + y, lowprec.fp8_e4m3fn),
    ...         lowprec.add(x, y, lowprec.fp8_e4m3fn),
    ...         lowprec.fp8_e4m3fn,
    ...     )
    >>> test_float32_sum_rounds_once()

    With ``shape``, the operands are arrays:

    >>> @given(operands("bf16", 3, shape=(2, 2)))
    ... def test_shapes(abc):
    ...     assert [t.shape for t in abc] == [(2, 2)] * 3
    >>> test_shapes()
    """
    fmt = as_format(fmt)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidArgument(f"n must be a positive int, got {n!r}")
    dt = _check_dtype(dtype)
    if not _holds_values(fmt, dt):
        raise InvalidArgument(
            f"{dt} cannot hold every value of {fmt.name}; use a wider dtype"
        )
    allow_nan = bool(allow_nan and fmt.has_nan)
    allow_infinity = bool(allow_infinity and fmt.has_inf)
    _check_specials(dt, allow_nan, allow_infinity)
    single = values(
        fmt,
        allow_nan=allow_nan,
        allow_infinity=allow_infinity,
        allow_subnormal=allow_subnormal,
    )
    tuples = _tuples(fmt, n, single, allow_nan, allow_infinity, allow_subnormal)

    def stored(t: tuple[float, ...]) -> tuple:
        return tuple(dt.type(v) for v in t)

    if shape is None:
        return tuples.map(stored)
    shapes = _shapes(shape)

    @st.composite
    def draw_arrays(draw: Callable) -> tuple[np.ndarray, ...]:
        sh = draw(shapes)
        size = math.prod(sh)
        rows = draw(st.lists(tuples, min_size=size, max_size=size))
        columns = zip(*rows, strict=True) if rows else [()] * n
        return tuple(np.array(list(c), dtype=dt).reshape(sh) for c in columns)

    return draw_arrays()


def _shapes(shape: object) -> st.SearchStrategy[tuple[int, ...]]:
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidArgument(
            f"shape must be an int, a tuple of ints >= 0 or a strategy, got {shape!r}"
        )
    return st.just(shape)


def _tuples(
    fmt: Format,
    n: int,
    single: st.SearchStrategy[float],
    allow_nan: bool,
    allow_infinity: bool,
    allow_subnormal: bool,
) -> st.SearchStrategy[tuple[float, ...]]:
    """The n-tuples of Python floats, before they are stored in the dtype."""
    independent = st.tuples(*[single] * n)
    if n == 1:
        return independent
    mags = _Magnitudes(fmt, allow_subnormal)
    sums, products = _sum_ties(fmt, mags), _product_ties(fmt, mags)
    edges = st.sampled_from(_edges(fmt, mags, allow_nan, allow_infinity))
    if n == 2:
        heads = [sums, products, edges]
    else:  # fma-shaped triples, and the edge pairs with any third operand
        edge_triples = st.tuples(edges, single).map(lambda e: (*e[0], e[1]))
        heads = [_fma_ties(fmt, mags, sums, products), edge_triples]
    head = st.one_of([h for h in heads if h is not None])
    rest = st.tuples(*[single] * (n - min(n, 3)))
    made = st.tuples(head, rest).map(lambda hr: hr[0] + hr[1])
    return st.one_of(independent, independent, made, made, made)


def _sum_ties(fmt: Format, mags: _Magnitudes) -> st.SearchStrategy | None:
    """``(x, ±h)`` and ``(±h, x)`` with ``h = ulp(x)/2`` or a neighbour of it."""
    tiny = mags[1]
    # h = ulp(x)/2 is a value of the format from x >= tiny * 2**p on
    first = mags.count_below(math.ldexp(tiny, fmt.precision), inclusive=False) + 1
    if first > mags.n:
        return None

    def pair(drawn: tuple[int, int, bool, bool, bool]) -> tuple[float, float]:
        k, step, minus, negative, swap = drawn
        x, half = mags[k], mags.gap_above(k) / 2
        j = mags.count_below(half, inclusive=True)  # the index of half
        h = mags[min(max(j + step, 1), mags.n)]
        x, h = (-x, -h) if negative else (x, h)
        h = -h if minus else h
        return (h, x) if swap else (x, h)

    edges = sorted({first, first + 1, mags.first_normal, mags.n - 1, mags.n})
    k = st.one_of(
        st.sampled_from([e for e in edges if first <= e <= mags.n]),
        mags.by_binade(first, mags.n),
    )
    flags = st.booleans()
    step = st.sampled_from((0, 0, -1, 1))
    return st.tuples(k, step, flags, flags, flags).map(pair)


def _product_ties(fmt: Format, mags: _Magnitudes) -> st.SearchStrategy | None:
    """``(±1.5 * 2**i, ±s * 2**j)``: the exact product has p + 1 bits, last 1."""
    nmant = fmt.nmant
    # odd significands N / 2**nmant in [1, 4/3): 1.5 * s in [1.5, 2) needs p + 1 bits
    odd = [m for m in range(1 << nmant, ((1 << (nmant + 2)) - 1) // 3 + 1) if m & 1]
    if not odd:
        return None
    lo_e = fmt.emin
    lo_prod = max(lo_e - fmt.precision, 2 * lo_e)
    hi_prod = min(fmt.emax, 2 * fmt.emax)
    if lo_prod > hi_prod:
        return None

    @st.composite
    def pair(draw: Callable) -> tuple[float, float]:
        e = draw(st.integers(lo_prod, hi_prod))
        i = draw(st.integers(max(lo_e, e - fmt.emax), min(fmt.emax, e - lo_e)))
        m = draw(st.sampled_from(odd))
        x = math.ldexp(1.5, i)
        y = math.ldexp(m, e - i - nmant)
        sx, sy, swap = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
        x, y = -x if sx else x, -y if sy else y
        return (y, x) if swap else (x, y)

    # fn formats lack the top of their last binade (e4m3fn: 480 is the NaN)
    return pair().filter(lambda xy: max(map(abs, xy)) <= fmt.max)


def _fma_ties(
    fmt: Format,
    mags: _Magnitudes,
    sums: st.SearchStrategy | None,
    products: st.SearchStrategy | None,
) -> st.SearchStrategy | None:
    """Triples ``(a, b, c)`` whose exact ``a * b + c`` is at or beside a tie."""
    parts = []
    tiny = mags[1]
    if products is not None:
        addend = [0.0, tiny, -tiny] + ([-0.0] if fmt.has_negative_zero else [])
        parts.append(
            st.tuples(products, st.sampled_from(addend)).map(lambda pc: (*pc[0], pc[1]))
        )
    if sums is not None and fmt.emin <= 0 <= fmt.emax:  # 1.0 is a value
        parts.append(sums.map(lambda xh: (xh[0], 1.0, xh[1])))
    return st.one_of(parts) if parts else None


def _edges(
    fmt: Format, mags: _Magnitudes, allow_nan: bool, allow_infinity: bool
) -> list[tuple[float, float]]:
    """The fixed pairs: zeros, max, cancellation, inf and NaN."""
    top, tiny, normal = fmt.max, mags[1], mags[mags.first_normal]
    pairs = [(0.0, 0.0), (top, top), (-top, -top), (top, -top), (tiny, -tiny)]
    pairs += [(normal, -tiny), (tiny, tiny), (top, mags.gap_above(mags.n) / 2)]
    if fmt.emin <= 0 <= fmt.emax:
        pairs += [(1.0, -1.0)]
    if fmt.has_negative_zero:
        pairs += [(-0.0, -0.0), (0.0, -0.0), (-0.0, 0.0)]
    if allow_infinity:
        pairs += [(math.inf, -math.inf), (math.inf, 0.0), (-math.inf, top)]
    if allow_nan:
        pairs += [(math.nan, 1.0 if fmt.emin <= 0 <= fmt.emax else top)]
    # only pairs of values: the half ulp of max may be below the smallest value
    return [p for p in pairs if all(_is_value(v, fmt, mags) for v in p)]


def _is_value(v: float, fmt: Format, mags: _Magnitudes) -> bool:
    if math.isnan(v) or math.isinf(v) or v == 0:
        return True
    k = mags.count_below(abs(v), inclusive=True)
    return k >= 1 and mags[k] == abs(v)
