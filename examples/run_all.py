"""Rerun every real-data example and the demo; rewrite ``docs/figures/*.json`` (one command).

Runs, in turn, through their ``main(argv)``:

* ``real_risk_model.py``       -> ``docs/figures/real_risk_model.json`` (+ figure)
* ``real_audit.py``            -> ``docs/figures/real_audit.json`` (+ figures)
* ``real_signal_research.py``  -> ``docs/figures/real_signal_research.json`` (+ figure)
* ``real_model_comparison.py`` -> ``docs/figures/model_comparison.json`` (+ figures)

and ``riskmodel demo`` at its default size (600 stocks × 1,000 days, seed 0) into a
temporary folder, keeping the figures docs/getting-started.md quotes in
``docs/figures/demo.json`` (the demo's own ``demo.json`` plus the numbers its report
prints: the factor count, the volatility split, the largest audit cluster).

Each JSON is written by the script that computes it; this runner adds
``docs/figures/run_all.json`` with the conditions of the run (date, seconds per script,
load average, versions) and, per script, how its numbers compare with the committed JSON
read before the run (``reproduced``: numbers compared, how many differ, the largest
differences; run facts such as seconds and load are left out). The construction study is separate (hours; see
docs/guide/construction.md). ``tests/project/test_real_regression.py`` compares a rerun on
a data slice with committed values, and its slow test compares a full rerun with these files.

Usage::

    python examples/run_all.py                 # docs/figures/run_all.json: the last run's time and load
    python examples/run_all.py --only real_audit,demo --data ../shared/data
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = HERE.parent / "docs" / "figures"
EXAMPLES = ("real_risk_model", "real_audit", "real_signal_research", "real_model_comparison")
DEMO = {"n_stocks": 600, "n_days": 1000, "seed": 0}


def demo_facts(printed: str, facts: dict) -> dict:
    """The demo's returned facts plus the figures its printed report states."""
    factors = re.search(r"(\d+) factors \((\d+) market, (\d+) industries, (\d+) styles\)", printed)
    split = re.search(r"volatility ([\d.]+)%/yr\s+\(factor ([\d.]+)%, specific ([\d.]+)%\)", printed)
    cluster = re.search(r"largest cluster: (\d+) names, (\d+) of the 60 true 'oil' names \((\d+) others\)", printed)
    r2 = re.search(r"mean R² ([\d.]+)", printed)
    out = {
        **facts,
        "n_factors": int(factors.group(1)), "n_industries": int(factors.group(3)), "n_styles": int(factors.group(4)),
        "book_volatility_pct": float(split.group(1)), "book_factor_vol_pct": float(split.group(2)),
        "book_specific_vol_pct": float(split.group(3)),
    }
    if cluster:
        out.update(largest_cluster=int(cluster.group(1)), largest_cluster_oil=int(cluster.group(2)),
                   largest_cluster_others=int(cluster.group(3)))
    if r2:
        out["mean_r2"] = float(r2.group(1))
    return out


WRITTEN = {"real_model_comparison": "model_comparison"}  # the JSON an example writes, when not its own name
NOT_RESULTS = ("seconds", "fit_seconds", "load_average", "figure", "figures")  # run facts, not results


def _numbers(value, prefix: str = "") -> dict[str, float]:
    """Flatten nested dicts/lists to ``{path: number}`` (strings, None and run facts skipped)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key not in NOT_RESULTS
                for k, v in _numbers(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}/{i}").items()}
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN: the JSON's null
        return {}
    return {prefix: float(f"{float(value):.6g}")}  # as the examples write them: 6 significant digits


def compare_with_committed(new: dict, committed: dict | None) -> dict:
    """How a rerun's numbers differ from the committed JSON's (every number but the run facts)."""
    if committed is None:
        return {"committed": False}
    got, want = _numbers(new), _numbers(committed)
    common = sorted(set(got) & set(want))
    diffs = {path: abs(got[path] - want[path]) for path in common if got[path] != want[path]}
    return {"committed": True, "numbers_compared": len(common), "numbers_differing": len(diffs),
            "max_abs_diff": max(diffs.values(), default=0.0),
            "largest_diffs": dict(sorted(diffs.items(), key=lambda kv: -kv[1])[:10]),
            "only_in_rerun": sorted(set(got) - set(want))[:20], "only_in_committed": sorted(set(want) - set(got))[:20]}


def run_demo_facts(out: Path) -> dict:
    """Run the demo at its default size; write ``out/demo.json``."""
    from riskmodel.cli.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            facts = run_demo(Path(tmp) / "riskmodel-demo", **DEMO)
    report = {"written_by": "python examples/run_all.py", "settings": DEMO, **demo_facts(printed.getvalue(), facts)}
    (out / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join((*EXAMPLES, "demo")))
    ap.add_argument("--data", default=None, help="folder of the real data (default $RISKMODEL_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=FIGURES)
    ap.add_argument("--quick", action="store_true", help="pass --quick to the examples (a smoke run)")
    args = ap.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name] or [*EXAMPLES, "demo"]
    unknown = set(chosen) - {*EXAMPLES, "demo"}
    if unknown:
        ap.error(f"unknown: {sorted(unknown)}")
    import numpy as np

    import riskmodel as rm

    sys.path.insert(0, str(HERE))
    import importlib

    args.out.mkdir(parents=True, exist_ok=True)
    # the committed figures, read before anything is rewritten, to say what the rerun reproduced
    committed = {}
    for name in chosen:
        path = FIGURES / f"{WRITTEN.get(name, name)}.json"
        committed[name] = json.loads(path.read_text()) if path.exists() else None
    seconds, reproduced = {}, {}
    load = {"before": list(os.getloadavg())}
    for name in chosen:
        started = time.perf_counter()
        if name == "demo":
            facts = run_demo_facts(args.out)
        else:
            extra = ["--quick"] if args.quick else []
            extra += ["--data", args.data] if args.data else []
            facts = importlib.import_module(name).main([*extra, "--out", str(args.out)])
        seconds[name] = time.perf_counter() - started
        reproduced[name] = compare_with_committed(json.loads(json.dumps(facts, default=float)), committed[name])
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    load["after"] = list(os.getloadavg())
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": seconds, "load_average": load,
              "cpu_count": os.cpu_count(), "quick": args.quick, "out": str(args.out),
              "python": platform.python_version(), "numpy": np.__version__, "riskmodel": rm.__version__,
              "reproduced": reproduced}
    (args.out / "run_all.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
