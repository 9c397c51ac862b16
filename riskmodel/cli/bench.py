"""The benchmark suite behind ``riskmodel bench``.

The benchmark scripts live in the source repository's ``benchmarks/`` folder (they are not
part of the wheel: they import peer packages the library does not depend on); an installed
package runs them with ``riskmodel bench --scripts DIR``. Each ``benchmarks/bench_<name>.py`` script accepts ``--quick`` (toy
sizes) and ``--output PATH`` (or ``--out PATH``) and writes one JSON document there.
:func:`run_benchmarks` runs every script (or those named in ``only``) in its own
subprocess with a timeout, collects the JSON documents, and writes into the output
folder

* ``<name>.json`` and ``<name>.log`` for each script (its result and its printed output),
* ``results.json``: the combined document (versions, platform, CPU count, load average,
  date, and every script's status, wall time and result),
* ``results.md``: the same as Markdown tables (also printed).

A script that fails because an optional peer package is missing is reported as
*skipped*, not as a failure; a script that exceeds its timeout is killed (with its
children) and reported as *timeout*.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

import riskmodel
from riskmodel.errors import InvalidParameterError

#: seconds allowed per script (quick, full)
QUICK_TIMEOUT = 90.0
FULL_TIMEOUT = 3600.0
#: total wall-time budget of ``--quick`` (the suite must finish in under two minutes)
QUICK_BUDGET = 110.0

_VERSIONED = ("numpy", "scipy", "pandas", "xarray", "numba")
_OUTPUT_OPTION = re.compile(r"""add_argument\(\s*["'](--output|--out)["']""")
_MISSING_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): (.*)")
_STATUS_ORDER = ("ok", "skipped", "timeout", "failed")


@dataclass
class BenchmarkRun:
    """One benchmark script's run.

    Attributes
    ----------
    name : str
        ``<name>`` of ``bench_<name>.py``.
    script : str
        Path of the script.
    command : list of str
        The command line it was run with.
    status : {"ok", "skipped", "timeout", "failed"}
        ``skipped`` = a peer package it needs is not installed.
    seconds : float
        Wall time of the subprocess (including imports and data generation).
    message : str
        Why it was skipped or failed (the last line of its error output); empty if ok.
    result : dict or None
        The JSON document the script wrote.
    """

    name: str
    script: str
    command: list[str]
    status: str
    seconds: float
    message: str
    result: dict | None


# ---------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------


def benchmarks_dir() -> Path:
    """The repository's ``benchmarks/`` folder, next to the ``riskmodel`` package.

    Returns
    -------
    Path
        ``Path(riskmodel.__file__).parents[1] / "benchmarks"``.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist (riskmodel installed from a wheel).
    """
    folder = Path(riskmodel.__file__).resolve().parents[1] / "benchmarks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no benchmarks folder at {folder}: the benchmark scripts ship with the source repository, "
            "not with the installed package; pass --scripts DIR (the repository's benchmarks/ folder) "
            "or run `riskmodel bench` from an editable install of the repository"
        )
    return folder


def find_benchmarks(directory: Path | str | None = None, only: str | Iterable[str] | None = None) -> dict[str, Path]:
    """The benchmark scripts ``bench_<name>.py`` of a folder, by name.

    Parameters
    ----------
    directory : Path or str, optional
        Folder to search (default: :func:`benchmarks_dir`).
    only : str or iterable of str, optional
        Keep these names (``"audit"`` or ``"bench_audit"`` or ``"bench_audit.py"``).

    Returns
    -------
    dict of str to Path
        Sorted by name.

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist.
    InvalidParameterError
        If a name in ``only`` matches no script (the message lists the names available).
    """
    folder = benchmarks_dir() if directory is None else Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"benchmarks directory {folder} does not exist")
    scripts = {p.stem.removeprefix("bench_"): p for p in sorted(folder.glob("bench_*.py"))}
    if only is None:
        return scripts
    wanted = [only] if isinstance(only, str) else list(only)
    names = [_bench_name(w) for w in wanted]
    unknown = [w for w, n in zip(wanted, names) if n not in scripts]
    if unknown:
        raise InvalidParameterError(
            f"only={unknown!r}: no such benchmark in {folder}; available: {', '.join(scripts) or 'none'}"
        )
    return {n: scripts[n] for n in sorted(set(names))}


