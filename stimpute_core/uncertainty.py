"""Scores of probabilistic imputations given as quantiles: CRPS, interval coverage and width,
and the probability-integral-transform (PIT) histogram.

A probabilistic imputer returns, for each cell-day, the values at a set of quantile levels
(``soil_moisture_quantile(quantile, time, y, x)``, see :mod:`stimpute_core.models.base`). Every
score here is computed on the entries of ``mask`` (the held-out entries) against a reference
field (the held-out observations, or on synthetic data the truth), so that an interval that
holds less often than it says looks as bad as it is.

CRPS is approximated from the quantiles by the mean pinball (quantile) loss over the levels,
times two: exact for the quantile grid used, and the same for every method scored with the same
levels (:data:`SCORE_QUANTILES`, 5 % to 95 % in steps of 5 %; the tails beyond are left out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Quantile levels the benchmark asks every probabilistic method for (19 levels).
SCORE_QUANTILES: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
#: Central intervals whose coverage is reported (stated coverage).
INTERVALS: tuple[float, ...] = (0.5, 0.9)
#: Bins of the PIT histogram (their edges must be levels of the quantile grid).
PIT_BINS = 10


def _flat(pred_q: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """(levels, n) quantile values and (n,) targets at the finite entries of ``mask``."""
    pred_q = np.asarray(pred_q, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred_q.shape[1:] != target.shape or np.shape(mask) != target.shape:
        raise ValueError(
            f"quantile field {pred_q.shape[1:]}, target {target.shape} and mask "
            f"{np.shape(mask)} must have one (time, y, x) shape"
        )
    sel = np.asarray(mask, dtype=bool) & np.isfinite(target)
    return pred_q[:, sel], target[sel]


def _level(quantiles: Sequence[float], level: float) -> int:
    """Index of ``level`` in ``quantiles`` (a ValueError when the grid lacks it)."""
    for k, q in enumerate(quantiles):
        if abs(q - level) < 1e-9:
            return k
    raise ValueError(f"the quantile levels {list(quantiles)} lack {level:g}")


def crps(pred_q: np.ndarray, quantiles: Sequence[float], target: np.ndarray, mask) -> float:
    """Mean CRPS (m³/m³) over the masked entries, from the quantiles (module text)."""
    values, y = _flat(pred_q, target, mask)
    if y.size == 0:
        return float("nan")
    tau = np.asarray(quantiles, dtype=np.float64)[:, None]
    diff = y[None, :] - values
    pinball = np.maximum(tau * diff, (tau - 1.0) * diff)
    return float(2.0 * pinball.mean())


def interval(quantiles: Sequence[float], coverage: float) -> tuple[int, int]:
    """Indices of the lower and upper levels of the central interval of ``coverage``."""
    half = (1.0 - coverage) / 2.0
    return _level(quantiles, half), _level(quantiles, 1.0 - half)


def coverage(
    pred_q: np.ndarray, quantiles: Sequence[float], target: np.ndarray, mask, level: float
) -> float:
    """Share of the masked entries inside the central interval of stated coverage ``level``."""
    lo, hi = interval(quantiles, level)
    values, y = _flat(pred_q, target, mask)
    if y.size == 0:
        return float("nan")
    return float(np.mean((y >= values[lo]) & (y <= values[hi])))


def width(pred_q: np.ndarray, quantiles: Sequence[float], mask, level: float) -> float:
    """Mean width (m³/m³) of the central interval of ``level`` over the masked entries."""
    lo, hi = interval(quantiles, level)
    sel = np.asarray(mask, dtype=bool)
    return float(np.mean(pred_q[hi][sel] - pred_q[lo][sel])) if sel.any() else float("nan")


def pit_histogram(
    pred_q: np.ndarray, quantiles: Sequence[float], target: np.ndarray, mask, bins: int = PIT_BINS
) -> np.ndarray:
    """Share of the masked entries between consecutive deciles (``bins`` values summing to 1):
    flat (each ``1/bins``) for calibrated quantiles; a U shape means intervals too narrow, a
    hump too wide. The grid must hold the levels ``1/bins .. (bins-1)/bins``."""
    edges = [_level(quantiles, k / bins) for k in range(1, bins)]
    values, y = _flat(pred_q, target, mask)
    if y.size == 0:
        return np.full(bins, np.nan)
    below = (y[None, :] > values[edges]).sum(axis=0)  # how many edges lie below each value
    return np.bincount(below, minlength=bins)[:bins] / y.size


def distribution_scores(
    pred_q: np.ndarray,
    quantiles: Sequence[float],
    target: np.ndarray,
    mask,
    *,
    suffix: str = "",
) -> dict[str, float]:
    """CRPS, coverage and width of the 50 % and 90 % intervals, and the PIT histogram's largest
    departure from flat (``pit_dev``), keyed with ``suffix`` (``"_truth"`` against the truth)."""
    out = {f"crps{suffix}": crps(pred_q, quantiles, target, mask)}
    for level in INTERVALS:
        tag = f"{round(100 * level)}"
        out[f"cover{tag}{suffix}"] = coverage(pred_q, quantiles, target, mask, level)
        if not suffix:
            out[f"width{tag}"] = width(pred_q, quantiles, mask, level)
    hist = pit_histogram(pred_q, quantiles, target, mask)
    out[f"pit_dev{suffix}"] = float(np.max(np.abs(hist - 1.0 / PIT_BINS)))
    return out


#: Stated coverages of :func:`calibration_curve`: the central intervals of 10 % to 90 % (each
#: needs the levels ``(1 - c) / 2`` and ``(1 + c) / 2``, all in :data:`SCORE_QUANTILES`).
CALIBRATION_LEVELS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))
#: The band the workbench draws and the stations are checked against: the central 90 %
#: interval, from the 5 % to the 95 % quantile.
BAND = 0.9


def calibration_curve(
    pred_q: np.ndarray,
    quantiles: Sequence[float],
    target: np.ndarray,
    mask,
    levels: Sequence[float] = CALIBRATION_LEVELS,
) -> np.ndarray:
    """Observed coverage (share of the masked entries inside) of the central interval of each
    stated coverage in ``levels``: on the diagonal for calibrated quantiles, below it for
    intervals too narrow. NaN for every level when ``mask`` holds no finite target."""
    return np.array([coverage(pred_q, quantiles, target, mask, level) for level in levels])


def interval_bounds(
    pred_q: np.ndarray, quantiles: Sequence[float], level: float = BAND
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of the central interval of ``level`` at every entry: the quantile
    field's slices (its first axis is the quantile) at ``(1 - level) / 2`` and ``(1 + level) / 2``."""
    lo, hi = interval(quantiles, level)
    values = np.asarray(pred_q, dtype=np.float64)
    return values[lo], values[hi]


def interval_width_map(
    pred_q: np.ndarray, quantiles: Sequence[float], level: float = BAND
) -> np.ndarray:
    """Width (m³/m³) of the central interval of ``level`` at every entry, e.g. a (y, x) map from
    a (quantile, y, x) field: 0 at observed entries, where every quantile is the observation."""
    lower, upper = interval_bounds(pred_q, quantiles, level)
    return upper - lower


def in_band(values: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[float, int]:
    """Share of the entries with ``lower <= value <= upper``, over the entries where all three
    are finite, and their count (NaN and 0 when there is none)."""
    v, lo, hi = (np.asarray(a, dtype=np.float64) for a in (values, lower, upper))
    if not v.shape == lo.shape == hi.shape:
        raise ValueError(f"values {v.shape}, lower {lo.shape} and upper {hi.shape} differ in shape")
    sel = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi)
    n = int(sel.sum())
    if n == 0:
        return float("nan"), 0
    return float(np.mean((v[sel] >= lo[sel]) & (v[sel] <= hi[sel]))), n
