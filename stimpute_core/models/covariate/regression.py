"""Simple covariate references: the coarse product plus a per-cell offset, and per-cell ridge
regression on the weather, the coarse product and an antecedent precipitation index."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import xarray as xr

from ...data.contract import LAND_COVER, covariate_names
from ..base import as_output, positive_number
from ..baselines.common import _CellMeanImputer
from ..features import antecedent_precipitation, fill_in_time

#: The coarse product the ``coarse`` reference follows.
COARSE = "sm_36km"
#: Daily decay of the antecedent precipitation index (about ten days of memory).
API_DECAY = 0.9
#: Days per block when building features for prediction (bounds memory on long cubes).
_BLOCK_DAYS = 256


class _CovariateImputer(_CellMeanImputer):
    """Shared part: which covariates were used at fit, and their (time, y, x, D) features."""

    covariates_: list[str]
    land_cover_codes_: list[int]
    feature_mean_: np.ndarray
    feature_std_: np.ndarray

    def _check_covariates(self, ds: xr.Dataset, names: list[str]) -> None:
        missing = [n for n in names if n not in ds.data_vars]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs the covariate(s) {', '.join(missing)}, which the "
                f"Dataset lacks: expected {', '.join(names)} (as at fit)"
            )

    def _choose_covariates(self, ds: xr.Dataset, *, static: bool) -> None:
        dynamic, statics = covariate_names(ds)
        names = dynamic + (statics if static else [])
        if not names:
            raise ValueError(
                f"{type(self).__name__} needs covariates (weather, sm_36km, soil or terrain); "
                "the Dataset has none"
            )
        self.covariates_ = names
        codes: list[int] = []
        if static and LAND_COVER in ds.data_vars:
            lc = np.asarray(ds[LAND_COVER].values)
            codes = sorted(int(c) for c in np.unique(lc[np.isfinite(lc)]))
        self.land_cover_codes_ = codes

    def _raw_features(self, ds: xr.Dataset) -> np.ndarray:
        """(time, y, x, D) features: covariates as they are in ``ds``, the antecedent
        precipitation index with ``prcp``, land-cover one-hot."""
        assert self.covariates_ is not None and self.land_cover_codes_ is not None
        self._check_covariates(ds, self.covariates_)
        n_time, ny, nx = ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]
        columns = []
        for name in self.covariates_:
            values = np.asarray(ds[name].values, dtype=np.float64)
            if ds[name].dims == ("y", "x"):
                values = np.broadcast_to(values, (n_time, ny, nx))
            columns.append(values)
            if name == "prcp":
                columns.append(antecedent_precipitation(values))
        if self.land_cover_codes_:
            lc = np.asarray(ds[LAND_COVER].values)
            for code in self.land_cover_codes_:
                columns.append(np.broadcast_to((lc == code).astype(np.float64), (n_time, ny, nx)))
        return np.stack(columns, axis=-1)

    def _blocks(self, ds: xr.Dataset, *, fill: bool):
        """``(t0, raw features)`` for blocks of days (bounded memory on a long cube). Gaps of a
        time-varying covariate are filled over the whole period first, not block by block."""
        if fill:
            assert self.covariates_ is not None
            self._check_covariates(ds, self.covariates_)
            dynamic = [n for n in self.covariates_ if ds[n].dims != ("y", "x")]
            ds = ds.assign(
                {n: ds[n].copy(data=fill_in_time(np.asarray(ds[n].values, float))) for n in dynamic}
            )
        for t0 in range(0, ds.sizes["time"], _BLOCK_DAYS):
            yield t0, self._raw_features(ds.isel(time=slice(t0, t0 + _BLOCK_DAYS)))

    def _learn_scale(self, ds: xr.Dataset, *, fill: bool) -> None:
        """Mean and standard deviation of every feature over all (day, cell) rows of ``ds``."""
        total = square = count = 0.0
        for _, raw in self._blocks(ds, fill=fill):
            rows = _rows(raw)
            finite = np.isfinite(rows)
            total = total + np.where(finite, rows, 0.0).sum(axis=0)
            square = square + np.where(finite, rows**2, 0.0).sum(axis=0)
            count = count + finite.sum(axis=0)
        count = np.maximum(count, 1)
        mean = total / count
        std = np.sqrt(np.maximum(square / count - mean**2, 0.0))
        self.feature_mean_, self.feature_std_ = mean, np.where(std > 1e-12, std, 1.0)

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        assert self.feature_mean_ is not None and self.feature_std_ is not None
        return (features - self.feature_mean_) / self.feature_std_


def _rows(features: np.ndarray) -> np.ndarray:
    return features.reshape(-1, features.shape[-1])


class CoarseOffsetImputer(_CellMeanImputer):
    """The coarse ``sm_36km`` product interpolated in time, plus a per-cell offset.

    The offset is each cell's mean of (observation − coarse) over its observed days (the mean
    offset of all cells for a cell never observed): the 1 km field as the 36 km one shifted by
    what is known of each cell. It uses the coarse product of the imputed period, which exists on
    the days the 1 km product is missing, and nothing else.
    """

    name: ClassVar[str] = "coarse"
    offset_: np.ndarray

    def _coarse(self, ds: xr.Dataset) -> np.ndarray:
        if COARSE not in ds.data_vars:
            raise ValueError(
                f"the coarse reference needs the covariate '{COARSE}'(time, y, x), which the "
                "Dataset lacks"
            )
        return fill_in_time(np.asarray(ds[COARSE].values, dtype=np.float64))

    def fit(self, ds: xr.Dataset) -> CoarseOffsetImputer:
        """Learn ``offset_`` (y, x) from the observed days."""
        values = self._fit_cell_mean(ds)
        diff = values - self._coarse(ds)
        obs = np.isfinite(diff)
        count = obs.sum(axis=0)
        total = np.where(obs, diff, 0.0).sum(axis=0)
        overall = total.sum() / max(count.sum(), 1)
        self.offset_ = np.where(count > 0, total / np.maximum(count, 1), overall)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill with the coarse product of ``ds`` plus the fitted offset."""
        self._check_fitted("offset_")
        self._prepare(ds)
        return as_output(ds, self._coarse(ds) + self.offset_, self)


