"""Shared test configuration: the hypothesis profiles and a few fixtures.

The "ci" profile is loaded by default (set ``HYPOTHESIS_PROFILE=dev`` for a quick
randomized run, or ``=thorough`` for a long one). ``deadline=None`` because the
first call of each rounding mode compiles a Numba kernel; ``derandomize=True`` so a
CI failure reproduces on every machine; ``print_blob=True`` so the failing example
can be replayed with ``@reproduce_failure``.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50, print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=5000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def restore_num_threads():
    """Give back the Numba thread count the test found, whatever it sets."""
    before = numba.get_num_threads()
    yield before
    numba.set_num_threads(before)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded Generator for test data (not for lowprec's random bits)."""
    return np.random.default_rng(20240611)
