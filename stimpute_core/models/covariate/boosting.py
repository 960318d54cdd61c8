"""Gradient-boosted trees on the covariates and the derived inputs: the strongest simple
reference for whole missing days.

One model for all cells (scikit-learn's ``HistGradientBoostingRegressor``), one row per observed
(day, cell): the time-varying covariates as they are (the trees take their gaps), the derived
inputs of :mod:`stimpute_core.models.features` (rain memories of several lengths, days since rain, the
season, the coarse product filled and its anomaly), the static fields and the land-cover code
as a category. It sees no neighbour and no other day of soil moisture, so it is the reference a
spatiotemporal model has to beat with what it adds, not with the covariates alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from ...data.contract import LAND_COVER, TARGET, covariate_names
from ..base import as_output, integer, positive_int, positive_number
from ..baselines.common import _CellMeanImputer, _target_values
from ..features import derived_features
from ..smoothing import choose_smoother, smoothed_departures

#: Days per block when building feature rows for prediction (bounds memory on long cubes).
_BLOCK_DAYS = 256


class GradientBoostingImputer(_CellMeanImputer):
    """Histogram gradient boosting of soil moisture on covariates and derived inputs.

    ``max_iter`` trees of at most ``max_leaf_nodes`` leaves, learning rate ``learning_rate``,
    no early stopping (so a fit is repeatable from ``seed``). Cells never observed are predicted
    from their covariates like any other.
    """

    name: ClassVar[str] = "boosting"
    model_: Any
    columns_: list[str]

    def __init__(
        self,
        max_iter: int = 300,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        seed: int = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.seed = seed

    def _validate_params(self) -> None:
        positive_int("max_iter", self.max_iter)
        positive_int("max_leaf_nodes", self.max_leaf_nodes)
        if not (positive_number(self.learning_rate) and self.learning_rate <= 1):
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        integer("seed", self.seed)

    def _columns(self, ds: xr.Dataset, derived: dict[str, np.ndarray]) -> list[str]:
        dynamic, static = covariate_names(ds)
        names = [f"derived:{k}" for k in derived]
        return dynamic + names + static + ([LAND_COVER] if LAND_COVER in ds.data_vars else [])

    def _blocks(self, ds: xr.Dataset, derived: dict[str, np.ndarray] | None = None):
        """``(t0, (days, y, x, D) features)`` in blocks of days; derived inputs are computed over
        the whole period first (rain memory must not restart at a block), or given."""
        assert self.columns_ is not None
        missing = [
            c for c in self.columns_ if not c.startswith("derived:") and c not in ds.data_vars
        ]
        if missing:
            raise ValueError(
                f"boosting needs the covariate(s) {', '.join(missing)}, which the Dataset lacks "
                "(as at fit)"
            )
        derived = derived_features(ds) if derived is None else derived
        lost = [c for c in self.columns_ if c.startswith("derived:") and c[8:] not in derived]
        if lost:
            raise ValueError(f"boosting was fitted with derived inputs {lost} this Dataset lacks")
        n_time, ny, nx = ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]
        for t0 in range(0, n_time, _BLOCK_DAYS):
            days = slice(t0, min(t0 + _BLOCK_DAYS, n_time))
            n = days.stop - days.start
            cols = []
            for c in self.columns_:
                if c.startswith("derived:"):
                    v = derived[c[8:]][days]
                elif ds[c].dims == ("y", "x"):
                    v = np.broadcast_to(ds[c].values, (n, ny, nx))
                else:
                    v = ds[c].values[days]
                cols.append(np.asarray(v, dtype=np.float32))
            yield t0, np.stack(cols, axis=-1)

    def fit(self, ds: xr.Dataset) -> GradientBoostingImputer:
        """Grow the trees on the observed (day, cell) rows of ``ds``."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        values = self._fit_cell_mean(ds)
        derived = derived_features(ds)
        self.columns_ = self._columns(ds, derived)
        if not [c for c in self.columns_ if c not in (LAND_COVER,)]:
            raise ValueError("boosting needs covariates; the Dataset has none")
        rows, target = [], []
        for t0, feats in self._blocks(ds, derived):
            y = values[t0 : t0 + feats.shape[0]]
            obs = np.isfinite(y)
            rows.append(feats[obs])
            target.append(y[obs])
        x = np.concatenate(rows)
        categorical = [c == LAND_COVER for c in self.columns_]
        self.model_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            early_stopping=False,
            categorical_features=categorical if any(categorical) else None,
            random_state=self.seed,
        )
        self.model_.fit(x, np.concatenate(target))
        return self

    def predict_cube(
        self,
        ds: xr.Dataset,
        *,
        check_grid: bool = True,
        days: np.ndarray | None = None,
        derived: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The trees' estimate for every (day, cell) of ``ds``, observed entries included.

        The trees use each cell's own covariates only, so with ``check_grid=False`` they serve
        any grid (the ST-Transformer's prior does; ``impute`` keeps the fitted grid). With
        ``days`` (a boolean per day), only those days are predicted and the others are NaN;
        ``derived`` passes :func:`~stimpute_core.models.features.derived_features` of ``ds`` when
        already computed.
        """
        self._check_fitted("model_", "columns_")
        shape = (ds.sizes["time"], ds.sizes["y"], ds.sizes["x"])
        if check_grid:
            shape = self._prepare(ds).shape
        wanted = np.ones(shape[0], bool) if days is None else np.asarray(days, bool)
        out = np.full(shape, np.nan)
        for t0, feats in self._blocks(ds, derived):
            pick = wanted[t0 : t0 + feats.shape[0]]
            if pick.any():
                rows = feats[pick].reshape(-1, feats.shape[-1])
                out[t0 : t0 + feats.shape[0]][pick] = self.model_.predict(rows).reshape(
                    -1, *shape[1:]
                )
        return out

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill every missing entry from its covariates."""
        return as_output(ds, self.predict_cube(ds), self)


def predict_by_day(
    models: Sequence[GradientBoostingImputer],
    ds: xr.Dataset,
    which: np.ndarray,
    derived: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Each day of ``ds`` estimated by ``models[which[day]]`` (NaN where ``which`` is -1).

    What a cross-fitted prior asks for: one model per group of days. The features are built
    once for all the models (they share their columns), not once per model.
    """
    if not models:
        raise ValueError("predict_by_day needs at least one fitted model")
    for m in models:
        m._check_fitted("model_", "columns_")
    if any(m.columns_ != models[0].columns_ for m in models):
        raise ValueError("predict_by_day: the models were fitted on different columns")
    which = np.asarray(which)
    out = np.full((ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]), np.nan)
    for t0, feats in models[0]._blocks(ds, derived):
        block = which[t0 : t0 + feats.shape[0]]
        for k in np.unique(block[block >= 0]):
            pick = block == k
            rows = feats[pick].reshape(-1, feats.shape[-1])
            out[t0 : t0 + feats.shape[0]][pick] = (
                models[k].model_.predict(rows).reshape(-1, *out.shape[1:])
            )
    return out


class SmoothedBoostingImputer(GradientBoostingImputer):
    """Boosting plus the day's observed departures from it smoothed in space (regression
    kriging's two stages, :mod:`stimpute_core.models.smoothing`): the reference to beat where the rest
    of a day is observed (point gaps).

    ``fit`` fits the trees, then chooses the smoother's width and shrinkage (``smooth_``) by
    leave-one-out error on the departures of the observations it was given from trees fitted
    on the other half of the days. ``impute`` smooths the departures of the observations of the Dataset it fills;
    on a day without any, it is boosting alone.
    """

    name: ClassVar[str] = "boosting-smooth"
    smooth_: tuple[float, float]

    def fit(self, ds: xr.Dataset) -> SmoothedBoostingImputer:
        """Grow the trees, then choose the smoother on out-of-sample departures: two more
        fits, each on half of the days (a hash of the date), give every observation a
        departure from trees that never saw its day. In-sample departures are smaller and
        patchier than those of the days it will fill, and pick too timid a smoother."""
        super().fit(ds)
        values = _target_values(ds, require_observed=True)
        day = np.asarray(
            (pd.DatetimeIndex(ds["time"].values).normalize() - pd.Timestamp("1970-01-01")).days
        )
        half = ((day * 2654435761) >> 7) % 2 == 0
        departures = np.full(values.shape, np.nan)
        for part in (half, ~half):
            if not np.isfinite(values[~part]).any() or not np.isfinite(values[part]).any():
                continue
            other = GradientBoostingImputer(
                self.max_iter, self.learning_rate, self.max_leaf_nodes, self.seed
            ).fit(ds.assign({TARGET: ds[TARGET].where(~part[:, None, None])}))
            departures[part] = values[part] - other.predict_cube(ds, days=part)[part]
        if not np.isfinite(departures).any():  # too few days to split: in-sample departures
            departures = values - self.predict_cube(ds)
        self.smooth_ = choose_smoother(departures)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fill every missing entry: the trees' estimate plus the day's smoothed departures."""
        self._check_fitted("smooth_")
        assert self.smooth_ is not None
        est = self.predict_cube(ds)
        values = _target_values(ds, require_observed=False)
        return as_output(ds, est + smoothed_departures(values - est, *self.smooth_), self)
