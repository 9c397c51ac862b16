"""Issue #18: how far a calendar year's random-portfolio bias moves by sampling alone.

The construction study asks every calendar year's random-portfolio bias statistic (the
median over 100 random portfolios of the standard deviation of ``r_t / σ_{t-1}``) to lie
in [0.9, 1.1]. A year has about 252 outcomes of fat-tailed, strongly co-moving portfolios,
so the statistic has a sampling spread of its own, even for a forecaster that is right on
average. This script measures that spread on the real data, for the recommended setting
(``FactorRiskModel.for_construction()``, the study's six styles, fitted from 2007):

* per year: the bias, the number of outcome days, the kurtosis of the pooled ``z``, and a
  moving-block bootstrap of the year's days (blocks of 21 days, all portfolios kept
  together, 2,000 resamples, seed 0) giving the statistic's standard error and 95 % range;
* two standard errors a calibrated forecaster would have: the bootstrap one (an upper
  figure: it includes the model's own forecast errors) and the normal-theory one of a
  standard deviation, ``sqrt((κ - 1) / (4 n))``, with ``κ`` the kurtosis of the calm years
  (2013-2014), a lower figure;
* from each, the chance that a calibrated forecaster's year falls outside [0.9, 1.1], the
  chance that all seven years 2010-2016 fall inside, and that two or more fall outside (as
  this setting's 2011 and 2012 do; years taken as independent).

Run: ``python examples/yearly_bias_noise.py`` (about 2 minutes) ->
``examples/results/yearly_bias_noise.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data_common import load_panel, quiet_fit_warnings, write_json

OUT = Path(__file__).resolve().parent / "results"
FIT_START, END, EVAL_START = "2007-01-03", "2016-12-30", "2010-01-04"
STYLES = ["size", "momentum", "reversal", "volatility", "liquidity", "beta"]
BAND = (0.9, 1.1)
BLOCK, RESAMPLES, SEED = 21, 2000, 0
CALM_YEARS = (2013, 2014)


def yearly_statistic(z: np.ndarray) -> float:
    """Median over portfolios of each portfolio's standard deviation of ``z`` (days, portfolios)."""
    return float(np.median(np.nanstd(z, axis=0, ddof=1)))


def block_bootstrap(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The yearly statistic over moving-block resamples of the days (rows) of ``z``."""
    n = z.shape[0]
    starts_max = n - BLOCK + 1
    n_blocks = -(-n // BLOCK)
    out = np.empty(RESAMPLES)
    for i in range(RESAMPLES):
        starts = rng.integers(0, starts_max, n_blocks)
        rows = (starts[:, None] + np.arange(BLOCK)).ravel()[:n]
        out[i] = yearly_statistic(z[rows])
    return out


def kurtosis(x: np.ndarray) -> float:
    """Pearson kurtosis (3 for a normal) of the finite values of ``x``."""
    x = x[np.isfinite(x)]
    d = x - x.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2)


def outside_chance(se: float) -> float:
    """P(|N(1, se)| outside the band): a calibrated year's chance to miss [0.9, 1.1]."""
    from scipy.stats import norm

    return float(2 * norm.sf((BAND[1] - 1.0) / se))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import argparse

    import riskmodel as rm

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)
    tic = time.perf_counter()
    panel = load_panel(FIT_START, END, data=args.data)
    with quiet_fit_warnings():
        fit = rm.FactorRiskModel.for_construction(styles=STYLES, progress=False).fit(panel)
    bias = rm.bias_statistics(fit, ["random"], start=EVAL_START, n_random=100)
    z = bias.z.to_pandas()
    years = sorted(set(z.index.year))
    calm = np.concatenate([z[z.index.year == y].to_numpy().ravel() for y in CALM_YEARS])
    kappa_calm = kurtosis(calm)
    rng = np.random.default_rng(SEED)
    per_year: dict[str, Any] = {}
    for year in years:
        block = z[z.index.year == year].to_numpy()
        boot = block_bootstrap(block, rng)
        n = block.shape[0]
        se_boot = float(np.std(boot, ddof=1))
        se_normal = float(np.sqrt((kappa_calm - 1) / (4 * n)))
        per_year[str(year)] = {
            "bias": yearly_statistic(block), "days": n, "kurtosis": kurtosis(block.ravel()),
            "bootstrap_se": se_boot, "bootstrap_95": [float(q) for q in np.quantile(boot, [0.025, 0.975])],
            "calm_kurtosis_se": se_normal,
            "outside_chance_bootstrap": outside_chance(se_boot),
            "outside_chance_calm_kurtosis": outside_chance(se_normal),
        }
    inside_all = {
        key: float(np.prod([1 - v[f"outside_chance_{key}"] for v in per_year.values()]))
        for key in ("bootstrap", "calm_kurtosis")
    }
    two_or_more = {  # P(at least two of the years outside), years independent: 1 - P(none) - P(exactly one)
        key: float(1 - inside_all[key] - sum(
            v[f"outside_chance_{key}"] * np.prod([1 - w[f"outside_chance_{key}"] for y, w in per_year.items() if y != year])
            for year, v in per_year.items()))
        for key in ("bootstrap", "calm_kurtosis")
    }
    facts = {
        "written_by": "python examples/yearly_bias_noise.py",
        "setting": "FactorRiskModel.for_construction(styles=" + ",".join(STYLES) + "), fitted from " + FIT_START,
        "statistic": "median over 100 random portfolios (seed 0) of the std of r_t / sigma_{t-1}, per calendar year",
        "band": list(BAND), "block_days": BLOCK, "resamples": RESAMPLES, "seed": SEED,
        "calm_years": list(CALM_YEARS), "calm_kurtosis": kappa_calm,
        "years": per_year,
        "years_outside_band": [y for y, v in per_year.items() if not BAND[0] <= v["bias"] <= BAND[1]],
        "chance_all_years_inside_if_calibrated": inside_all,
        "chance_two_or_more_years_outside_if_calibrated": two_or_more,
        "seconds": time.perf_counter() - tic,
    }
    write_json(OUT, "yearly_bias_noise", facts)
    for y, v in per_year.items():
        print(f"{y}: bias {v['bias']:.3f} (n {v['days']}, kurtosis {v['kurtosis']:.1f}) boot se {v['bootstrap_se']:.3f} "
              f"95% {v['bootstrap_95'][0]:.3f}..{v['bootstrap_95'][1]:.3f}; calibrated miss chance "
              f"{v['outside_chance_bootstrap']:.2f} / {v['outside_chance_calm_kurtosis']:.2f}")
    print(f"calm kurtosis {kappa_calm:.2f}; chance all {len(years)} years inside if calibrated: "
          f"{inside_all['bootstrap']:.2f} (bootstrap se) / {inside_all['calm_kurtosis']:.2f} (calm-kurtosis se)")
    return facts


if __name__ == "__main__":
    main()
