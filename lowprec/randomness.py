"""Random bits for stochastic rounding: a counter-based hash of (seed, index).

Element ``i`` of a call seeded with ``seed`` gets the 64-bit word
``splitmix64_mix(seed + (i + 1) * 0x9E3779B97F4A7C15)``, the output function of
Steele, Lea and Flood's SplitMix64 (OOPSLA 2014). The word depends only on the seed
and the element's index in C order, never on which thread computed it, so results
are the same for any number of Numba threads.
"""

from __future__ import annotations

import numpy as np

from lowprec._jit import jit_inline

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@jit_inline
def random_word(seed, i):
    """The 64-bit random word of element ``i`` (a Numba scalar function)."""
    z = seed + (np.uint64(i) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def random_words(seed: int, n: int) -> np.ndarray:
    """The random words of elements ``0..n-1`` in NumPy (the reference's stream)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


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