def _bench_name(text: str) -> str:
    return Path(str(text)).name.removesuffix(".py").removeprefix("bench_")


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------


def run_benchmarks(
    *,
    quick: bool = False,
    output: Path | str = "benchmark-results",
    only: str | Sequence[str] | None = None,
    directory: Path | str | None = None,
    timeout: float | None = None,
    budget: float | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Run the benchmark scripts, each in a subprocess, and tabulate their JSON results.

    Parameters
    ----------
    quick : bool, default False
        Pass ``--quick`` (toy sizes; the whole suite takes well under two minutes).
    output : Path or str, default "benchmark-results"
        Folder for ``results.md``, ``results.json`` and each script's ``<name>.json`` and
        ``<name>.log``; created if needed. The repository's ``benchmarks/results/`` is never
        written to (unless a script ignores its output option).
    only : str or sequence of str, optional
        Run only these benchmarks (``"audit"``, ``"bench_audit.py"``, ...).
    directory : Path or str, optional
        Folder holding the ``bench_*.py`` scripts (default: the repository's
        ``benchmarks/``, see :func:`benchmarks_dir`).
    timeout : float, optional
        Seconds allowed per script (default 90 with ``quick``, 3,600 without). A script
        over time is killed with its children and reported as ``timeout``.
    budget : float, optional
        Total seconds for the suite (default 110 with ``quick``, none without); each
        script's timeout is cut to what is left, and scripts that would start with
        nothing left are reported as ``skipped``.
    echo : bool, default True
        Print progress and the final table.

    Returns
    -------
    dict
        The combined document also written to ``results.json``: ``date``, ``quick``,
        ``environment`` (versions of riskmodel, python, numpy, scipy, pandas, xarray,
        numba; platform; CPU count; load average before and after) and ``benchmarks``
        (one entry per script: name, script, command, status, seconds, message, result).

    Raises
    ------
    FileNotFoundError
        If there is no benchmarks folder (an installed wheel) or ``directory`` is missing.
    InvalidParameterError
        If ``only`` names an unknown benchmark, or ``timeout``/``budget`` is not positive.

    See Also
    --------
    find_benchmarks, render_markdown

    Examples
    --------
    >>> from riskmodel.cli.bench import run_benchmarks
    >>> doc = run_benchmarks(quick=True, only="portfolio_risk", output="/tmp/bench")  # doctest: +SKIP
    >>> doc["benchmarks"][0]["status"]  # doctest: +SKIP
    'ok'
    """
    for label, value in (("timeout", timeout), ("budget", budget)):
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise InvalidParameterError(f"{label}={value!r}: give a positive number of seconds")
    scripts = find_benchmarks(directory, only)
    timeout = float(timeout if timeout is not None else (QUICK_TIMEOUT if quick else FULL_TIMEOUT))
    budget = budget if budget is not None else (QUICK_BUDGET if quick else None)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)

    load_start = _load_average()
    started = time.perf_counter()
    runs: list[BenchmarkRun] = []
    if echo:
        mode = "quick" if quick else "full size"
        print(f"riskmodel bench ({mode}): {len(scripts)} benchmark(s) from {_folder_of(scripts, directory)}")
    for name, script in scripts.items():
        left = math.inf if budget is None else budget - (time.perf_counter() - started)
        if left <= 1.0:
            run = BenchmarkRun(name, str(script), [], "skipped", 0.0, f"time budget of {budget:.0f} s used up", None)
        else:
            if echo:
                print(f"  {name:<24s} ...", end="", flush=True)
            run = _run_one(name, script, quick=quick, timeout=min(timeout, left), out=out)
        runs.append(run)
        if echo:
            detail = f" ({run.message})" if run.message else ""
            lead = "" if run.command else f"  {name:<24s} ..."
            print(f"{lead} {run.status} in {run.seconds:.1f} s{detail}")

    doc = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": bool(quick),
        "environment": _environment(load_start),
        "total_seconds": time.perf_counter() - started,
        "benchmarks": [asdict(run) for run in runs],
    }
    text = render_markdown(doc)
    _write_atomic(out / "results.json", json.dumps(doc, indent=2, default=_json_default))
    _write_atomic(out / "results.md", text)
    if echo:
        print()
        print(text)
        print(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return doc


def _folder_of(scripts: dict[str, Path], directory: Path | str | None) -> str:
    if directory is not None:
        return str(directory)
    return str(next(iter(scripts.values())).parent) if scripts else str(benchmarks_dir())


def _output_option(script: Path) -> str | None:
    match = _OUTPUT_OPTION.search(script.read_text(encoding="utf-8"))
    return match.group(1) if match else None


def _run_one(name: str, script: Path, *, quick: bool, timeout: float, out: Path) -> BenchmarkRun:
    json_path = out / f"{name}.json"
    log_path = out / f"{name}.log"
    json_path.unlink(missing_ok=True)
    option = _output_option(script)
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    if option is not None:
        command += [option, str(json_path)]
    default_results = script.parent / "results"
    before = _snapshot(default_results) if option is None else {}

    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(script.resolve().parents[1] / ".numba_cache"))
    env.setdefault("MPLBACKEND", "Agg")
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=script.parent, env=env, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            seconds = time.perf_counter() - start
            return BenchmarkRun(name, str(script), command, "timeout", seconds, f"killed after {timeout:.0f} s", None)
    seconds = time.perf_counter() - start
    log_text = log_path.read_text(encoding="utf-8", errors="replace")

    if code != 0:
        missing = _MISSING_MODULE.findall(log_text)
        if missing:
            return BenchmarkRun(name, str(script), command, "skipped", seconds, f"peer unavailable: {missing[-1]}", None)
        last = next((line for line in reversed(log_text.splitlines()) if line.strip()), "no output")
        return BenchmarkRun(name, str(script), command, "failed", seconds, f"exit {code}: {last.strip()}", None)

    if option is None:
        changed = [p for p, m in _snapshot(default_results).items() if before.get(p) != m]
        if len(changed) != 1:
            msg = f"has no --output option and wrote {len(changed)} JSON files to {default_results}"
            return BenchmarkRun(name, str(script), command, "failed", seconds, msg, None)
        json_path.write_bytes(changed[0].read_bytes())
    try:
        result = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return BenchmarkRun(name, str(script), command, "failed", seconds, f"no readable JSON at {json_path}: {exc}", None)
    message = "" if option is not None else f"no --output option: read from {default_results}"
    return BenchmarkRun(name, str(script), command, "ok", seconds, message, result)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # pragma: no cover - already gone
        proc.kill()
    proc.wait()


def _snapshot(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.glob("*.json")} if folder.is_dir() else {}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _environment(load_start: list[float] | None) -> dict[str, Any]:
    env: dict[str, Any] = {"riskmodel": riskmodel.__version__, "python": platform.python_version()}
    env.update({pkg: _version(pkg) for pkg in _VERSIONED})
    env.update(
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_count=os.cpu_count(),
        load_average_start=load_start,
        load_average_end=_load_average(),
    )
    return env


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def render_markdown(doc: dict[str, Any]) -> str:
    """Markdown tables of a combined benchmark document.

    Parameters
    ----------
    doc : dict
        As returned by :func:`run_benchmarks` (or read from its ``results.json``).

    Returns
    -------
    str
        A header with the environment, a summary table (one row per script: status,
        wall time, note) and, per benchmark, its settings and a table of its result rows.
    """
    env = doc.get("environment", {})
    versions = ", ".join(f"{k} {env[k]}" for k in ("riskmodel", "python", *_VERSIONED) if k in env)
    lines = [
        f"# riskmodel benchmarks ({'quick' if doc.get('quick') else 'full size'})",
        "",
        f"{doc.get('date', '')} · {env.get('platform', '')} · {env.get('cpu_count', '?')} CPUs · "
        f"load average {_load_text(env)}",
        "",
        versions,
        "",
        "| benchmark | status | wall time (s) | note |",
        "|---|---|---:|---|",
    ]
    for run in doc.get("benchmarks", []):
        lines.append(
            f"| {run['name']} | {run['status']} | {run['seconds']:.1f} | {_cell(run.get('message') or '')} |"
        )
    for run in doc.get("benchmarks", []):
        if run.get("result"):
            lines += ["", *result_tables(run["name"], run["result"])]
    return "\n".join(lines) + "\n"


def result_tables(name: str, result: dict[str, Any]) -> list[str]:
    """Markdown lines for one script's JSON document: its settings and its rows as a table.

    Parameters
    ----------
    name : str
        Heading.
    result : dict
        The script's JSON. If it holds a list of dicts (``results`` or ``rows``), that list
        becomes the table (one column per scalar field) and the other scalar or dict entries a
        settings line. Otherwise every scalar, and every scalar inside a dict entry, becomes a
        row of a ``section | quantity | value`` table. ``machine`` is left out.

    Returns
    -------
    list of str
    """
    lines = [f"## {name}", ""]
    rows = next((v for v in result.values() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)), None)
    sections = {k: v for k, v in result.items() if k not in {"benchmark", "machine"} and v is not rows}
    if rows is None:
        lines += ["| section | quantity | value |", "|---|---|---:|"]
        for section, value in sections.items():
            items = value.items() if isinstance(value, dict) else [(section, value)]
            label = section if isinstance(value, dict) else "–"
            for key, item in items:
                if _is_scalar(item) or _is_short_list(item):
                    lines.append(f"| {_cell(label)} | {_cell(str(key))} | {_cell(_fmt(item))} |")
        return lines

    settings: dict[str, Any] = {}
    for section, value in sections.items():
        items = value.items() if isinstance(value, dict) else [(section, value)]
        for key, item in items:
            if _is_scalar(item) or _is_short_list(item):
                settings[f"{section}.{key}" if key in settings else key] = item
    if settings:
        lines += [", ".join(f"{k} = {_fmt(v)}" for k, v in settings.items()), ""]
    columns: list[str] = []
    for row in rows:
        columns += [k for k, v in row.items() if k not in columns and _is_scalar(v)]
    columns = [c for c in columns if any(row.get(c) is not None for row in rows)]
    if columns:
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "|".join("---:" if _numeric_column(rows, c) else "---" for c in columns) + "|")
        for row in rows:
            lines.append("| " + " | ".join(_cell(_fmt(row.get(c))) for c in columns) + " |")
    return lines


def _load_text(env: dict[str, Any]) -> str:
    start, end = env.get("load_average_start"), env.get("load_average_end")
    if not start:
        return "unknown"
    text = f"{start[0]:.1f} at start"
    return text + (f", {end[0]:.1f} at end" if end else "")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_short_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 8 and all(isinstance(v, (int, float, str)) for v in value)


def _numeric_column(rows: list[dict], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if 1000 <= abs(value) < 1e7:
            return f"{value:,.0f}"
        if value == 0 or 1e-3 <= abs(value) < 1000:
            return f"{value:.3g}"
        return f"{value:.2e}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def results_from_folder(folder: Path | str) -> list[tuple[str, dict[str, Any]]]:
    """The JSON documents of a results folder (``benchmarks/results``), by benchmark name.

    Parameters
    ----------
    folder : Path or str
        Folder of ``<name>.json`` files written by the benchmark scripts.

    Returns
    -------
    list of (str, dict)
        Sorted by name; ``results.json`` (a combined document) is left out.
    """
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        if path.name == "results.json":
            continue
        out.append((path.stem, json.loads(path.read_text(encoding="utf-8"))))
    return out
