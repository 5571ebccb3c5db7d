"""The public API keeps its names through the move to subpackages, and each public
name means one thing."""

from __future__ import annotations

import importlib
import warnings

import pytest

import lowprec
from lowprec import _compat


@pytest.mark.parametrize("name", lowprec.__all__)
def test_every_name_in_all_imports_from_the_top_level(name):
    assert getattr(lowprec, name) is not None


@pytest.mark.parametrize("name", ["train", "compare", "matmul", "sum", "round"])
def test_a_top_level_function_name_is_the_function(name):
    assert callable(getattr(lowprec, name))
    assert not isinstance(getattr(lowprec, name), type(lowprec))


@pytest.mark.parametrize("old, new", sorted(_compat.MOVED.items()))
def test_an_old_module_path_imports_with_a_deprecation_warning(old, new):
    target = importlib.import_module(new)
    public = [n for n in vars(target) if not n.startswith("__")]
    name = next(n for n in public if not n.startswith("_"))
    with pytest.warns(DeprecationWarning, match=new):
        stand_in = importlib.import_module(old)
        assert getattr(stand_in, name) is getattr(target, name)


def test_from_old_path_import_works_and_names_the_new_path():
    with pytest.warns(DeprecationWarning, match="lowprec.training.loop"):
        from lowprec.train import TrainConfig  # noqa: F401
    with pytest.warns(DeprecationWarning, match="lowprec.arith.matmul"):
        from lowprec.matmul import PRESETS
    assert PRESETS is lowprec.PRESETS
    assert callable(lowprec.train) and callable(lowprec.matmul)


def test_importing_lowprec_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(lowprec)


@pytest.mark.parametrize(
    "module",
    [
        "lowprec.testing",
        "lowprec.nn",
        "lowprec.optim",
        "lowprec.autograd",
        "lowprec.datasets",
        "lowprec.telemetry",
        "lowprec.rounding",
        "lowprec.arith",
        "lowprec.amp",
        "lowprec.training",
        "lowprec.data",
        "lowprec.cli",
        "lowprec.blocks",
        "lowprec.memory",
    ],
)
def test_the_submodules_the_docs_use_import(module):
    importlib.import_module(module)
