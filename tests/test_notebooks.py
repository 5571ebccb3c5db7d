"""Every assert in the notebooks checks a claim: none compares an expression with
itself (``assert f(x) == f(x)`` passes whatever the code does)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    codes = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    # IPython magics (%matplotlib, !pip) are not Python: blank them out
    return [
        "\n".join(
            "" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()
        )
        for src in codes
    ]


def _unwrap(node: ast.AST) -> ast.AST:
    """``(expr).all()`` / ``.any()`` / ``all(expr)`` / ``bool(expr)`` -> expr."""
    while True:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("all", "any")
            and not node.args
        ):
            node = node.func.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("all", "any", "bool")
            and len(node.args) == 1
        ):
            node = node.args[0]
        else:
            return node


def tautologies(source: str) -> list[str]:
    """The asserts in ``source`` that compare an expression with itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        tests = [node.test]
        if isinstance(node.test, ast.BoolOp):
            tests = node.test.values
        for t in tests:
            t = _unwrap(t)
            if isinstance(t, ast.Compare):
                sides = [t.left, *t.comparators]
                dumps = [ast.dump(s) for s in sides]
                if len(set(dumps)) < len(dumps):
                    found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_assert_compares_an_expression_with_itself(path):
    bad = [t for src in code_cells(path) for t in tautologies(src)]
    assert not bad, f"{path.name}: " + "; ".join(bad)


def test_the_check_catches_a_tautology():
    assert tautologies('assert (f(x, "bf16") == f(x, "bf16")).all()')
    assert tautologies("assert a == 1 and g(y) <= g(y)")
    assert not tautologies("assert (f(x) == x).all() and np.isfinite(y).all()")


# -- figures that read at laptop size (issue 15 §4) --------------------------------

MIN_DPI = 110
MIN_LEGEND_FONT = 8


def figure_settings(source: str) -> tuple[list[float], list[float]]:
    """The ``"figure.dpi"`` values a source sets, and its legends' font sizes."""
    dpis, fonts = [], []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "figure.dpi":
                    dpis.append(ast.literal_eval(value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "legend"
        ):
            for kw in node.keywords:
                if kw.arg == "fontsize" and isinstance(kw.value, ast.Constant):
                    fonts.append(kw.value.value)
    return dpis, fonts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_figures_are_drawn_at_110_dpi_with_readable_legends(path):
    sources = code_cells(path)
    if not any("matplotlib" in src for src in sources):
        pytest.skip("no figures")
    dpis, fonts = [], []
    for src in sources:
        d, f = figure_settings(src)
        dpis += d
        fonts += f
    assert dpis and min(dpis) >= MIN_DPI, f"{path.name}: figure.dpi {dpis}"
    small = [f for f in fonts if isinstance(f, (int, float)) and f < MIN_LEGEND_FONT]
    assert not small, f"{path.name}: legend font sizes {small}"


def test_the_figure_check_reads_dpi_and_legend_sizes():
    src = 'plt.rcParams.update({"figure.dpi": 72})\nax.legend(fontsize=7, loc=1)'
    assert figure_settings(src) == ([72], [7])
