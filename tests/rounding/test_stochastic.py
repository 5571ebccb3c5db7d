"""Stochastic rounding: exact counts over enumerated random bits, then statistics.

With ``random_bits=r`` only the top r bits of each element's 64-bit random word
and the first r bits of the fraction ``frac = (|x| - lower) / gap`` count: the
magnitude rounds up when the two r-bit numbers carry when added. Enumerating all
``2**r`` values of the word's top bits therefore rounds up exactly
``floor(frac * 2**r)`` times, whatever the low bits of the words.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracles import (
    SMALL_FORMATS,
    all_code_values,
    assert_same_bits,
    grid_of,
    round_exact_flags,
)

import lowprec

MASK64 = (1 << 64) - 1


def enumerating_words(r: int, copies: int = 1, seed: int = 0) -> np.ndarray:
    """Every value of the top r bits, ``copies`` times each, random low bits."""
    top = np.repeat(np.arange(1 << r, dtype=np.uint64), copies) << np.uint64(64 - r)
    gen = np.random.default_rng(seed)
    low = gen.integers(0, 1 << (64 - r), size=top.size, dtype=np.uint64)
    return top | low


def neighbours(x: float, fmt, subnormals=None) -> tuple[Fraction, Fraction, Fraction]:
    """The grid neighbours of |x| and where |x| lies between them (0 <= f < 1)."""
    g = grid_of(fmt, subnormals)
    a = abs(Fraction(x))
    q = g.quantum(a) if a else g.smallest_positive
    lower = math.floor(a / q) * q
    return lower, lower + q, (a - lower) / q


def sample_points(name: str) -> list[tuple[str, float]]:
    """Values in the normal range, the subnormal range and below the smallest
    subnormal, at fractions of the gap that exercise 1..4 bits, both signs."""
    fmt = lowprec.as_format(name)
    g = grid_of(fmt)
    p = g.precision
    fractions = [Fraction(j, 32) for j in range(32)] + [
        Fraction(1, 3),
        Fraction(2, 3),
        Fraction(1) - Fraction(1, 1 << 40),
        Fraction(1, 1 << 40),
    ]
    bases = {
        "normal": (Fraction(3, 2), Fraction(1, 1 << (p - 1))),
        "top binade": (g.max - Fraction(2) ** (g.emax - p + 1), None),
        "subnormal": (3 * g.smallest_positive, g.smallest_positive),
        "below smallest subnormal": (Fraction(0), g.smallest_positive),
    }
    points = []
    for region, (base, gap) in bases.items():
        gap = gap if gap is not None else Fraction(2) ** (g.emax - p + 1)
        for f in fractions:
            x = float(base + f * gap)  # rounded to float64 if f is not dyadic
            points += [(region, x), (region, -x)]
    return points


@pytest.mark.parametrize("r", [1, 2, 3, 4])
@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2fnuz", "fp4_e2m1fn", "bf16"])
def test_round_ups_equal_floor_of_fraction_times_2_to_r(name, r):
    fmt = lowprec.as_format(name)
    copies = 3
    words = enumerating_words(r, copies, seed=r)
    for region, x in sample_points(name):
        lower, upper, frac = neighbours(x, fmt)
        xs = np.full(words.size, x)
        res = lowprec.round(xs, fmt, rounding="stochastic", random_bits=r, rng=words)
        signed = (res != 0) | fmt.has_negative_zero  # fnuz: zero is +0
        assert np.all(np.signbit(res[signed]) == np.signbit(x))
        assert np.all((np.abs(res) == float(lower)) | (np.abs(res) == float(upper)))
        ups = np.count_nonzero(np.abs(res) == float(upper))
        want = copies * math.floor(frac * (1 << r))
        assert ups == want, (region, x.hex(), float(frac), ups, want)


@pytest.mark.parametrize("r", [1, 2, 3, 4])
def test_round_ups_exact_without_subnormals_and_past_max(r):
    """No subnormals: the gap below 2**emin is [0, 2**emin]. Past max (IEEE): the
    upper neighbour is inf."""
    words = enumerating_words(r)
    fmt = lowprec.fp8_e4m3
    g = grid_of(fmt)
    top_gap = Fraction(2) ** (g.emax - g.precision + 1)
    for j in range(16):
        f = Fraction(j, 16)
        for x, sub, upper in [
            (float(f * Fraction(2) ** g.emin), False, math.ldexp(1.0, g.emin)),
            (float(g.max + f * top_gap), None, math.inf),
        ]:
            xs = np.full(words.size, x)
            res = lowprec.round(
                xs, fmt, rounding="stochastic", random_bits=r, rng=words, subnormals=sub
            )
            assert np.count_nonzero(res == upper) == math.floor(f * (1 << r)), x
            assert np.count_nonzero(res != upper) == (1 << r) - math.floor(f * (1 << r))


@pytest.mark.parametrize("name", [*SMALL_FORMATS, "fp16", "bf16"])
def test_representable_values_never_move(name):
    fmt = lowprec.as_format(name)
    values = all_code_values(fmt)
    x = values[np.isfinite(values)]
    if not fmt.has_negative_zero:
        x = x[~((x == 0) & np.signbit(x))]
    gen = np.random.default_rng(1)
    for words in (
        gen.integers(0, 2**64, size=x.size, dtype=np.uint64),
        np.full(x.size, MASK64, dtype=np.uint64),  # the words most eager to go up
    ):
        for r in (1, 4, 64):
            res = lowprec.round(x, fmt, rounding="stochastic", random_bits=r, rng=words)
            assert_same_bits(res, x, x, f"stochastic, random_bits={r}")
        res = lowprec.round(x, fmt, rounding="stochastic_equal", rng=words)
        assert_same_bits(res, x, x, "stochastic_equal")
    res = lowprec.round(x, fmt, rounding="stochastic", rng=5)
    assert_same_bits(res, x, x, "stochastic, seeded")


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp16", "fp6_e3m2fn"])
def test_stochastic_equal_goes_up_for_exactly_half_of_the_words(name):
    fmt = lowprec.as_format(name)
    words = enumerating_words(4, copies=2, seed=7)  # top bit set in half of them
    for region, x in sample_points(name):
        lower, upper, frac = neighbours(x, fmt)
        res = lowprec.round(
            np.full(words.size, x), fmt, rounding="stochastic_equal", rng=words
        )
        ups = np.count_nonzero(np.abs(res) == float(upper))
        assert ups == (words.size // 2 if frac else 0), (region, x)


@st.composite
def _format_values_words(draw):
    p = draw(st.integers(2, 53))
    eb = draw(st.integers(2, 10))
    specials = draw(st.sampled_from(["ieee", "fn", "fnuz", "none"]))
    fmt = lowprec.custom_format(
        p, eb, specials=specials, subnormals=draw(st.booleans())
    )
    g = grid_of(fmt)
    scale = st.integers(g.emin - p - 4, g.emax + 2)
    value = st.builds(
        lambda m, e, s: s * math.ldexp(m, e - 64),
        st.integers(0, MASK64),
        scale,
        st.sampled_from([1.0, -1.0]),
    )
    xs = draw(st.lists(value, min_size=1, max_size=8))
    words = draw(st.lists(st.integers(0, MASK64), min_size=len(xs), max_size=len(xs)))
    return fmt, np.array(xs), np.array(words, dtype=np.uint64)


@given(
    case=_format_values_words(),
    rounding=st.sampled_from(["stochastic", "stochastic_equal"]),
    r=st.one_of(st.integers(1, 64), st.just(64)),
    saturate=st.booleans(),
    subnormals=st.sampled_from([None, False]),
)
def test_agrees_with_exact_oracle_for_any_words(
    case, rounding, r, saturate, subnormals
):
    fmt, x, words = case
    bits = r if rounding == "stochastic" else None
    stats = lowprec.RoundingStats()
    got = lowprec.round(
        x,
        fmt,
        rounding=rounding,
        random_bits=bits,
        rng=words,
        saturate=saturate,
        subnormals=subnormals,
        stats=stats,
    )
    want, counts = [], dict.fromkeys(stats.as_dict(), 0)
    for v, w in zip(x.tolist(), words.tolist(), strict=True):
        value, flags = round_exact_flags(
            v,
            fmt,
            rounding,
            saturate=saturate,
            subnormals=subnormals,
            random_fraction_bits=r,
            random_word=w,
        )
        want.append(value)
        for name, flag in vars(flags).items():
            counts[name] += int(flag)
    counts["total"] = x.size
    assert_same_bits(got, np.array(want), x, f"{fmt!r} {rounding} r={r}")
    assert stats.as_dict() == counts


def _threshold_cases(fmt, dtype, r: int, n: int, seed: int):
    """Inputs of ``dtype`` over the format's normal and subnormal ranges, each with
    the two words that put the carry of (fraction + word), cut to r bits, just on
    and just off: the cases where looking at too few bits of either goes wrong."""
    g = grid_of(fmt)
    gen = np.random.default_rng(seed)
    e = gen.uniform(g.emin - g.precision - 2, g.emax + 1, n)
    x = (gen.choice([-1.0, 1.0], n) * np.exp2(e)).astype(dtype)
    xs, words = [], []
    for v in x.tolist():
        frac = neighbours(v, fmt)[2]
        cut = math.floor(frac * (1 << r))  # the fraction's r leading bits
        if cut == 0:
            continue
        low = int(gen.integers(0, 1 << (64 - r))) if r < 64 else 0
        for top in ((1 << r) - cut, (1 << r) - cut - 1):  # carry, just no carry
            xs.append(v)
            words.append(top << (64 - r) | low)
    return np.array(xs, dtype=dtype), np.array(words, dtype=np.uint64)


@pytest.mark.parametrize("r", [64, 40, 33, 32, 25, 24, 12])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["fp16", "bf16", "fp8_e4m3fn", "tf32"])
def test_words_on_either_side_of_the_carry(name, dtype, r):
    # The kernels compare the upper 32 (float32: 24) bits of fraction and word and
    # redo a block exactly where the rest could carry: these words are that case.
    fmt = lowprec.as_format(name)
    x, words = _threshold_cases(fmt, dtype, r, 400, seed=r)
    got = lowprec.round(x, fmt, rounding="stochastic", random_bits=r, rng=words)
    want = [
        round_exact_flags(
            v, fmt, "stochastic", random_fraction_bits=r, random_word=w
        )[0]
        for v, w in zip(x.tolist(), words.tolist(), strict=True)
    ]
    assert_same_bits(got, np.array(want, dtype=dtype), x, f"{name} {dtype} r={r}")


# Every word layout of lowprec.rounding._sr_bits: float32 with and without the path below
# B (fp16, bf16), float64 on its upper word (precision <= 21, p = 21 the edge where
# no bit is dropped from it) and on the whole word (p >= 22); options that change
# the constants (no subnormals, saturation, formats without -0 or inf). Values go
# far below T, where the fraction has more than 32 bits in every layout.
_LAYOUT_CASES = [
    ("fp16", np.float32, {}),
    ("bf16", np.float32, {}),
    ("fp16", np.float32, {"subnormals": False}),
    ("fp8_e5m2fnuz", np.float32, {"saturate": True}),
    ("fp16", np.float64, {}),
    ("fp8_e4m3fn", np.float64, {"subnormals": False}),
    ("fp4_e2m1fn", np.float64, {}),
    ("p21", np.float64, {}),
    ("p22", np.float64, {}),
    ("fp32", np.float64, {"saturate": True}),
]


def _layout_format(name: str):
    if name.startswith("p"):
        return lowprec.custom_format(int(name[1:]), 8)
    return lowprec.as_format(name)


@pytest.mark.parametrize("r", [64, 33, 32, 12])
@pytest.mark.parametrize(("name", "dtype", "options"), _LAYOUT_CASES)
def test_words_at_the_carry_in_every_layout(name, dtype, options, r):
    fmt = _layout_format(name)
    g = grid_of(fmt, options.get("subnormals"))
    gen = np.random.default_rng(r)
    lowest = g.emin - g.precision - 60
    e = gen.uniform(lowest, min(g.emax + 2, np.finfo(dtype).maxexp - 0.01), 300)
    x = (gen.choice([-1.0, 1.0], e.size) * np.exp2(e)).astype(dtype)
    xs, words = [], []
    for v in x.tolist():
        frac = neighbours(v, fmt, options.get("subnormals"))[2]
        cut = math.floor(frac * (1 << r))  # the fraction's r leading bits
        low = int(gen.integers(0, 1 << (64 - r))) if r < 64 else 0
        for top in ((1 << r) - cut, (1 << r) - cut - 1):  # carry, just no carry
            if 0 <= top < 1 << r:
                xs.append(v)
                words.append(top << (64 - r) | low)
    # and specials: NaNs whose payload is only their lowest bit (a float64's
    # lower word), signalling ones included
    bits = np.dtype(dtype).itemsize * 8
    nan_low = np.array([1 << (bits - 1) | 1, 1], dtype=f"u{bits // 8}")
    nan_low |= np.array(np.inf, dtype=dtype).view(nan_low.dtype)
    specials = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], dtype=dtype)
    x = np.concatenate([np.array(xs, dtype=dtype), specials, nan_low.view(dtype)])
    words = np.array(words + [2**64 - 1] * (x.size - len(words)), dtype=np.uint64)
    got = lowprec.round(
        x, fmt, rounding="stochastic", random_bits=r, rng=words, **options
    )
    want = [
        round_exact_flags(
            v, fmt, "stochastic", random_fraction_bits=r, random_word=w, **options
        )[0]
        for v, w in zip(x.tolist(), words.tolist(), strict=True)
    ]
    assert_same_bits(got, np.array(want, dtype=dtype), x, f"{name} {dtype} r={r}")
    # in place too: a block in doubt is rounded again from the inputs
    y = x.copy()
    lowprec.round(
        y, fmt, rounding="stochastic", random_bits=r, rng=words, out=y, **options
    )
    assert_same_bits(y, got, x, f"{name} {dtype} r={r}, out=x")


@pytest.mark.parametrize(("name", "dtype", "options"), _LAYOUT_CASES)
def test_seeded_loops_round_as_their_words_in_every_layout(name, dtype, options):
    # The seeded loops hash the words' upper halves themselves, over several
    # parallel blocks; the words path above is the one held to the oracle.
    fmt = _layout_format(name)
    g = grid_of(fmt, options.get("subnormals"))
    gen = np.random.default_rng(5)
    n = 3 * (1 << 14) + 7
    e = gen.uniform(g.emin - g.precision - 40, min(g.emax + 1, 127), n)
    x = (gen.choice([-1.0, 1.0], n) * np.exp2(e)).astype(dtype)
    seeded = lowprec.round(x, fmt, rounding="stochastic", rng=77, **options)
    words = _splitmix64_words(77, n)  # the documented stream
    given = lowprec.round(x, fmt, rounding="stochastic", rng=words, **options)
    assert_same_bits(seeded, given, x, f"{name} {dtype}")


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    ("rounding", "random_bits"),
    [("stochastic", None), ("stochastic", 3), ("stochastic_equal", None)],
)
def test_mean_of_many_roundings_within_five_standard_errors(rounding, random_bits):
    """200,000 independent roundings of one value: the sample mean is within five
    standard errors of its expectation (a false alarm has probability ~6e-7, and
    the seed is fixed)."""
    n = 200_000
    fmt = lowprec.bf16
    x = 1.0 + 0.3 * 2.0**-7  # 30% of the way from 1 to the next bf16 value
    lower, upper, frac = neighbours(x, fmt)
    gap = upper - lower
    if rounding == "stochastic_equal":
        p_up = Fraction(1, 2)
    elif random_bits is None:
        p_up = frac  # exact to 2**-64
    else:
        p_up = Fraction(math.floor(frac * (1 << random_bits)), 1 << random_bits)
    res = lowprec.round(
        np.full(n, x), fmt, rounding=rounding, random_bits=random_bits, rng=20240611
    )
    assert set(np.unique(res).tolist()) == {float(lower), float(lower + gap)}
    expected = float(lower + p_up * gap)
    se = float(gap) * math.sqrt(float(p_up * (1 - p_up)) / n)
    assert abs(res.mean() - expected) <= 5 * se, (res.mean(), expected, se)


# ------------------------------------------------------------ sources of bits


def _mix64(z: int) -> int:
    """SplitMix64's output function (Steele, Lea and Flood 2014)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _lowbias32(x: int) -> int:
    """Chris Wellons' lowbias32 integer hash."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _splitmix64_words(seed: int, n: int) -> np.ndarray:
    """The documented stream (lowprec/randomness.py), in Python integers: per
    2**32-element segment two SplitMix64 keys, and each 32-bit half of word i is
    lowbias32(key_hi + c * (key_lo | 1)) with c the index inside the segment."""
    out = []
    for i in range(n):
        seg, c = i >> 32, i & 0xFFFFFFFF
        halves = []
        for j in (1, 2):
            z = _mix64((seed + (2 * seg + j) * 0x9E3779B97F4A7C15) & MASK64)
            halves.append(_lowbias32(((z >> 32) + c * ((z & 0xFFFFFFFF) | 1))
                                     & 0xFFFFFFFF))
        out.append(halves[0] << 32 | halves[1])
    return np.array(out, dtype=np.uint64)


def _inexact_values(n: int) -> np.ndarray:
    return 1.0 + (np.arange(n) % 127 + 0.5) * 2.0**-14  # never a bf16 value


@pytest.mark.parametrize("rounding", ["stochastic", "stochastic_equal"])
def test_int_seed_is_reproducible_and_uses_the_documented_stream(rounding):
    x = _inexact_values(1000).reshape(10, 100)
    a = lowprec.round(x, "bf16", rounding=rounding, rng=12345)
    b = lowprec.round(x, "bf16", rounding=rounding, rng=np.uint64(12345))
    assert_same_bits(a, b, x, "same seed")
    assert not np.array_equal(a, lowprec.round(x, "bf16", rounding=rounding, rng=1))
    words = _splitmix64_words(12345, x.size).reshape(x.shape)  # C order
    c = lowprec.round(x, "bf16", rounding=rounding, rng=words)
    assert_same_bits(a, c, x, "seed vs its documented words")
    # the index is the element's C-order index, whatever the memory layout
    f = lowprec.round(np.asfortranarray(x), "bf16", rounding=rounding, rng=12345)
    assert_same_bits(f, a, x, "Fortran-ordered input")


def test_word_array_pairs_with_elements_in_any_layout():
    x = _inexact_values(60).reshape(6, 10)
    words = np.random.default_rng(3).integers(0, 2**64, size=x.shape, dtype=np.uint64)
    want = lowprec.round(x, "fp8_e4m3", rounding="stochastic", rng=words)
    for xv, wv in [
        (np.asfortranarray(x), np.asfortranarray(words)),
        (x.T.copy().T, words),
        (np.asfortranarray(x), words),
    ]:
        got = lowprec.round(xv, "fp8_e4m3", rounding="stochastic", rng=wv)
        assert_same_bits(got, want, x, "layout")
    got = lowprec.round(x[:, ::2], "fp8_e4m3", rounding="stochastic", rng=words[:, ::2])
    assert_same_bits(got, want[:, ::2], x[:, ::2], "strided")


def test_generator_advances_and_is_reproducible():
    x = _inexact_values(1000)
    gen = np.random.default_rng(99)
    state = gen.bit_generator.state
    a = lowprec.round(x, "bf16", rounding="stochastic", rng=gen)
    assert gen.bit_generator.state != state  # drawn from
    b = lowprec.round(x, "bf16", rounding="stochastic", rng=gen)
    assert not np.array_equal(a, b)
    again = lowprec.round(
        x, "bf16", rounding="stochastic", rng=np.random.default_rng(99)
    )
    assert_same_bits(again, a, x, "a fresh Generator with the same seed")


def test_no_rng_draws_fresh_entropy():
    x = _inexact_values(1000)
    a = lowprec.round(x, "bf16", rounding="stochastic")
    b = lowprec.round(x, "bf16", rounding="stochastic")
    assert not np.array_equal(a, b)  # equal with probability about 2**-1000


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread")
@pytest.mark.parametrize("rounding", ["stochastic", "stochastic_equal", "to_odd"])
def test_same_result_and_counts_with_one_or_two_threads(rounding, restore_num_threads):
    n = 300_001  # several parallel blocks, and a ragged end
    gen = np.random.default_rng(4)
    x = gen.standard_normal(n) * np.exp2(gen.integers(-30, 20, n))
    x[::1000] = np.nan
    kw = {"rng": 2024} if rounding != "to_odd" else {}
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        stats = lowprec.RoundingStats()
        for dtype in (np.float64, np.float32):
            out = lowprec.round(
                x.astype(dtype), "fp8_e5m2", rounding=rounding, stats=stats, **kw
            )
            results.append(out.astype(np.float64))
        results.append(stats.as_dict())
    assert numba.get_num_threads() == 2
    one, two = results[:3], results[3:]
    assert_same_bits(one[0], two[0], x, "float64, 1 vs 2 threads")
    assert_same_bits(one[1], two[1], x, "float32, 1 vs 2 threads")
    assert one[2] == two[2]
