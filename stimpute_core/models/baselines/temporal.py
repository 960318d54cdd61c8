"""Baselines in time only: per-cell mean, climatology and linear interpolation."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from ..base import as_output, positive_int
from ..features import interpolate_time
from .common import _CellMeanImputer


class MeanImputer(_CellMeanImputer):
    """Per-cell temporal mean of the observed training values (the simplest spatial baseline).

    Cells never observed at fit get the mean of all observed values.
    """

    name: ClassVar[str] = "mean"

    def fit(self, ds: xr.Dataset) -> MeanImputer:
        """Learn the per-cell mean ``cell_mean_`` (y, x)."""
        self._fit_cell_mean(ds)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill every missing entry with the fitted per-cell mean."""
        values = self._prepare(ds)
        return as_output(ds, self._mean_field(values.shape[0]), self)


def _day_of_year(ds: xr.Dataset) -> np.ndarray:
    """0-based day of year (0..364) of each time step; day 366 of leap years maps to 365.

    Leap years are not realigned otherwise: the one-day shift after 28 February is small next to
    a climatology window of weeks.
    """
    doy = pd.DatetimeIndex(ds["time"].values).day_of_year.to_numpy()
    return np.minimum(doy, 365) - 1


class ClimatologyImputer(_CellMeanImputer):
    """Day-of-year climatology: per-cell mean plus a domain-wide seasonal anomaly.

    With ~95 % of cell-days missing a per-cell, per-day-of-year mean is mostly empty or rests on
    one or two values, so the seasonal cycle is pooled over the domain: the anomaly for day of
    year ``d`` is the mean over all cells and years of (observation − per-cell mean) for days of
    year within the circular window ``d ± window_days // 2`` (31 days by default). The estimate is
    ``cell_mean_ + seasonal_[doy]``. Days of year whose window holds no observation get anomaly 0,
    i.e. the per-cell mean.
    """

    name: ClassVar[str] = "climatology"
    seasonal_: np.ndarray

    def __init__(self, window_days: int = 31):
        self.window_days = window_days

    def _validate_params(self) -> None:
        positive_int("window_days", self.window_days)

    def fit(self, ds: xr.Dataset) -> ClimatologyImputer:
        """Learn ``cell_mean_`` (y, x) and ``seasonal_`` (365,), the smoothed domain anomaly."""
        values = self._fit_cell_mean(ds)
        anomaly = values - self.cell_mean_
        obs = np.isfinite(anomaly)
        per_day_sum = np.where(obs, anomaly, 0.0).sum(axis=(1, 2))
        per_day_count = obs.sum(axis=(1, 2)).astype(np.float64)
        doy = _day_of_year(ds)
        sums = np.bincount(doy, weights=per_day_sum, minlength=365)
        counts = np.bincount(doy, weights=per_day_count, minlength=365)
        half = min(self.window_days // 2, 182)  # a window wider than a year wraps onto itself
        win_sum = sum(np.roll(sums, s) for s in range(-half, half + 1))
        win_count = sum(np.roll(counts, s) for s in range(-half, half + 1))
        self.seasonal_ = np.where(win_count > 0, win_sum / np.maximum(win_count, 1), 0.0)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill with ``cell_mean_ + seasonal_[day of year]`` for the days of ``ds``."""
        self._check_fitted("seasonal_")
        self._prepare(ds)
        assert self.seasonal_ is not None and self.cell_mean_ is not None
        estimate = self.cell_mean_[None] + self.seasonal_[_day_of_year(ds)][:, None, None]
        return as_output(ds, estimate, self)


class LinearInterpolationImputer(_CellMeanImputer):
    """Per-cell linear interpolation in time between the observations of the imputed ``ds``.

    As the paper's baseline (pandas ``interpolate(limit_direction="both")``), values before the
    first and after the last observation hold the nearest observed value. Time is the day index
    (the contract guarantees consecutive days). Cells with no observation in ``ds`` fall back on
    the fitted per-cell mean, which is all that ``fit`` learns.
    """

    name: ClassVar[str] = "linear"

    def fit(self, ds: xr.Dataset) -> LinearInterpolationImputer:
        """Learn the fallback per-cell mean."""
        self._fit_cell_mean(ds)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Interpolate each cell's time series of ``ds``."""
        values = self._prepare(ds)
        return as_output(ds, interpolate_time(values, self.cell_mean_), self)
