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
