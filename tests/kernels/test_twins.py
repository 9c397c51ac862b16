"""Every kernel against its numpy twin, from the one registry (``tests/kernels/twins/``), and
the registry against the kernels the package imports."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import riskmodel
from tests.kernels.twins import NOT_KERNELS, SIZES, registry

REGISTRY = registry()
PACKAGE = Path(riskmodel.__file__).resolve().parent
KERNELS = PACKAGE / "kernels"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_kernel_matches_its_twin(name):
    entry = REGISTRY[name]
    inputs = entry.inputs("test", seed=1)
    before = {key: np.copy(value) for key, value in inputs.items() if isinstance(value, np.ndarray)}
    got = entry.run(inputs)
    ref = entry.twin(inputs)
    assert set(ref) <= set(got), f"the twin computes {sorted(set(ref) - set(got))} that the kernel's run does not"
    entry.check(got, ref)
    for key, value in before.items():  # inputs are reused across runs (the benchmark times several)
        np.testing.assert_array_equal(inputs[key], value, err_msg=f"{name} modified its input {key}")


def _kernel_imports(path: Path) -> set[tuple[str, str]]:
    """``(module, name)`` of every name a source file takes from ``riskmodel.kernels``:
    ``from riskmodel.kernels.m import f`` and ``from riskmodel.kernels import m`` (then
    ``m.f``), at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[tuple[str, str]] = set()
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("riskmodel.kernels"):
            module = node.module.removeprefix("riskmodel.kernels").lstrip(".")
            target = importlib.import_module(f"riskmodel.kernels{'.' + module if module else ''}")
            for alias in node.names:
                if isinstance(getattr(target, alias.name, None), ModuleType):
                    aliases[alias.asname or alias.name] = alias.name  # a kernel module
                else:
                    found.add((module, alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.add((aliases[node.value.id], node.attr))
    return found


def _package_kernels() -> dict[str, object]:
    """Every callable the package outside ``riskmodel/kernels`` takes from the kernels, by
    registry name (``"<module>.<function>"``, or the bare name for the package root)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if KERNELS in path.parents:
            continue
        for module, name in _kernel_imports(path):
            target = importlib.import_module(f"riskmodel.kernels{'.' + module if module else ''}")
            value = getattr(target, name)
            if callable(value) and not isinstance(value, type):
                out[f"{module}.{name}" if module else name] = value
    return out


def test_registry_covers_every_kernel_the_package_calls():
    used = _package_kernels()
    assert "wls.wls_factor_returns" in used and "specific.structural_kernel" in used  # the scan finds them
    missing = sorted(set(used) - set(REGISTRY) - set(NOT_KERNELS))
    assert not missing, f"kernels without a twin in tests/kernels/twins/: {missing}"
    for name, kernel in used.items():
        if name in REGISTRY:
            assert REGISTRY[name].kernel is kernel, f"{name}: the registry holds another object than the package's"
    assert set(NOT_KERNELS) <= set(used), "NOT_KERNELS names something the package no longer imports"


def test_every_entry_has_every_size():
    for name, entry in REGISTRY.items():
        assert set(entry.sizes) == set(SIZES), name


def test_kernels_import_nothing_of_the_package_outside_kernels():
    for path in sorted(KERNELS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom):
                names = ["riskmodel.kernels." + (node.module or "")]  # relative: inside kernels
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for module in names:
                if module == "riskmodel" or module.startswith("riskmodel."):
                    assert module.startswith("riskmodel.kernels"), f"{path.name} imports {module}"


def test_the_scan_sees_both_import_forms(tmp_path):
    source = tmp_path / "user.py"
    source.write_text(
        "from riskmodel.kernels.wls import day_sample, DATE_OK\n"
        "def f():\n"
        "    from riskmodel.kernels import specific as s, kernel_threads\n"
        "    return s.shrink_kernel, s.MIN_INDUSTRY_NAMES\n",
        encoding="utf-8",
    )
    assert _kernel_imports(source) == {
        ("wls", "day_sample"), ("wls", "DATE_OK"), ("", "kernel_threads"),
        ("specific", "shrink_kernel"), ("specific", "MIN_INDUSTRY_NAMES"),
    }


def test_the_kernel_benchmark_runs_from_the_registry(tmp_path, capsys):
    """``benchmarks/bench_kernels.py`` times registry pairs and writes its JSON (two cheap pairs)."""
    spec = importlib.util.spec_from_file_location("bench_kernels", PACKAGE.parent / "benchmarks" / "bench_kernels.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "kernels.json"
    result = bench.main(["--quick", "--repeat", "1", "--only", "specific.vra_terms_kernel", "timeseries.standardise_kernel",
                         "--output", str(out)])
    assert [row["name"] for row in result["rows"]] == ["specific.vra_terms_kernel", "timeseries.standardise_kernel"]
    assert all(row["agrees"] and row["kernel_seconds"] > 0 for row in result["rows"])
    assert json.loads(out.read_text())["size"] == "quick"
    assert "twin/kernel" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--only", "no.such_kernel", "--output", str(out)])
