"""CONTRIBUTING.md's module map lists exactly the modules that exist, each with its role."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_map(text: str) -> dict[str, str]:
    """``{path relative to the repository: role}`` from the ``riskmodel/`` tree block
    under the "Module map" heading: a line ``name/`` opens a folder (by indentation), a
    line ``name.py  role`` is a module."""
    section = text.split("## Module map", 1)[1]
    block = section.split("```", 2)[1]
    entries: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"^(\s*)(\S+)(?:\s+(.*))?$", line)
        if not match or match.group(2) in ("text", ""):
            continue
        indent, name, role = len(match.group(1)), match.group(2), (match.group(3) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if name.endswith("/"):
            stack.append((indent, name.rstrip("/")))
        elif name.endswith(".py"):
            entries["/".join([*(d for _, d in stack), name])] = role
    return entries


def test_module_map_lists_exactly_the_modules_that_exist() -> None:
    listed = module_map((ROOT / "CONTRIBUTING.md").read_text())
    existing = {str(p.relative_to(ROOT)) for p in (ROOT / "riskmodel").rglob("*.py")}
    assert sorted(set(listed) - existing) == [], "listed but missing"
    assert sorted(existing - set(listed)) == [], "modules missing from CONTRIBUTING's module map"


def test_every_listed_module_says_what_it_is_for() -> None:
    listed = module_map((ROOT / "CONTRIBUTING.md").read_text())
    assert [path for path, role in listed.items() if not role] == []


def test_the_parser_reads_nested_folders() -> None:
    text = "## Module map\n```text\nriskmodel/\n  a.py   one\n  sub/\n    b.py  two\n  c.py   three\n```\n"
    assert module_map(text) == {"riskmodel/a.py": "one", "riskmodel/sub/b.py": "two", "riskmodel/c.py": "three"}
