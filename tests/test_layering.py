"""The package's layering rules, checked on its source (imports inside functions included).

The floors follow the data flow; a module may import only from its own floor or below:

====  =========================================================================
0     ground: ``errors``, ``_params``, ``_labels``, ``_results``, ``_atomic``,
      ``_blas``, ``_rows``
1     ``kernels/`` (numba only here; imports nothing of the package but kernels)
2     ``data/``
3     ``exposures``, ``regression``
4     ``covariance/``
5     ``models/``
6     ``audit/``, ``research/``, ``construction/``
7     ``report/`` (matplotlib only here)
8     ``cli/`` (imported by nothing)
====  =========================================================================

One upward edge is allowed: a result object's ``plot`` method on floors 5-6 may import
``report`` inside the function (the figure code lives in ``report/``, the object that
owns the figure below it); ``report`` then must not import that module back (no cycle).
Besides the floors: no import cycle between modules, no use of the ``riskmodel`` facade
(``import riskmodel as rm``) inside the package below ``cli``, and ``import riskmodel``
loads none of numpy, pandas, xarray, numba, scipy, matplotlib.

``if TYPE_CHECKING:`` imports are annotations only and are not edges.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "riskmodel"

GROUND = {"errors", "_params", "_labels", "_results", "_atomic", "_blas", "_rows"}
FLOORS: dict[str, int] = {
    **{name: 0 for name in GROUND},
    "kernels": 1,
    "data": 2,
    "exposures": 3,
    "regression": 3,
    "covariance": 4,
    "models": 5,
    "audit": 6,
    "research": 6,
    "construction": 6,
    "report": 7,
    "cli": 8,
}
FLOOR_NAMES = {0: "ground", 1: "kernels", 2: "data", 3: "exposures/regression", 4: "covariance",
               5: "models", 6: "audit/research/construction", 7: "report", 8: "cli"}
#: third-party packages that only one part of the package may import
ONLY_IN = {"numba": "kernels", "matplotlib": "report"}
HEAVY = ("numpy", "pandas", "xarray", "numba", "scipy", "matplotlib")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (riskmodel.* or a third-party top-level name)
    line: int
    in_function: bool


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, bool]]:
    """Every import statement with whether it sits inside a function; skips TYPE_CHECKING."""
    found: list[tuple[ast.stmt, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def import_edges(root: Path, package: str) -> tuple[list[Edge], set[str]]:
    """All import edges of the package below ``root`` and its set of module names."""
    files = sorted(root.rglob("*.py"))
    modules = {_module_name(f, root, package) for f in files}
    edges: list[Edge] = []
    for f in files:
        source = _module_name(f, root, package)
        is_package = f.name == "__init__.py"
        for node, in_function in _imports(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative import
                    anchor = source.split(".") if is_package else source.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                # `from pkg import mod` imports the module pkg.mod when it exists
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.split(".")[0] == package:
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                else:
                    target = target.split(".")[0]
                if target != source:
                    edges.append(Edge(source, target, node.lineno, in_function))
    return edges, modules


def floor_of(module: str, package: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the facade itself
    return FLOORS.get(parts[1])


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def find_cycles(edges: list[Edge], modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if e.target in modules:
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def _is_package_init(module: str, modules: set[str]) -> bool:
    return any(m.startswith(module + ".") for m in modules)


def violations(root: Path, package: str = "riskmodel") -> list[str]:
    """Every broken layering rule of the package at ``root``, one readable line each."""
    edges, modules = import_edges(root, package)
    found = [f"{m} is on no floor; add it to FLOORS and CONTRIBUTING"
             for m in sorted(modules) if m != package and floor_of(m, package) is None]
    for e in edges:
        where = f"{e.source}:{e.line}"
        src_part, src_floor = _part(e.source), floor_of(e.source, package)
        if e.target.split(".")[0] != package:
            owner = ONLY_IN.get(e.target)
            if owner is not None and src_part != owner:
                found.append(f"{where} imports {e.target}, which only riskmodel/{owner}/ may import")
            continue
        if src_part is None:
            continue  # the facade's lazy table is strings, not imports
        tgt_part, tgt_floor = _part(e.target), floor_of(e.target, package)
        if tgt_part == "cli" and src_part != "cli":
            found.append(f"{where} imports {e.target}: nothing in the package may import cli")
        elif tgt_part is None and src_part != "cli":
            found.append(f"{where} imports the riskmodel facade; import the defining module instead")
        elif src_part == "kernels" and tgt_part != "kernels":
            found.append(f"{where} imports {e.target}: a kernel imports nothing of the package but kernels")
        elif src_floor is None or tgt_floor is None:
            continue  # reported above
        elif tgt_floor > src_floor:
            plot_method = e.in_function and tgt_part == "report" and src_floor in (5, 6)
            if not plot_method:
                found.append(
                    f"{where} imports {e.target} from a higher floor "
                    f"({FLOOR_NAMES[src_floor]} -> {FLOOR_NAMES[tgt_floor]})"
                )
    for cycle in find_cycles(edges, modules):
        # a package __init__ re-exporting its own modules is not a cycle of logic
        if all(_is_package_init(m, modules) or not any(
            e.source == m and e.target in cycle and not _is_package_init(e.target, modules) for e in edges
        ) for m in cycle):
            continue
        found.append("import cycle: " + " -> ".join(cycle))
    return found


# ----------------------------------------------------------------------------------------
# the rules on the real package
# ----------------------------------------------------------------------------------------


def test_the_package_keeps_its_layering() -> None:
    assert violations(PACKAGE_DIR) == []


def test_import_riskmodel_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, riskmodel\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ----------------------------------------------------------------------------------------
# the checker catches planted violations
# ----------------------------------------------------------------------------------------


def _plant(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "riskmodel"
    for rel, text in {"__init__.py": "", "errors.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(pkg).parents:
            init = pkg / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
        path.write_text(textwrap.dedent(text))
    return pkg


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"kernels/wls.py": "from riskmodel.data import panel\n", "data/panel.py": ""},
         "a kernel imports nothing of the package but kernels"),
        ({"data/panel.py": "def f():\n    import numba\n"}, "only riskmodel/kernels/ may import"),
        ({"audit/bias.py": "import matplotlib.pyplot as plt\n"}, "only riskmodel/report/ may import"),
        ({"models/fundamental.py": "def f():\n    from riskmodel.cli import main\n", "cli/main.py": ""},
         "nothing in the package may import cli"),
        ({"data/io.py": "def f():\n    from riskmodel.models import fundamental\n", "models/fundamental.py": ""},
         "from a higher floor (data -> models)"),
        ({"models/a.py": "from riskmodel.models import b\n", "models/b.py": "def f():\n    from riskmodel.models import a\n"},
         "import cycle: riskmodel.models.a -> riskmodel.models.b"),
        ({"audit/residuals.py": "import riskmodel as rm\n"}, "imports the riskmodel facade"),
        ({"research/signal.py": "from riskmodel.audit.residuals import x\n", "audit/residuals.py": "",
          "report/html.py": "from riskmodel.research import signal\n",
          "research/alpha.py": "def plot():\n    from riskmodel.report import html\n"},
         None),  # allowed: same-floor import, report importing below, a plot method importing report
        ({"newstage.py": ""}, "riskmodel.newstage is on no floor"),
    ],
)
def test_the_checker_catches_a_planted_violation(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    found = violations(_plant(tmp_path, files))
    if expected is None:
        assert found == []
    else:
        assert any(expected in line for line in found), found


def test_type_checking_imports_are_not_edges(tmp_path: Path) -> None:
    pkg = _plant(tmp_path, {
        "report/figures.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from riskmodel.audit.residuals import R\n",
        "audit/residuals.py": "def plot():\n    from riskmodel.report import figures\n",
    })
    assert violations(pkg) == []


def test_library_use_without_a_writable_numba_cache_warns_once_and_uses_a_private_one() -> None:
    """The facade checks numba's cache before numba is first imported (``_atomic`` finds the
    problem; here it is planted, since root can write anywhere a test could point to)."""
    code = textwrap.dedent(
        """
        import os, sys, warnings
        import riskmodel._atomic as atomic
        atomic.numba_cache_problem = lambda: "numba cannot write its cache (tried /nowhere)"
        import riskmodel as rm
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            rm.simulate, rm.FactorRiskModel
        print(len(seen), seen[0].category.__name__, str(seen[0].message))
        print(os.environ["NUMBA_CACHE_DIR"], "numba" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first.startswith("1 RiskModelWarning numba cannot write its cache (tried /nowhere); compiling into a private cache")
    assert "riskmodel-numba-cache-" in second
