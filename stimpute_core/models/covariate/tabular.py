"""MICE and a random forest on one row per (day, cell): the covariate methods of the paper's
tables."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..base import as_output, integer, positive_int
from .regression import _CovariateImputer, _rows


class _TabularImputer(_CovariateImputer):
    """Shared part of MICE and the forest: one row per (day, cell), built in blocks of days."""

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select_rows(self, ds: xr.Dataset, take: np.ndarray, *, fill: bool) -> np.ndarray:
        """Standardised feature rows of the (day, cell) entries flagged in ``take`` (time, y, x)."""
        picked = []
        for t0, raw in self._blocks(ds, fill=fill):
            flags = take[t0 : t0 + raw.shape[0]].reshape(-1)
            picked.append(_rows(self._standardise(raw))[flags])
        return np.concatenate(picked)

    def _impute_blocks(self, ds: xr.Dataset, *, fill: bool) -> np.ndarray:
        out = np.empty((ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]))
        for t0, raw in self._blocks(ds, fill=fill):
            rows = _rows(self._standardise(raw))
            out[t0 : t0 + raw.shape[0]] = self._predict_rows(rows).reshape(raw.shape[:3])
        return out


class MICEImputer(_TabularImputer):
    """Multiple imputation by chained equations on [soil moisture, covariates], as in the paper.

    scikit-learn's ``IterativeImputer`` (Bayesian ridge regressions, ``max_iter`` rounds) on a
    table with one row per (day, cell): soil moisture, every covariate (the coarse product keeps
    its own gaps, which MICE fills too), the antecedent precipitation index and the land-cover
    one-hot. Like the paper, it is fitted on a random subsample of ``max_rows`` rows (observed
    rows first), then applied to every row. Whole missing days are predicted from the day's
    covariates alone.
    """

    name: ClassVar[str] = "mice"
    model_: Any

    def __init__(self, max_iter: int = 10, max_rows: int = 100_000, seed: int = 0):
        self.max_iter = max_iter
        self.max_rows = max_rows
        self.seed = seed

    def _validate_params(self) -> None:
        positive_int("max_iter", self.max_iter)
        if positive_int("max_rows", self.max_rows) < 10:
            raise ValueError(f"max_rows must be an integer of at least 10, got {self.max_rows!r}")
        integer("seed", self.seed)

    def fit(self, ds: xr.Dataset) -> MICEImputer:
        """Fit the chained regressions on a subsample of the (day, cell) rows."""
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        values = self._fit_cell_mean(ds)
        self._choose_covariates(ds, static=True)
        self._learn_scale(ds, fill=False)
        rng = np.random.default_rng(self.seed)
        flat = values.reshape(-1)
        observed = np.flatnonzero(np.isfinite(flat))
        others = np.flatnonzero(~np.isfinite(flat))
        take = rng.permutation(observed)[: self.max_rows]
        extra = max(0, self.max_rows - len(take))
        chosen = np.zeros(flat.shape, dtype=bool)
        chosen[np.concatenate([take, rng.permutation(others)[:extra]])] = True
        chosen = chosen.reshape(values.shape)
        rows = self._select_rows(ds, chosen, fill=False)
        table = np.concatenate([values[chosen].reshape(-1, 1), rows], axis=1)
        # Only the columns with gaps get a regression (soil moisture, the coarse product).
        self.model_ = IterativeImputer(
            max_iter=self.max_iter, random_state=self.seed, skip_complete=True
        )
        self.model_.fit(table)
        return self

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        table = np.concatenate([np.full((len(rows), 1), np.nan), rows], axis=1)
        return self.model_.transform(table)[:, 0]

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill every missing entry from its row's covariates."""
        self._check_fitted("model_", "covariates_")
        self._prepare(ds)
        return as_output(ds, self._impute_blocks(ds, fill=False), self)


class RandomForestImputer(_TabularImputer):
    """A random forest regression of soil moisture on the covariates, as in the paper.

    scikit-learn's ``RandomForestRegressor`` (``n_estimators`` trees of depth ``max_depth``;
    the paper's 100 and 5) trained on the observed (day, cell) rows with the covariates alone:
    weather, the coarse product (gaps interpolated in time), the antecedent precipitation
    index, soil, terrain and the land-cover one-hot. ``n_jobs`` trees are grown in parallel.
    """

    name: ClassVar[str] = "forest"
    model_: Any

    def __init__(
        self, n_estimators: int = 100, max_depth: int = 5, seed: int = 0, n_jobs: int | None = -1
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.seed = seed
        self.n_jobs = n_jobs

    def _validate_params(self) -> None:
        positive_int("n_estimators", self.n_estimators)
        positive_int("max_depth", self.max_depth)
        integer("seed", self.seed)

    def fit(self, ds: xr.Dataset) -> RandomForestImputer:
        """Grow the forest on the observed rows."""
        from sklearn.ensemble import RandomForestRegressor

        values = self._fit_cell_mean(ds)
        self._choose_covariates(ds, static=True)
        self._learn_scale(ds, fill=True)
        observed = np.isfinite(values)
        x = self._select_rows(ds, observed, fill=True)
        self.model_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            random_state=self.seed,
            n_jobs=self.n_jobs,
        )
        self.model_.fit(x, values[observed])
        return self

    def _predict_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.model_.predict(rows)

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Predict every missing entry from its covariates."""
        self._check_fitted("model_", "covariates_")
        self._prepare(ds)
        return as_output(ds, self._impute_blocks(ds, fill=True), self)
