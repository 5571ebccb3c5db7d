"""Random bits for stochastic rounding: a counter-based hash of (seed, index).

Element ``i`` of a call seeded with ``seed`` gets a 64-bit word that depends only on
the seed and the element's index in C order, never on which thread computed it, so
results are the same for any number of Numba threads. The word is two 32-bit
halves, each a 32-bit SplitMix: a Weyl sequence through an integer hash,

.. code-block:: text

    s, c = i >> 32, i & 0xFFFFFFFF             # segment and counter
    z1 = splitmix64(seed + (2*s + 1) * GOLDEN)  # keys of the segment
    z2 = splitmix64(seed + (2*s + 2) * GOLDEN)
    high = lowbias32(hi32(z1) + c * (lo32(z1) | 1))     (mod 2**32)
    low  = lowbias32(hi32(z2) + c * (lo32(z2) | 1))
    word = high << 32 | low

``splitmix64`` is the output function of Steele, Lea and Flood's SplitMix64
(OOPSLA 2014), here only deriving two keys and two odd increments per 2**32
elements; ``lowbias32`` is Chris Wellons' low-bias 32-bit integer hash (2018, public
domain; "Prospecting for Hash Functions"). The halves are independent streams, each
a permutation of the 2**32 words of its segment.

Why not SplitMix64 per element: its two 64-bit multiplies are emulated with three
32-bit multiplies each on AVX2, and a float32 kernel would need all 64 bits of every
word. With 32-bit halves the kernels hash the high half only: the low half can
matter only when the high halves of the fraction and of the word sum to exactly
all ones (probability 2**-32 per element), and the kernel redoes such blocks with
both halves. :func:`random_words` is the same stream in NumPy, for the reference
and the tests.
"""

from __future__ import annotations

import numpy as np

from lowprec._jit import jit_inline

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S32 = np.uint64(32)
_LB1, _LB2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)
_S15, _S16 = np.uint32(15), np.uint32(16)
_ONE32 = np.uint32(1)


@jit_inline
def splitmix64_mix(z):
    """SplitMix64's output function of a uint64 state (a Numba scalar function)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit_inline
def lowbias32(x):
    """Wellons' lowbias32 hash of a uint32 (a Numba scalar function)."""
    # NumPy's ufuncs keep uint32 (Numba would widen operators to 64 bits)
    x = np.multiply(np.bitwise_xor(x, np.right_shift(x, _S16)), _LB1)
    x = np.multiply(np.bitwise_xor(x, np.right_shift(x, _S15)), _LB2)
    return np.bitwise_xor(x, np.right_shift(x, _S16))


@jit_inline
def segment_keys(seed, segment):
    """(key, step) of the high and of the low half, for elements of ``segment``."""
    z1 = splitmix64_mix(seed + (np.uint64(2) * segment + np.uint64(1)) * GOLDEN)
    z2 = splitmix64_mix(seed + (np.uint64(2) * segment + np.uint64(2)) * GOLDEN)
    return (
        np.uint32(z1 >> _S32),
        np.bitwise_or(np.uint32(z1 & np.uint64(0xFFFFFFFF)), _ONE32),
        np.uint32(z2 >> _S32),
        np.bitwise_or(np.uint32(z2 & np.uint64(0xFFFFFFFF)), _ONE32),
    )


@jit_inline
def segment_word(key_hi, step_hi, key_lo, step_lo, c):
    """The word of counter ``c`` (uint32) of a segment with these keys."""
    high = lowbias32(np.add(key_hi, np.multiply(c, step_hi)))
    low = lowbias32(np.add(key_lo, np.multiply(c, step_lo)))
    return (np.uint64(high) << _S32) | np.uint64(low)


@jit_inline
def random_word(seed, i):
    """The 64-bit random word of element ``i`` (a Numba scalar function).

    It derives the segment's keys on every call; a loop over many elements can
    call :func:`segment_keys` once per segment and :func:`segment_word` per element.
    """
    i = np.uint64(i)
    key_hi, step_hi, key_lo, step_lo = segment_keys(seed, i >> _S32)
    c = np.uint32(i & np.uint64(0xFFFFFFFF))
    return segment_word(key_hi, step_hi, key_lo, step_lo, c)


def _splitmix64_np(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _lowbias32_np(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> _S16)) * _LB1
    x = (x ^ (x >> _S15)) * _LB2
    return x ^ (x >> _S16)


def random_words(seed: int, n: int) -> np.ndarray:
    """The random words of elements ``0..n-1`` in NumPy (the reference's stream)."""
    i = np.arange(n, dtype=np.uint64)
    segment = i >> _S32
    seed = np.uint64(seed)
    with np.errstate(over="ignore"):
        z1 = _splitmix64_np(seed + (np.uint64(2) * segment + np.uint64(1)) * GOLDEN)
        z2 = _splitmix64_np(seed + (np.uint64(2) * segment + np.uint64(2)) * GOLDEN)
    c = (i & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    halves = []
    for z in (z1, z2):
        key = (z >> _S32).astype(np.uint32)
        step = (z & np.uint64(0xFFFFFFFF)).astype(np.uint32) | _ONE32
        halves.append(_lowbias32_np(key + c * step).astype(np.uint64))
    return (halves[0] << _S32) | halves[1]


def seed_from(rng: int | np.random.Generator | None) -> int:
    """A 64-bit seed from an int or a Generator (drawing advances the Generator)."""
    if rng is None:
        return int(np.random.default_rng().integers(0, 2**64, dtype=np.uint64))
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**64, dtype=np.uint64))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise TypeError(
            "rng must be an int seed, a numpy.random.Generator or a uint64 array of "
            f"random words, got {type(rng).__name__}"
        )
    if not 0 <= int(rng) < 2**64:
        raise ValueError(f"rng: an int seed must be in [0, 2**64), got {rng}")
    return int(rng)
