"""Inverse-distance weighting: a per-day spatial baseline."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from ..base import as_output, positive_int, positive_number
from .common import _CellMeanImputer

#: Largest grid (cells) for which IDW keeps the full cell-to-cell weight table in memory.
_IDW_TABLE_MAX_CELLS = 2500


class IDWImputer(_CellMeanImputer):
    """Per-day inverse-distance weighting from that day's observed cells.

    Weights are ``distance ** -power`` with distances between cell centres from the ``x``/``y``
    coordinates (metres, rescaled by the smallest cell spacing: the weights' ratios are unchanged
    but large powers do not underflow). ``max_neighbours`` limits each estimate
    to the nearest observed cells (all when ``None``). Days with no observation fall back on the
    fitted per-cell mean. Purely spatial: it ignores the other days.
    """

    name: ClassVar[str] = "idw"

    def __init__(self, power: float = 2.0, max_neighbours: int | None = None):
        self.power = power
        self.max_neighbours = max_neighbours

    def _validate_params(self) -> None:
        if not positive_number(self.power):
            raise ValueError(f"power must be positive, got {self.power!r}")
        if self.max_neighbours is not None:
            positive_int("max_neighbours", self.max_neighbours)

    def fit(self, ds: xr.Dataset) -> IDWImputer:
        """Learn the fallback per-cell mean (IDW itself needs no training)."""
        self._fit_cell_mean(ds)
        return self

    def _points(self) -> np.ndarray:
        """Cell centres (cells, 2) in units of the smallest cell spacing."""
        assert self.grid_ is not None
        yy, xx = np.meshgrid(self.grid_["y"], self.grid_["x"], indexing="ij")
        steps = np.concatenate([np.abs(np.diff(self.grid_[d])) for d in ("y", "x")])
        steps = steps[steps > 0]
        unit = steps.min() if steps.size else 1.0
        return np.column_stack([yy.ravel(), xx.ravel()]) / unit

    def _weights(self, pts: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """IDW weights (rows, cols) between distinct cells ``rows`` and ``cols``."""
        dy = np.subtract.outer(pts[rows, 0], pts[cols, 0])
        dx = np.subtract.outer(pts[rows, 1], pts[cols, 1])
        return (dy * dy + dx * dx) ** (-self.power / 2)

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Weighted mean of each day's observed cells at every missing cell of that day.

        The cell-to-cell weights are computed once when the grid has at most
        ``_IDW_TABLE_MAX_CELLS`` cells (a 36 x 36 grid needs 13 MB), else day by day.
        """
        values = self._prepare(ds)
        n_time = values.shape[0]
        flat = values.reshape(n_time, -1)
        estimate = np.array(self._mean_field(n_time).reshape(n_time, -1))
        pts = self._points()
        n_cells = pts.shape[0]
        table = None
        if n_cells <= _IDW_TABLE_MAX_CELLS:
            every = np.arange(n_cells)
            with np.errstate(divide="ignore"):
                table = self._weights(pts, every, every)
            np.fill_diagonal(table, 0.0)  # a cell never weighs in on itself (it is observed)
        obs = np.isfinite(flat)
        k = self.max_neighbours
        for t in np.flatnonzero(obs.any(axis=1) & ~obs.all(axis=1)):
            o_idx, m_idx = np.flatnonzero(obs[t]), np.flatnonzero(~obs[t])
            v = flat[t, o_idx]
            if k is not None and o_idx.size > k:
                if table is not None:
                    w = table[o_idx][:, m_idx].T
                else:
                    w = self._weights(pts, m_idx, o_idx)
                near = np.argpartition(-w, k - 1, axis=1)[:, :k]  # largest weight = nearest
                w = np.take_along_axis(w, near, axis=1)
                estimate[t, m_idx] = (w * v[near]).sum(1) / w.sum(1)
            elif table is not None:
                # Rows of the symmetric table are contiguous: weigh all cells, keep the missing.
                w = table[o_idx]
                estimate[t, m_idx] = (v @ w)[m_idx] / w.sum(0)[m_idx]
            else:
                w = self._weights(pts, m_idx, o_idx)
                estimate[t, m_idx] = (w @ v) / w.sum(1)
        return as_output(ds, estimate.reshape(values.shape), self)
