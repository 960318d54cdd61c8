"""What is left for a spatiotemporal model once the strongest reference has done its work.

Run: ``.venv/bin/python benchmarks/residual_structure.py [--json benchmarks/results/residual_structure.json]``.

On the built-in scenario's training period (2016-2020) with 20 % of the observed entries held
out (seed 0), the ST-Transformer's prior (``boosting`` cross-fitted by date over 10 groups) is
fitted on the rest, and its error against the truth on the held-out entries is taken apart:

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
from stimpute_core.models.features import COARSE, fill_in_time
from stimpute_core.models.st_transformer.prior import CrossFittedPrior


def acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean(axis=0)
    return float((x[lag:] * x[:-lag]).mean() / (x**2).mean())


def _smooth(field: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """Two-sided exponential filter in time (scale ``tau`` days), Gaussian in space."""
    a = np.exp(-1.0 / tau)
    fwd = np.empty_like(field)
    bwd = np.empty_like(field)
    fwd[0] = field[0]
    for t in range(1, len(field)):
        fwd[t] = field[t] + a * fwd[t - 1]
    bwd[-1] = field[-1]
    for t in range(len(field) - 2, -1, -1):
        bwd[t] = field[t] + a * bwd[t + 1]
    both = fwd + bwd - field
    return ndimage.gaussian_filter(both, (0, sigma, sigma))


def _coarse_correction(given, est, dep, truth, hidden) -> dict:
    """The day's area-wide anomaly read from the coarse product: ``a(t)``, the mean observed
    departure of a well-observed day, regressed on ``c(t)``, the coarse value less the area
    mean of the estimate (both known without the hidden entries), then ``alpha + beta * c``
    (gaps in ``c`` filled in time, optionally smoothed over a few days) added everywhere."""
    seen = np.isfinite(dep)
    n = seen.sum(axis=(1, 2))
    a = np.where(n > 0, np.where(seen, dep, 0.0).sum(axis=(1, 2)) / np.maximum(n, 1), np.nan)
    coarse = np.asarray(given[COARSE].values, dtype=np.float64)
    if coarse.ndim == 3:  # the coarse product on the fine grid: one value per day here
        coarse = np.nanmean(np.where(np.isfinite(coarse), coarse, np.nan), axis=(1, 2))
    c = coarse - est.mean(axis=(1, 2))
    fit = (n >= 50) & np.isfinite(c)
    beta, alpha = np.polyfit(c[fit], a[fit], 1)
    out = {"alpha": float(alpha), "beta": float(beta), "days_fitted": int(fit.sum())}
    filled = fill_in_time(c)
    for width in (1, 3, 5):
        smooth = ndimage.uniform_filter1d(filled, width) if width > 1 else filled
        out[f"window {width}"] = metrics.mae(
            est + (alpha + beta * smooth)[:, None, None], truth, hidden
        )
    return out


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
        # The prior as the network gets it: cross-fitted by date, so the departures on the
        # observed days are as honest as the estimate on the hidden ones.
        prior = CrossFittedPrior.fit(given, "boosting", np.zeros_like(hidden), folds=10, seed=0)
        est = prior.estimate(given)
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
            str(w): metrics.mae(est + w * fill_in_time(dep), truth, hidden)
            for w in (0.3, 0.5, 0.7, 1.0)
        }
        # Both at once: departures weighted by exp(-|days| / tau) in time and a Gaussian in
        # space, shrunk towards zero by a pseudo-count (a kernel residual smoother).
        kernel = {}
        for tau in (3.0, 6.0, 12.0):
            for sigma in (2, 6):
                num = _smooth(np.where(seen, dep, 0.0), tau, sigma)
                den = _smooth(seen.astype(float), tau, sigma)
                for shrink in (0.05, 0.2):
                    kernel[f"tau {tau:g}, sigma {sigma}, shrink {shrink}"] = metrics.mae(
                        est + num / (den + shrink), truth, hidden
                    )
        row["kernel_smoothed_departures_mae_truth"] = kernel
        row["coarse_anomaly_correction_mae_truth"] = _coarse_correction(
            given, est, dep, truth, hidden
        )
        out[kind] = row
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
