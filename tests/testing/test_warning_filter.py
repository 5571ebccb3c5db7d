"""pyproject's filterwarnings turns a RuntimeWarning raised from lowprec's code
into an error, and leaves the tests' own warnings alone (issue 15 §3).

The warnings module attributes a NumPy warning to the module whose frame made the
call, read from the frame's ``__name__``; a function compiled with the globals of
a pretend ``lowprec._planted`` module stands for lowprec's code.
"""

from __future__ import annotations

import numpy as np
import pytest

OVERFLOW = "def overflow():\n    return np.float64(1e308) * np.float64(10.0)\n"


def planted(module_name: str):
    namespace = {"__name__": module_name, "np": np}
    exec(compile(OVERFLOW, f"<{module_name}>", "exec"), namespace)  # noqa: S102
    return namespace["overflow"]


def test_a_runtime_warning_from_lowprec_is_an_error():
    with pytest.raises(RuntimeWarning, match="overflow"):
        planted("lowprec._planted")()
    with pytest.raises(RuntimeWarning, match="overflow"):
        planted("lowprec.arith._planted")()


def test_a_runtime_warning_from_elsewhere_is_only_a_warning():
    with pytest.warns(RuntimeWarning, match="overflow"):
        assert planted("users_code")() == np.inf
