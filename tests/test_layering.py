"""The layers of ARCHITECTURE.md, enforced: no module imports from a layer above it.

Every import statement of every module under ``lowprec/`` is read with ``ast``
(lazy imports inside functions included) and each imported module is given the
rank of its layer. A module may import from its own layer and the ones below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lowprec

PACKAGE = Path(lowprec.__file__).parent

# (prefix, rank), bottom to top; a module's layer is its longest matching prefix
LAYERS = (
    ("lowprec._jit", 0),
    ("lowprec._atomic", 0),  # atomic file writes; imports nothing of lowprec
    ("lowprec.formats", 0),
    ("lowprec._ml_dtypes", 0),  # imports nothing of lowprec; formats uses it
    ("lowprec.modes", 0),
    ("lowprec.data", 0),  # imports nothing of lowprec
    ("lowprec.rounding", 1),
    ("lowprec.arith", 2),
    ("lowprec.blocks", 3),
    ("lowprec.emulation", 3),  # NumPy code on emulated arrays: rounding and arith
    ("lowprec.algorithms", 3),  # LU, refinement, sums written on emulated arrays
    ("lowprec.amp", 4),
    ("lowprec.autograd", 5),
    ("lowprec.nn", 6),
    ("lowprec.optim", 6),
    ("lowprec.training", 7),
    ("lowprec.testing", 8),
    ("lowprec.sweep", 8),  # above training, below cli; testing stays a leaf
    ("lowprec.cli", 9),
    ("lowprec", 10),  # the top-level package and its _compat stand-ins
)


def rank(module: str) -> int:
    """The rank of ``module``'s layer."""
    best = max(
        (p for p, _ in LAYERS if module == p or module.startswith(p + ".")),
        key=len,
    )
    return dict(LAYERS)[best]


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for each lowprec module an AST imports."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lowprec":
                found += [(node.lineno, f"lowprec.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, m) for line, m in found if m.split(".")[0] == "lowprec"]


def upward_imports(module: str, source: str) -> list[str]:
    """The imports of ``module`` (given its source) from a higher layer."""
    own = rank(module)
    return [
        f"{module}:{line} imports {target} (layer {rank(target)} > {own})"
        for line, target in imported(ast.parse(source))
        if rank(target) > own
    ]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_from_a_higher_layer():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30
    bad = [v for p in modules for v in upward_imports(module_name(p), p.read_text())]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "module, planted",
    [
        ("lowprec.rounding.rounder", "from lowprec.autograd import Tensor"),
        ("lowprec.arith.matmul", "def f():\n    import lowprec.training.loop\n"),
        ("lowprec.formats", "from lowprec import rounding"),
        ("lowprec.amp.policy", "from lowprec.nn import MLP"),
        ("lowprec.autograd.tensor", "import lowprec"),
        ("lowprec.training.loop", "from lowprec.cli.app import main"),
    ],
)
def test_a_planted_upward_import_is_caught(module, planted):
    assert upward_imports(module, planted)


def test_downward_and_sideways_imports_pass():
    src = (
        "from lowprec.rounding.rounder import round\nfrom lowprec import _jit, modes\n"
    )
    assert not upward_imports("lowprec.arith.matmul", src)
    assert not upward_imports(
        "lowprec.arith.elementwise", "from lowprec.arith import _eft"
    )
