"""The rounding kernels as compiled code: their cache stamps, and Numba's cache
reused by a second process (a kernel whose cache key differs in every process
would compile on every import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from cache_stamps import assert_stamped

from lowprec.modes import RNE, SR
from lowprec.rounding import _kernel as rk


def test_every_kernel_holds_the_stamp_of_the_modules_it_inlines():
    kernels = [
        rk._make_kernel(SR, True, 64, False, True, True, True, False, True, False),
        rk._make_kernel(RNE, False, 32, False, False, False, False, True, False, True),
    ]
    assert_stamped(rk, kernels, minimum=3)


_PROBE = """
import json, numpy as np, lowprec
from lowprec.rounding import _kernel as rk
x = np.linspace(-70000.0, 70000.0, 40_000)
lowprec.round(x.astype(np.float32), "bf16")
lowprec.round(x, "fp16", rounding="stochastic", rng=1)
lowprec.round(x, "fp32", rounding="stochastic", rng=1)
lowprec.round(x.astype(np.float32), "fp16", rounding="stochastic", rng=1,
              stats=lowprec.RoundingStats())
stats = [k.stats for k in rk._KERNELS.values()]
print(json.dumps([sum(sum(s.cache_hits.values()) for s in stats),
                  sum(sum(s.cache_misses.values()) for s in stats)]))
"""


def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _PROBE],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0] == [0, 4]  # hits, misses: four kernels compiled
    assert runs[1] == [4, 0]  # and all four loaded


def test_constants_of_the_stochastic_fast_path_are_words_of_the_layout():
    # fp16 from a float64, on the upper word: B = 2**-14, T = 2**-24, max 65504
    from lowprec import as_format
    from lowprec.rounding.rounder import make_plan

    plan = make_plan(as_format("fp16"), "stochastic", False, True)
    cs = rk.make_sr_consts(plan, "64hi", 0)
    words = dict(zip(rk.SrConsts._fields, cs.tolist(), strict=True))

    def upper(v: float) -> int:
        return int(np.array(v).view(np.int64) >> 32)

    assert words["left"] == 32 - (42 - 32)  # 42 bits dropped, 10 of the word
    assert words["normal"] == upper(2.0**-14)
    assert words["tiny"] == upper(2.0**-24)
    assert words["max"] == upper(65504.0)
    assert words["ovf"] == upper(np.inf)
    assert words["no_zero"] == -1  # fp16 has -0
    # below B: 2**-20 is 2**4 T, so 52 - 4 bits are dropped, 16 of the word
    e = 1023 - 20  # the exponent field of 2**-20
    assert e - words["lsub"] == 32 - 16
