"""``riskmodel bench``: discovery, subprocess runs, statuses, the combined JSON and the tables.

Fake benchmark scripts (a few lines each) cover every status quickly; one real script runs
in ``--quick`` mode through ``only=`` so the suite's wiring to the repository is tested too.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

import riskmodel
from riskmodel.cli import bench
from riskmodel.cli import EXIT_USER_ERROR, main
from riskmodel.errors import InvalidParameterError

REPO_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

OK_SCRIPT = """
import argparse, json, sys
from pathlib import Path
ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
ap.add_argument("--output", type=Path, required=True)
args = ap.parse_args()
rows = [{"task": "solve", "n": 1000, "fast_s": 0.5, "slow_s": 2.0, "note": "a|b"},
        {"task": "build", "n": 2000, "fast_s": 1.25e-05, "slow_s": None, "note": "x"}]
args.output.write_text(json.dumps({"benchmark": "ok", "config": {"quick": args.quick, "size": 12345}, "rows": rows}))
print("table printed by the script")
"""

PEER_SCRIPT = """
import argparse
import surely_not_an_installed_peer_package_xyz
"""

BROKEN_SCRIPT = """
import argparse
raise RuntimeError("boom at size 7")
"""

SLOW_SCRIPT = """
import argparse, time
time.sleep(60)
"""

LEGACY_SCRIPT = """
import json
from pathlib import Path
out = Path(__file__).resolve().parent / "results"
out.mkdir(exist_ok=True)
(out / "legacy.json").write_text(json.dumps({"results": [{"name": "x", "seconds": 2.5}]}))
"""


def _write(folder: Path, scripts: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (folder / f"bench_{name}.py").write_text(textwrap.dedent(text))
    return folder


def test_statuses_combined_json_and_markdown(tmp_path):
    folder = _write(tmp_path / "b", {"ok": OK_SCRIPT, "peer": PEER_SCRIPT, "broken": BROKEN_SCRIPT})
    out = tmp_path / "out"
    doc = bench.run_benchmarks(quick=True, output=out, directory=folder, echo=False)

    by_name = {run["name"]: run for run in doc["benchmarks"]}
    assert list(by_name) == ["broken", "ok", "peer"]  # sorted discovery
    assert by_name["ok"]["status"] == "ok" and by_name["ok"]["message"] == ""
    assert by_name["ok"]["result"]["config"]["quick"] is True  # --quick was passed
    assert "--quick" in by_name["ok"]["command"] and "--output" in by_name["ok"]["command"]
    assert by_name["peer"]["status"] == "skipped"
    assert "surely_not_an_installed_peer_package_xyz" in by_name["peer"]["message"]
    assert by_name["broken"]["status"] == "failed"
    assert "RuntimeError: boom at size 7" in by_name["broken"]["message"]
    assert all(run["seconds"] > 0 for run in doc["benchmarks"])

    # what is on disk is what was returned
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(doc))
    assert (out / "ok.json").exists() and "table printed by the script" in (out / "ok.log").read_text()
    env = doc["environment"]
    for key in ("python", "numpy", "numba", "scipy", "xarray", "platform", "cpu_count"):
        assert env[key], key
    assert env["numpy"] == __import__("numpy").__version__

    md = (out / "results.md").read_text()
    assert "| ok | ok |" in md and "| peer | skipped |" in md and "| broken | failed |" in md
    assert "| task | n | fast_s | slow_s | note |" in md
    assert "| solve | 1,000 | 0.5 | 2 | a\\|b |" in md  # pipes escaped, ints grouped
    assert "| build | 2,000 | 1.25e-05 | – | x |" in md  # None shown as a dash
    assert "size = 12,345" in md


def test_quick_false_passes_no_quick_flag(tmp_path):
    folder = _write(tmp_path / "b", {"ok": OK_SCRIPT})
    doc = bench.run_benchmarks(quick=False, output=tmp_path / "out", directory=folder, echo=False)
    run = doc["benchmarks"][0]
    assert "--quick" not in run["command"] and run["result"]["config"]["quick"] is False


def test_timeout_kills_the_script_and_budget_skips_the_rest(tmp_path):
    folder = _write(tmp_path / "b", {"a_slow": SLOW_SCRIPT, "b_ok": OK_SCRIPT})
    start = time.perf_counter()
    doc = bench.run_benchmarks(quick=True, output=tmp_path / "out", directory=folder, budget=2.5, echo=False)
    elapsed = time.perf_counter() - start
    slow, ok = doc["benchmarks"]
    assert slow["status"] == "timeout" and "killed after 2 s" in slow["message"]
    assert ok["status"] == "skipped" and "budget" in ok["message"]
    assert elapsed < 20


def test_only_filters_and_names_unknown_benchmarks(tmp_path):
    folder = _write(tmp_path / "b", {"ok": OK_SCRIPT, "broken": BROKEN_SCRIPT})
    assert list(bench.find_benchmarks(folder, only="bench_ok.py")) == ["ok"]
    assert list(bench.find_benchmarks(folder, only=["ok", "broken"])) == ["broken", "ok"]
    with pytest.raises(InvalidParameterError, match=r"only=\['nope'\].*available: broken, ok"):
        bench.find_benchmarks(folder, only=["nope"])
    with pytest.raises(InvalidParameterError, match="timeout=0"):
        bench.run_benchmarks(directory=folder, output=tmp_path / "o", timeout=0)


def test_script_without_output_option_is_read_from_its_results_folder(tmp_path):
    folder = _write(tmp_path / "b", {"legacy": LEGACY_SCRIPT})
    doc = bench.run_benchmarks(quick=True, output=tmp_path / "out", directory=folder, echo=False)
    run = doc["benchmarks"][0]
    assert run["status"] == "ok" and "no --output option" in run["message"]
    assert run["result"]["results"][0]["seconds"] == 2.5


def test_missing_benchmarks_folder_is_one_clear_error(tmp_path, monkeypatch, capsys):
    fake_pkg = tmp_path / "site-packages" / "riskmodel"
    fake_pkg.mkdir(parents=True)
    monkeypatch.setattr(riskmodel, "__file__", str(fake_pkg / "__init__.py"))
    with pytest.raises(FileNotFoundError, match="ship with the source repository"):
        bench.benchmarks_dir()
    assert main(["bench", "--quick", "-o", str(tmp_path / "out")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("riskmodel bench: error: no benchmarks folder")


def test_an_installed_package_runs_scripts_from_scripts_dir(tmp_path, monkeypatch, capsys):
    """From a wheel (no benchmarks/ beside the package) ``--scripts DIR`` names the folder."""
    fake_pkg = tmp_path / "site-packages" / "riskmodel"
    fake_pkg.mkdir(parents=True)
    monkeypatch.setattr(riskmodel, "__file__", str(fake_pkg / "__init__.py"))
    folder = _write(tmp_path / "scripts", {"ok": OK_SCRIPT})
    out = tmp_path / "out"
    assert main(["bench", "--quick", "--scripts", str(folder), "-o", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert [(b["name"], b["status"]) for b in doc["benchmarks"]] == [("ok", "ok")]
    assert "| ok | ok |" in capsys.readouterr().out


def test_real_quick_benchmark_through_the_cli(tmp_path, capsys):
    """The repository's fastest script, via ``only=``; the committed results stay untouched."""
    committed = REPO_BENCH / "results" / "factor_returns.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    doc = bench.run_benchmarks(quick=True, output=tmp_path, only="factor_returns")
    (run,) = doc["benchmarks"]
    assert run["status"] == "ok", run["message"] + (tmp_path / "factor_returns.log").read_text()[-2000:]
    assert run["result"]["config"]["n_stocks"] == 300 and run["result"]["config"]["quick"] is True
    assert run["script"] == str(REPO_BENCH / "bench_factor_returns.py")
    assert (committed.stat().st_mtime_ns if committed.exists() else None) == before
    printed = capsys.readouterr().out
    assert "| factor_returns | ok |" in printed and "riskmodel (return_clip=None)" in printed


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (True, "yes"), (1234567, "1,234,567"), (0.0, "0"), (0.5, "0.5"), (1234.5678, "1,235"),
     (14420.3, "14,420"), (3.4e-15, "3.40e-15"), (2.5e7, "2.50e+07"), ([1, 100], "[1, 100]"), (float("nan"), "nan")],
)
def test_number_format(value, text):
    assert bench._fmt(value) == text


