"""SHA-1 of every array of a fitted model's dataset: the bit-identity check of a refactor.

Fits ``FactorRiskModel()`` (default settings) on the 5,000 x 2,520 benchmark panel of
``bench_full_fit.py`` (simulated once with seed 0 and kept at ``--panel``) and prints, then writes as JSON, the SHA-1 of the
bytes of every variable and coordinate of ``fit.to_dataset()``. Run it before and after a
change that must not move a number and compare the two files.

Usage::

    python benchmarks/fit_hashes.py --panel /tmp/bench_panel.nc -o /tmp/before.json
    python benchmarks/fit_hashes.py --quick -o /tmp/quick.json     # 400 x 260
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_full_fit import FULL, QUICK, _load_inputs, make_panel  # noqa: E402


def array_hashes(ds) -> dict[str, str]:
    """SHA-1 of each variable's and coordinate's values (C order, native dtype)."""
    out = {}
    for name in sorted(map(str, [*ds.coords, *ds.data_vars])):
        values = np.ascontiguousarray(np.asarray(ds[name].values))
        if values.dtype == object:
            values = np.asarray(values.astype(str))
        out[name] = hashlib.sha1(values.tobytes()).hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", type=Path, default=None,
                        help="panel file (default: /tmp/riskmodel_bench_panel.nc, or /tmp/rm_quick_panel.nc with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    import riskmodel as rm

    config = QUICK if args.quick else FULL
    default = Path("/tmp/rm_quick_panel.nc" if args.quick else "/tmp/riskmodel_bench_panel.nc")
    path = make_panel(config, args.panel or default)
    panel, _ = _load_inputs(path)
    fit = rm.FactorRiskModel(progress=False).fit(panel)
    hashes = array_hashes(fit.to_dataset())
    args.output.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    for name, h in hashes.items():
        print(f"{h}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
