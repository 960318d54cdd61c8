"""Shared part of the covariate-blind baselines: input checks, the per-cell mean every baseline
falls back on, and the fitted-grid check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from ...data.contract import TARGET
from ..base import Imputer

_DIMS = ("time", "y", "x")


def _target_values(ds: xr.Dataset, *, require_observed: bool) -> np.ndarray:
    """``soil_moisture`` of ``ds`` as float64 (time, y, x), after checking dims and coords."""
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"expected an xarray.Dataset, got {type(ds).__name__}")
    if TARGET not in ds.data_vars:
        raise ValueError(f"variable '{TARGET}' is missing: expected {TARGET}(time, y, x)")
    if ds[TARGET].dims != _DIMS:
        raise ValueError(f"variable '{TARGET}' has dims {ds[TARGET].dims}: expected {_DIMS}")
    for name in ("x", "y"):
        if name not in ds.coords:
            raise ValueError(f"coordinate '{name}' is missing: expected cell centres in metres")
    values = np.asarray(ds[TARGET].values, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"variable '{TARGET}' is empty (a dimension has length 0)")
    if require_observed and not np.isfinite(values).any():
        raise ValueError(f"variable '{TARGET}' has no observed (non-NaN) value to fit on")
    return values


def _cell_means(values: np.ndarray) -> np.ndarray:
    """Per-cell (y, x) mean over time of the finite values; never-observed cells get the mean of
    all observed values (the most neutral guess that keeps outputs NaN-free)."""
    obs = np.isfinite(values)
    count = obs.sum(axis=0)
    total = np.where(obs, values, 0.0).sum(axis=0)
    overall = total.sum() / count.sum()
    return np.where(count > 0, total / np.maximum(count, 1), overall)


class _CellMeanImputer(Imputer):
    """Shared part: fit the per-cell mean and remember the grid it was fitted on."""

    name: ClassVar[str] = "_cell_mean"
    cell_mean_: np.ndarray
    grid_: dict[str, np.ndarray]

    def __init__(self) -> None:
        """No settings (an explicit signature keeps ``get_params`` empty)."""

    def _fit_cell_mean(self, ds: xr.Dataset) -> np.ndarray:
        """Validate ``ds``, store ``cell_mean_`` and ``grid_``; return the target values."""
        self._validate_params()
        values = _target_values(ds, require_observed=True)
        self.cell_mean_ = _cell_means(values)
        self._remember_grid(ds)
        return values

    def _prepare(self, ds: xr.Dataset) -> np.ndarray:
        """Check fitted and that ``ds`` lies on the fitted grid; return its target values."""
        self._check_fitted("cell_mean_", "grid_")
        values = _target_values(ds, require_observed=False)
        self._check_grid(ds)
        return values

    def _mean_field(self, n_time: int) -> np.ndarray:
        assert self.cell_mean_ is not None
        return np.broadcast_to(self.cell_mean_, (n_time, *self.cell_mean_.shape))