def test_results_from_folder_skips_combined_document(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"rows": [{"x": 1.0}]}))
    (tmp_path / "results.json").write_text(json.dumps({"benchmarks": []}))
    assert bench.results_from_folder(tmp_path) == [("a", {"rows": [{"x": 1.0}]})]
    assert bench.result_tables("a", {"rows": [{"x": 1.0}]})[-1] == "| 1 |"


def test_python_used_is_this_interpreter(tmp_path):
    folder = _write(tmp_path / "b", {"ok": OK_SCRIPT})
    doc = bench.run_benchmarks(output=tmp_path / "out", directory=folder, echo=False)
    assert doc["benchmarks"][0]["command"][0] == sys.executable


def test_tables_without_rows_and_with_colliding_keys():
    doc = {"size": {"n": 5}, "a": {"speedup": 64.9}, "b": {"speedup": 8.03}, "peak": 2.0, "machine": {"cpus": 2}}
    lines = bench.result_tables("t", doc)
    assert "| a | speedup | 64.9 |" in lines and "| b | speedup | 8.03 |" in lines  # both kept
    assert "| size | n | 5 |" in lines and "| – | peak | 2 |" in lines
    assert not any("cpus" in line for line in lines)
    lines = bench.result_tables("t", {"config": {"n": 1}, "check": {"n": 2}, "rows": [{"x": 1.0}]})
    assert lines[2] == "n = 1, check.n = 2"
