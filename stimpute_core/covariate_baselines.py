"""Baselines that use the covariates: the coarse product plus an offset, per-cell regression,
MICE and a random forest.

A model that uses the weather and the coarse 36 km product has to be compared with simple
methods that use them too, or a benchmark flatters it: when whole days are missing, every
covariate-blind method can only return something close to each cell's mean. ``coarse`` and
``regression`` are such simple references; ``mice`` and ``forest`` are the covariate methods of
the ST-Transformer paper's tables (scikit-learn's ``IterativeImputer`` and a depth-limited
``RandomForestRegressor``, as the paper ran them).

All follow :mod:`stimpute_core.baselines`: settings in the constructor, ``fit`` learns from the
observed ``soil_moisture`` and the covariates (never the truth), ``impute`` returns a complete
field with the observed values passed through, falling back on the per-cell mean, and refuses
another grid or a Dataset without the covariates it was fitted with.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import xarray as xr

from .baselines import _CellMeanImputer
from .data.contract import LAND_COVER, covariate_names
from .features import antecedent_precipitation, fill_in_time
from .imputation import as_output, positive_int

#: The coarse product the ``coarse`` reference follows.
COARSE = "sm_36km"
#: Daily decay of the antecedent precipitation index (about ten days of memory).
API_DECAY = 0.9
#: Days per block when building features for prediction (bounds memory on long cubes).
_BLOCK_DAYS = 256


class _CovariateImputer(_CellMeanImputer):
    """Shared part: which covariates were used at fit, and their (time, y, x, D) features."""

    covariates_: list[str] | None = None
    land_cover_codes_: list[int] | None = None
    feature_mean_: np.ndarray | None = None
    feature_std_: np.ndarray | None = None

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
    offset_: np.ndarray | None = None

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
    coef_: np.ndarray | None = None

    def __init__(self, alpha: float = 10.0):
        if not alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {alpha!r}")
        self.alpha = float(alpha)

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


def _rows(features: np.ndarray) -> np.ndarray:
    return features.reshape(-1, features.shape[-1])


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
    model_: Any = None

    def __init__(self, max_iter: int = 10, max_rows: int = 100_000, seed: int = 0):
        positive_int("max_iter", max_iter)
        if int(max_rows) != max_rows or max_rows < 10:
            raise ValueError(f"max_rows must be an integer of at least 10, got {max_rows!r}")
        self.max_iter, self.max_rows, self.seed = int(max_iter), int(max_rows), int(seed)

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
    model_: Any = None

    def __init__(
        self, n_estimators: int = 100, max_depth: int = 5, seed: int = 0, n_jobs: int | None = -1
    ):
        self.n_estimators = positive_int("n_estimators", n_estimators)
        self.max_depth = positive_int("max_depth", max_depth)
        self.seed, self.n_jobs = int(seed), n_jobs

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


from .boosting import (  # noqa: E402 (it builds on the shared parts above)
    GradientBoostingImputer,
    SmoothedBoostingImputer,
)

#: Covariate-aware baselines by their ``name``.
COVARIATE_BASELINES: dict[str, type[_CellMeanImputer]] = {
    cls.name: cls
    for cls in (
        CoarseOffsetImputer,
        CovariateRegressionImputer,
        MICEImputer,
        RandomForestImputer,
        GradientBoostingImputer,
        SmoothedBoostingImputer,
    )
}

__all__ = [
    "COVARIATE_BASELINES",
    "CoarseOffsetImputer",
    "CovariateRegressionImputer",
    "GradientBoostingImputer",
    "MICEImputer",
    "RandomForestImputer",
    "SmoothedBoostingImputer",
    "antecedent_precipitation",
]
