"""The :func:`formats` strategy: built-in formats and valid custom ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lowprec.formats import SPECIALS, Format, builtin_formats, custom_format

# -- formats -------------------------------------------------------------------


def formats(
    *,
    builtin: bool = True,
    custom: bool = True,
    specials: Sequence[str] = SPECIALS,
    min_precision: int = 2,
    max_precision: int = 53,
    max_exponent_bits: int = 11,
    subnormals: bool | None = None,
) -> st.SearchStrategy[Format]:
    """Generate floating-point formats: the built-ins and valid custom ones.

    Custom formats are made with :func:`lowprec.custom_format`. Half the time
    the bias is the IEEE default; otherwise it is drawn from the whole range the
    factory accepts (every value a float64, smallest normal at least
    ``2**-1022``), negative biases included, whose formats do not hold 1.0.

    Parameters
    ----------
    builtin : bool, default True
        Include the built-in formats (``lowprec.builtin_formats()``).
    custom : bool, default True
        Include custom formats.
    specials : sequence of {"ieee", "fn", "fnuz", "none"}
        The special-value conventions allowed (all by default).
    min_precision, max_precision : int, default 2 and 53
        Bounds on the precision ``p``, the hidden bit included. Use
        ``max_precision=52`` with :func:`near_ties`, which needs a float64 to
        hold each midpoint.
    max_exponent_bits : int, default 11
        Upper bound on the exponent width (at least 2).
    subnormals : bool, optional
        Only formats with (True) or without (False) subnormals; None allows both.

    Returns
    -------
    SearchStrategy[Format]

    Examples
    --------
    >>> from hypothesis import given
    >>> import lowprec.testing
    >>> @given(lowprec.testing.formats(max_precision=24))
    ... def test_eps(fmt):
    ...     assert fmt.eps == 2.0 ** (1 - fmt.precision)
    >>> test_eps()
    """
    specials = tuple(specials)
    bad = [s for s in specials if s not in SPECIALS]
    if bad or not specials:
        raise InvalidArgument(
            f"specials must be a non-empty selection of {SPECIALS}, got {specials!r}"
        )
    if not 2 <= min_precision <= max_precision <= 53:
        raise InvalidArgument(
            "need 2 <= min_precision <= max_precision <= 53, got "
            f"min_precision={min_precision}, max_precision={max_precision}"
        )
    if not 2 <= max_exponent_bits <= 11:
        raise InvalidArgument(
            f"max_exponent_bits must be between 2 and 11, got {max_exponent_bits}"
        )

    def wanted(fmt: Format) -> bool:
        return (
            fmt.specials in specials
            and min_precision <= fmt.precision <= max_precision
            and fmt.exponent_bits <= max_exponent_bits
            and (subnormals is None or fmt.subnormals == subnormals)
        )

    choices = []
    if builtin:
        fixed = [f for f in builtin_formats() if wanted(f)]
        if fixed:
            choices.append(st.sampled_from(fixed))
    if custom:
        choices.append(
            _custom_formats(
                specials, min_precision, max_precision, max_exponent_bits, subnormals
            )
        )
    if not choices:
        raise InvalidArgument("no format satisfies these arguments")
    return st.one_of(choices)


def _bias_range(exponent_bits: int, specials: str) -> tuple[int, int]:
    """The biases custom_format accepts: emax <= 1023 and emin >= -1022."""
    top = (1 << exponent_bits) - 1
    emax_at_zero_bias = top - 1 if specials == "ieee" else top
    return emax_at_zero_bias - 1023, 1023


def _custom_formats(
    specials: tuple[str, ...],
    min_precision: int,
    max_precision: int,
    max_exponent_bits: int,
    subnormals: bool | None,
) -> st.SearchStrategy[Format]:
    @st.composite
    def draw_format(draw: Callable) -> Format:
        spec = draw(st.sampled_from(specials))
        # With 11 exponent bits only IEEE keeps emax <= 1023 (bias 1023): the
        # other conventions put numbers in the all-ones exponent too.
        widest = max_exponent_bits if spec == "ieee" else min(max_exponent_bits, 10)
        exponent_bits = draw(st.integers(2, widest))
        precision = draw(st.integers(min_precision, max_precision))
        lo, hi = _bias_range(exponent_bits, spec)
        default = (1 << (exponent_bits - 1)) - 1
        bias = draw(st.one_of(st.just(min(max(default, lo), hi)), st.integers(lo, hi)))
        sub = draw(st.booleans()) if subnormals is None else subnormals
        return custom_format(
            precision, exponent_bits, bias=bias, subnormals=sub, specials=spec
        )

    return draw_format()
