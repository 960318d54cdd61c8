"""Kalman smoothing: a per-cell local-level model with its noise ratio chosen by likelihood."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from ..base import as_output
from .common import _CellMeanImputer

_DIFFUSE_VARIANCE = 1e6
#: Kalman: cells with fewer observations than this get the per-cell mean (no level is fitted).
_KALMAN_MIN_OBS = 3
#: Kalman: default grid of signal-to-noise ratios q = var(η) / var(ε).
_Q_GRID = tuple(float(q) for q in np.logspace(-4, 1, 16))


def _local_level_filter(
    y: np.ndarray, prior_mean: np.ndarray, q: np.ndarray, *, keep: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Kalman filter of the local-level model with σ² = 1 on ``y`` (time, cells), NaN = missing.

    ``q`` has shape (..., cells): every leading index is a separate filter run at once. The level
    starts at ``prior_mean`` (cells) with variance ``_DIFFUSE_VARIANCE``. Returns the likelihood
    sums over observed steps except each cell's first: Σ log F_t, Σ v_t²/F_t and their count
    (cells); with ``keep``, also the filtered means and variances (time, ...), else ``None``.
    """
    shape = q.shape
    a = np.broadcast_to(prior_mean, shape).astype(np.float64)
    p = np.full(shape, _DIFFUSE_VARIANCE)
    log_f = np.zeros(shape)
    sq = np.zeros(shape)
    seen = np.zeros(y.shape[1], dtype=bool)
    count = np.zeros(y.shape[1])
    a_filt = np.empty((y.shape[0], *shape)) if keep else None
    p_filt = np.empty((y.shape[0], *shape)) if keep else None
    for t in range(y.shape[0]):
        obs = np.isfinite(y[t])
        if obs.any():
            f = p + 1.0
            v = np.where(obs, y[t] - a, 0.0)
            counted = obs & seen
            log_f += np.where(counted, np.log(f), 0.0)
            sq += np.where(counted, v * v / f, 0.0)
            count += counted
            seen |= obs
            a = a + np.where(obs, p / f * v, 0.0)
            p = np.where(obs, p / f, p)
        if keep:
            a_filt[t], p_filt[t] = a, p
        p = p + q
    return log_f, sq, count, a_filt, p_filt


def _local_level_smooth(y: np.ndarray, prior_mean: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Smoothed level (time, cells) of the local-level model with ratio ``q`` (cells).

    Rauch–Tung–Striebel backward pass over the filtered means and variances; for a random walk
    the one-step prediction keeps the mean and adds ``q`` to the variance.
    """
    _, _, _, a_filt, p_filt = _local_level_filter(y, prior_mean, q, keep=True)
    assert a_filt is not None and p_filt is not None
    smooth = a_filt  # overwritten in place from the end
    for t in range(y.shape[0] - 2, -1, -1):
        gain = p_filt[t] / (p_filt[t] + q)
        smooth[t] = a_filt[t] + gain * (smooth[t + 1] - a_filt[t])
    return smooth


class KalmanSmoothingImputer(_CellMeanImputer):
    """Per-cell Kalman smoothing with a local-level model, as R imputeTS ``na_kalman``.

    Each cell's series is ``y_t = μ_t + ε_t``, ``ε ~ N(0, σ²)``, with a random-walk level
    ``μ_{t+1} = μ_t + η_t``, ``η ~ N(0, q σ²)`` (StructTS ``type = "level"``). ``fit`` estimates the
    ratio ``q`` per cell by maximum likelihood over ``q_grid`` (by default 16 values log-spaced
    from 1e-4 to 10): σ² is concentrated out (σ̂² is the mean of v²/F over the innovations), so
    all grid values and cells run as one filter, looping over time only and keeping only
    (grid, cells) arrays. The level starts diffuse (variance 1e6 σ²) about the per-cell mean and
    each cell's first observation is left out of the likelihood. Cells with fewer than 3
    observations at fit get the median of the other cells' ``q`` on a log scale (the grid's
    geometric middle if no cell has 3).

    ``impute(ds)`` runs the filter and the fixed-interval (Rauch–Tung–Striebel) smoother on the
    observations of ``ds`` with the fitted ``q_`` and returns the smoothed level: like linear
    interpolation it uses the imputed period's own observations, and it holds the first and last
    observed level beyond them. Cells with fewer than 3 observations in ``ds`` get the per-cell
    mean.
    """

    name: ClassVar[str] = "kalman"
    q_: np.ndarray

    def __init__(self, q_grid: tuple[float, ...] = _Q_GRID):
        self.q_grid = q_grid

    def _validate_params(self) -> None:
        grid = np.asarray(self.q_grid, dtype=np.float64).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
            raise ValueError(
                f"q_grid must be a non-empty sequence of positive numbers, got {self.q_grid!r}"
            )

    def fit(self, ds: xr.Dataset) -> KalmanSmoothingImputer:
        """Learn ``cell_mean_`` and the per-cell ratio ``q_`` (y, x) by profile likelihood."""
        values = self._fit_cell_mean(ds)
        assert self.cell_mean_ is not None
        y = values.reshape(values.shape[0], -1)
        grid = np.asarray(self.q_grid, dtype=np.float64).ravel()
        n_cells = y.shape[1]
        q = np.broadcast_to(grid[:, None], (grid.size, n_cells))
        log_f, sq, count, _, _ = _local_level_filter(y, self.cell_mean_.ravel(), q, keep=False)
        n = np.maximum(count, 1)
        sigma2 = np.maximum(sq / n, np.finfo(np.float64).tiny)  # 0 for a constant series
        loglik = -0.5 * log_f - 0.5 * n * np.log(sigma2)
        best = grid[np.argmax(loglik, axis=0)]
        fitted = np.isfinite(y).sum(axis=0) >= _KALMAN_MIN_OBS
        log_q = np.median(np.log(best[fitted])) if fitted.any() else np.log(grid).mean()
        self.q_ = np.where(fitted, best, np.exp(log_q)).reshape(self.cell_mean_.shape)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Smoothed level of each cell from the observations of ``ds`` with the fitted ``q_``."""
        self._check_fitted("q_")
        values = self._prepare(ds)
        assert self.q_ is not None and self.cell_mean_ is not None
        n_time = values.shape[0]
        y = values.reshape(n_time, -1)
        estimate = np.array(self._mean_field(n_time).reshape(n_time, -1))
        cells = np.flatnonzero(np.isfinite(y).sum(axis=0) >= _KALMAN_MIN_OBS)
        if cells.size:
            estimate[:, cells] = _local_level_smooth(
                y[:, cells], self.cell_mean_.ravel()[cells], self.q_.ravel()[cells]
            )
        return as_output(ds, estimate.reshape(values.shape), self)
