"""What is left for a spatiotemporal model once the strongest reference has done its work.

Run: ``.venv/bin/python benchmarks/residual_structure.py [--json benchmarks/results/residual_structure.json]``.

On the built-in scenario's training period (2016-2020) with 20 % of the observed entries held
out (seed 0), the ``boosting`` reference is fitted on the rest, and its error against the truth
on the held-out entries is taken apart:

- how much of it is the day's area-wide anomaly (the same for every cell) and how much is left
  within the day, and how fast each decorrelates in time (the Sentinel-1 passes come every 6
  or 12 days, so only the autocorrelation at those lags can help);
- what the two classical ways of using the other observations gain over the reference: the
  day's observed departures from it, smoothed in space (for point gaps), and the departures of
  the nearest observed days, interpolated in time (for whole-day gaps);
- what a perfect knowledge of the day's anomaly would give (a bound, not a method).

These are the gains a spatiotemporal model can find on top of the reference; the observations'
retrieval noise (0.035 m³/m³) is what hides them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from stimpute_core import masks, metrics
from stimpute_core.benchmark import default_split
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.scenario import load_scenario
from stimpute_core.data.selection import select_time
from stimpute_core.features import fill_in_time
from stimpute_core.models import make_imputer


def acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean(axis=0)
    return float((x[lag:] * x[:-lag]).mean() / (x**2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ds = load_scenario()
    train = select_time(ds, *default_split(ds).train)
    truth = train[TRUTH].values
    out = {}
    for kind in ("time_slice", "point"):
        hidden = masks.holdout_mask(train, kind, fraction=0.2, seed=0)
        given = masks.apply_holdout(train, hidden).drop_vars(TRUTH)
        model = make_imputer("boosting", seed=0).fit(given)
        est = model.predict_cube(given)
        err = truth - est
        daily = err.mean(axis=(1, 2))
        within = err - daily[:, None, None]
        obs = given[TARGET].values
        dep = obs - est
        row = {
            "reference_mae_truth": metrics.mae(est, truth, hidden),
            "error_sd": float(err[hidden].std()),
            "daily_anomaly_sd": float(daily[hidden.any(axis=(1, 2))].std()),
            "within_day_sd": float(within[hidden].std()),
            "acf_daily_anomaly": {lag: acf(daily, lag) for lag in (1, 6, 12)},
            "acf_within_day": {lag: acf(within, lag) for lag in (1, 6, 12)},
            "perfect_daily_anomaly_mae_truth": metrics.mae(
                est + daily[:, None, None], truth, hidden
            ),
        }
        # Same-day departures smoothed in space (Gaussian, sigma in cells), half and full weight.
        seen = np.isfinite(dep)
        smoothing = {}
        for sigma in (2, 4, 8):
            num = ndimage.gaussian_filter(np.where(seen, dep, 0.0), (0, sigma, sigma))
            den = ndimage.gaussian_filter(seen.astype(float), (0, sigma, sigma))
            smooth = np.where(den > 1e-3, num / np.maximum(den, 1e-9), 0.0)
            for weight in (0.5, 1.0):
                smoothing[f"sigma {sigma}, weight {weight}"] = metrics.mae(
                    est + weight * smooth, truth, hidden
                )
        row["space_smoothed_departures_mae_truth"] = smoothing
        # The nearest observed days' departures, interpolated in time per cell.
        row["time_interpolated_departures_mae_truth"] = {
            str(w): metrics.mae(est + w * fill_in_time(dep), truth, hidden) for w in (0.3, 1.0)
        }
        out[kind] = row
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
