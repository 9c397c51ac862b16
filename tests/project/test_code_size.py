"""Small modules, one concept each: no module of the package over 700 lines (all lines)
and no function over 150 lines of code (its docstring aside: a public function's numpydoc
block grows with its parameters, not with its logic). A larger one is a sign that it holds
several concepts; split it rather than raise the limits."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "riskmodel"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 150


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    return sorted(
        f"{p.relative_to(root.parent)}: {n} lines"
        for p in root.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > limit
    )


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    found = []
    for p in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                doc = node.body[0]
                if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                    n -= doc.end_lineno - doc.lineno + 1
                if n > limit:
                    found.append(f"{p.relative_to(root.parent)}:{node.lineno} {node.name}: {n} lines")
    return found


def test_no_module_is_over_the_limit() -> None:
    assert long_modules(PACKAGE) == []


def test_no_function_is_over_the_limit() -> None:
    assert long_functions(PACKAGE) == []


def test_the_checks_catch_a_long_module_and_function(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(160))
    (pkg / "big.py").write_text("def f():\n" + body + "\n" + "\n" * 600)
    doc = '    """' + "\n" * 200 + '    """\n'
    (pkg / "small.py").write_text("def g():\n" + doc + "    return 1\n")
    assert long_modules(pkg) == ["pkg/big.py: 761 lines"]
    assert long_functions(pkg) == ["pkg/big.py:1 f: 161 lines"]