class CovariateRegressionImputer(_CovariateImputer):
    """Per-cell ridge regression of soil moisture on the time-varying covariates.

    For each cell: ``y_t = a + b · x_t`` with ``x_t`` the standardised weather, ``sm_36km`` (gaps
    interpolated in time) and the antecedent precipitation index, fitted on the cell's observed
    days with an L2 penalty ``alpha`` on ``b`` (not on ``a``), so that a cell with few
    observations stays near its mean. Static covariates are constant in a cell and are absorbed
    by ``a``. Cells never observed get the per-cell mean fallback.
    """

    name: ClassVar[str] = "regression"
    coef_: np.ndarray

    def __init__(self, alpha: float = 10.0):
        self.alpha = alpha

    def _validate_params(self) -> None:
        if not (positive_number(self.alpha) or self.alpha == 0):
            raise ValueError(f"alpha must be non-negative, got {self.alpha!r}")

    def fit(self, ds: xr.Dataset) -> CovariateRegressionImputer:
        """Learn ``coef_`` (y, x, D + 1): intercept then one slope per feature."""
        values = self._fit_cell_mean(ds)
        self._choose_covariates(ds, static=False)
        self._learn_scale(ds, fill=True)
        ny, nx = values.shape[1:]
        gram = rhs = 0.0
        for t0, raw in self._blocks(ds, fill=True):
            x = self._standardise(raw).reshape(raw.shape[0], ny * nx, -1)
            y = values[t0 : t0 + raw.shape[0]].reshape(raw.shape[0], -1)
            obs = np.isfinite(y)
            design = np.concatenate([np.ones((*x.shape[:2], 1)), x], axis=2)
            masked = design * obs[..., None]
            gram = gram + np.einsum("tnd,tne->nde", masked, design)
            rhs = rhs + np.einsum("tnd,tn->nd", masked, np.where(obs, y, 0.0))
        d = gram.shape[-1]
        penalty = self.alpha * np.eye(d)
        penalty[0, 0] = 0.0
        coef = np.zeros((ny * nx, d))
        seen = np.isfinite(values).reshape(values.shape[0], -1).any(axis=0)
        coef[seen] = np.linalg.solve(gram[seen] + penalty, rhs[seen][..., None])[..., 0]
        coef[~seen, 0] = self.cell_mean_.reshape(-1)[~seen]
        self.coef_ = coef.reshape(ny, nx, d)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Predict every day of ``ds`` from its covariates."""
        self._check_fitted("coef_", "covariates_")
        values = self._prepare(ds)
        assert self.coef_ is not None
        estimate = np.empty(values.shape)
        for t0, raw in self._blocks(ds, fill=True):
            x = self._standardise(raw)
            estimate[t0 : t0 + raw.shape[0]] = self.coef_[..., 0] + np.einsum(
                "tyxd,yxd->tyx", x, self.coef_[..., 1:]
            )
        return as_output(ds, estimate, self)
