"""The README's property-testing examples run, pass, and fail where it says.

The code blocks of its "Property-testing your own code" section are executed as
written, every ``test_*`` function they define is called, and the failures the
prose quotes are checked on the inputs it quotes, against numpy.float32 bit
patterns worked out here.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def section_code() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Property-testing your own code", 1)[1].split("\n## ", 1)
    return re.findall(r"```python\n(.*?)```", section[0], flags=re.DOTALL)


def truncate_to_bf16(x):
    b = np.array(x, np.float32).view(np.uint32)
    return (b & 0xFFFF0000).view(np.float32)[()]


def run_readme() -> dict:
    blocks = section_code()
    assert len(blocks) >= 2, "the unary and the binary example"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        # a pseudo file name: hypothesis reads the source of a failing test
        # from its file, and README.md's line numbers are not the block's
        exec(compile(block, f"<README.md block {i}>", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_examples_pass_without_warnings():
    namespace = run_readme()
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert {"test_to_bf16", "test_bf16_add"} <= set(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for test in tests:
            test()


def test_the_quoted_failures_are_failures():
    import lowprec

    namespace = run_readme()
    # unary: truncation misses the round-up just above the tie at 1 + 2**-8
    x = np.float32(1.0039064)
    assert truncate_to_bf16(x) != lowprec.round(x, lowprec.bf16)
    # binary: x = 2**-125 * (1 + 2**-7), y = 2**-133 = ulp(x) / 2: a tie, and
    # x's significand is odd, so the even neighbour is above
    x, y = np.float32(2.3693558e-38), np.float32(9.1835e-41)
    assert x == np.float32(2.0**-125 * (1 + 2.0**-7)) and y == np.float32(2.0**-133)
    correct = namespace["bf16_add"](x, y)
    assert correct == np.float32(2.0**-125 * (1 + 2.0**-6))
    assert truncate_to_bf16(x + y) == x != correct
