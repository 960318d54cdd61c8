"""Calibrated intervals from held-out residuals: conformal quantiles, stratified by how far
each entry lies from what is known of it.

An imputer's error at a cell-day grows with the distance (in days) to that cell's nearest
observation, and is larger on a day with no observation anywhere in the region (a whole-day
gap) than on a day with other cells seen. :func:`strata` puts every entry into one of
``len(GAP_EDGES) x 2`` classes by those two facts, computed from the *input* (never from the
entry's own value); :class:`ResidualQuantiles` keeps, per class, the empirical quantiles of the
residuals (observation − estimate) at entries that were hidden from the model, and turns them
into the offsets of any quantile level with the split-conformal finite-sample correction
(Mondrian conformal prediction: coverage holds per class when the hidden entries are
exchangeable with the ones imputed). A class with fewer than :data:`MIN_COUNT` residuals uses
the residuals of its kind of day, then all of them.

Two intervals can be asked for (``target``). ``"observation"`` (default): where a new satellite
retrieval of the entry would fall; the residuals it is calibrated on hold the retrieval's own
noise. ``"soil_moisture"``: where the noise-free value of the cell lies. Its residual
quantiles are the observation's, narrowed about their median by ``sqrt((v - n) / v)`` per
class (``v`` the class's residual variance, computed from the residuals themselves and stored
beside the quantiles, ``n`` the observations' white-noise variance, :func:`noise_variance`,
estimated in ``fit`` from the observations alone): exact when residual and noise are Gaussian
and independent, an approximation otherwise. Where the model's own error is small beside the
noise, ``v - n`` is a small difference of two larger numbers, so ``v`` must be the residuals'
variance and not that of the stored quantiles (which leave out the outer 0.5 % on each side
and fall 5 % short for Gaussian residuals, 10 % for Laplace ones: enough to halve ``v - n``).

:class:`Conformal` wraps any registered imputer this way, cross-fitted: it splits the observed
entries into ``folds`` parts (whole days or single entries, as ``mask_kind`` says), fits the
wrapped model once per part on the other parts, keeps the residuals at that part's entries (so
every observation gives one residual from a fit that never saw it), and fits the model again on
everything. Why not one split: under whole-day gaps the residuals of a day share its error, so
a fifth of the days (about 25 in the built-in scenario's training period) made a calibration
whose 90 % interval held 77-91 % over seeds; every day gives about five times as many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..data.contract import TARGET
from .base import DEFAULT_QUANTILES, Imputer, as_quantiles, integer
from .baselines import BASELINES
from .covariate import COVARIATE_BASELINES

#: The references a conformal wrapper can take (every baseline; the registry's ALL_BASELINES).
REFERENCES: dict[str, type[Imputer]] = {**BASELINES, **COVARIATE_BASELINES}

#: Lower edges (days) of the gap classes: 1, 2-3, 4-7, 8-15, 16-31 and 32 or more days from the
#: cell's nearest observation.
GAP_EDGES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
#: Fewest residuals a class needs to have its own quantiles.
MIN_COUNT = 50
#: Levels at which the residual quantiles are stored (0.5 % to 99.5 %); others are interpolated.
STORED_LEVELS = np.round(np.linspace(0.005, 0.995, 199), 4)
#: A gap longer than any record: a cell never observed.
NEVER = 10**6
#: What an interval is for: a new observation of the entry, or its noise-free soil moisture.
TARGETS = ("observation", "soil_moisture")
#: Lags (cells) of the same-day semivariogram whose straight line gives the nugget.
NUGGET_LAGS = (1, 2, 3, 4)
#: The soil-moisture interval keeps at least this share of the observation interval's spread.
MIN_SCALE = 0.2


def noise_variance(values: np.ndarray) -> float:
    """Variance (m³/m³)² of the observations' white noise: the nugget of the same-day
    semivariogram. ``γ(h)``, half the mean squared difference of observed cells ``h`` cells
    apart along rows and columns on the same day, is fitted by a straight line over
    :data:`NUGGET_LAGS` and extrapolated to ``h = 0`` (retrieval noise and variation below a
    cell's size; a spatially smooth field adds nothing there). 0 without enough pairs."""
    z = np.asarray(values, dtype=np.float64)
    gamma, lags = [], []
    for h in NUGGET_LAGS:
        diffs = [(z[:, :, h:] - z[:, :, :-h]).ravel(), (z[:, h:, :] - z[:, :-h, :]).ravel()]
        d = np.concatenate(diffs)
        d = d[np.isfinite(d)]
        if d.size >= 30:
            gamma.append(0.5 * float(np.mean(d**2)))
            lags.append(h)
    if len(lags) < 2:
        return 0.0
    _, nugget = np.polyfit(lags, gamma, 1)
    return float(np.clip(nugget, 0.0, min(gamma)))


def check_target_kind(target: str) -> str:
    """``target`` if it is one of :data:`TARGETS`, else a ValueError naming it."""
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: expected one of {', '.join(TARGETS)}")
    return target


def gap_days(observed: np.ndarray) -> np.ndarray:
    """(time, y, x) days from each entry to its cell's nearest observed day (0 where observed,
    :data:`NEVER` in a cell never observed)."""
    obs = np.asarray(observed, dtype=bool)
    t = np.arange(obs.shape[0])[:, None, None]
    last = np.where(obs, t, -NEVER)
    last = np.maximum.accumulate(last, axis=0)
    nxt = np.where(obs, t, 2 * NEVER)
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    return np.minimum(np.minimum(t - last, nxt - t), NEVER)


def strata(observed: np.ndarray) -> np.ndarray:
    """(time, y, x) class of every entry: gap class x 2 + (1 when its day has an observation)."""
    obs = np.asarray(observed, dtype=bool)
    gap = np.searchsorted(np.asarray(GAP_EDGES), gap_days(obs), side="right") - 1
    seen_day = obs.reshape(obs.shape[0], -1).any(axis=1)[:, None, None]
    return np.maximum(gap, 0) * 2 + seen_day.astype(np.int64)


N_STRATA = 2 * len(GAP_EDGES)


def _conformal_level(q: float, n: int) -> float:
    """The empirical level whose quantile covers ``q`` with ``n`` calibration residuals."""
    if q > 0.5:
        return min(1.0, np.ceil((n + 1) * q) / n)
    if q < 0.5:
        return max(0.0, np.floor((n + 1) * q) / n)
    return 0.5


@dataclass
class ResidualQuantiles:
    """Residual quantiles per class (``table``: (classes, levels) with NaN rows for classes
    pooled with others), the count behind each row, the observations' noise variance and the
    residual variance of each row (None in calibrations saved before it was stored: then the
    stored quantiles' variance stands in, which is biased low, module text)."""

    table: np.ndarray
    counts: np.ndarray
    noise_var: float = 0.0
    variances: np.ndarray | None = None

    @classmethod
    def fit(
        cls, residuals: np.ndarray, classes: np.ndarray | None = None, noise_var: float = 0.0
    ) -> ResidualQuantiles:
        """From residuals at hidden entries and their classes (one class when None), and the
        observations' noise variance (:func:`noise_variance`) for soil-moisture intervals."""
        r = np.asarray(residuals, dtype=np.float64).ravel()
        c = np.zeros(r.size, int) if classes is None else np.asarray(classes).ravel()
        keep = np.isfinite(r)
        r, c = r[keep], c[keep]
        if r.size < 2:
            raise ValueError(
                f"{r.size} held-out residual(s): at least 2 are needed to calibrate intervals"
            )
        n_rows = N_STRATA + 3  # the classes, each kind of day pooled, everything pooled
        table = np.full((n_rows, STORED_LEVELS.size), np.nan)
        counts = np.zeros(n_rows, dtype=np.int64)
        variances = np.full(n_rows, np.nan)
        groups = [c == k for k in range(N_STRATA)]
        groups += [c % 2 == 0, c % 2 == 1, np.ones(r.size, bool)]
        for k, sel in enumerate(groups):
            counts[k] = int(sel.sum())
            if counts[k] >= MIN_COUNT or k == n_rows - 1:
                table[k] = np.quantile(r[sel], STORED_LEVELS)
                variances[k] = float(np.var(r[sel]))
        return cls(table, counts, float(noise_var), variances)

    def _row(self, k: int) -> int:
        """The row serving class ``k``: its own, else its kind of day's, else the pooled one."""
        if self.counts[k] >= MIN_COUNT:
            return k
        day_kind = N_STRATA + (k % 2)
        return day_kind if self.counts[day_kind] >= MIN_COUNT else N_STRATA + 2

    def _scaled(self, row: int, target: str) -> np.ndarray:
        """Row ``row``'s residual quantiles, narrowed for a soil-moisture interval."""
        values = self.table[row]
        if check_target_kind(target) == "observation" or self.noise_var <= 0:
            return values
        stored = np.nan if self.variances is None else self.variances[row]
        var = float(stored) if np.isfinite(stored) else float(np.var(values))
        scale = np.sqrt(max(var - self.noise_var, MIN_SCALE**2 * var) / var) if var > 0 else 1.0
        middle = np.interp(0.5, STORED_LEVELS, values)
        return middle + (values - middle) * scale

    def offsets(
        self, quantiles: Sequence[float], classes: np.ndarray, target: str = "observation"
    ) -> np.ndarray:
        """(levels, *classes.shape) offsets to add to the estimate for each quantile level, for
        an interval of a new observation or of the soil moisture (``target``, module text)."""
        classes = np.asarray(classes)
        out = np.empty((len(quantiles), *classes.shape), dtype=np.float64)
        for k in range(N_STRATA):
            sel = classes == k
            if not sel.any():
                continue
            row = self._row(k)
            n, values = int(self.counts[row]), self._scaled(row, target)
            for j, q in enumerate(quantiles):
                level = np.clip(_conformal_level(q, n), STORED_LEVELS[0], STORED_LEVELS[-1])
                out[j][sel] = np.interp(level, STORED_LEVELS, values)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (checkpoints keep it)."""
        return {
            "levels": STORED_LEVELS.tolist(),
            "counts": self.counts.tolist(),
            "table": [to_json_floats(row) for row in self.table],
            "noise_var": self.noise_var,
            **({} if self.variances is None else {"variances": to_json_floats(self.variances)}),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "calibration") -> ResidualQuantiles:
        """Back from :meth:`to_dict`; ValueError naming the bad key otherwise."""
        keys = {"levels", "counts", "table"}
        if not isinstance(d, dict) or not keys <= set(d) <= keys | {"noise_var", "variances"}:
            raise ValueError(
                f"{where}: expected an object with levels, counts, table (and noise_var, variances)"
            )
        noise = d.get("noise_var", 0.0)
        if not isinstance(noise, int | float) or isinstance(noise, bool) or not 0 <= noise < 0.01:
            raise ValueError(f"{where}.noise_var = {noise!r}: expected a variance in [0, 0.01)")
        if not np.allclose(np.asarray(d["levels"], float), STORED_LEVELS):
            raise ValueError(f"{where}.levels: expected the 199 levels 0.005 .. 0.995")
        counts = np.asarray(d["counts"])
        if counts.shape != (N_STRATA + 3,) or counts.dtype.kind != "i" or (counts < 0).any():
            raise ValueError(f"{where}.counts: expected {N_STRATA + 3} counts of 0 or more")
        try:
            table = np.array([from_json_floats(row) for row in d["table"]])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}.table: expected rows of numbers ({err})") from err
        if table.shape != (N_STRATA + 3, STORED_LEVELS.size):
            raise ValueError(f"{where}.table: expected {N_STRATA + 3} rows of 199 values")
        used = counts >= MIN_COUNT
        used[-1] = True
        rows = table[used]
        if not np.isfinite(rows).all() or (np.diff(rows, axis=1) < 0).any():
            raise ValueError(f"{where}.table: a used row holds a non-finite or decreasing value")
        if (np.abs(rows) > 1).any():
            raise ValueError(f"{where}.table: residuals beyond ±1 m³/m³")
        variances = None
        if "variances" in d:
            try:
                variances = np.array(from_json_floats(d["variances"]))
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}.variances: expected numbers ({err})") from err
            if variances.shape != (N_STRATA + 3,) or not (
                np.isfinite(variances[used]).all() and (variances[used] >= 0).all()
            ):
                raise ValueError(
                    f"{where}.variances: expected {N_STRATA + 3} variances, finite and at least "
                    "0 for every used row"
                )
        return cls(table, counts, float(noise), variances)


def to_json_floats(values: np.ndarray) -> list[float | None]:
    """``values`` as JSON numbers, None for NaN (a calibration table's pooled rows)."""
    return [None if not np.isfinite(v) else float(v) for v in values]


def from_json_floats(values: Any) -> list[float]:
    """Back from :func:`to_json_floats` (None to NaN); TypeError or ValueError on non-numbers."""
    return [np.nan if v is None else float(v) for v in values]


def fold_of_entries(observed: np.ndarray, folds: int, kind: str, seed: int = 0) -> np.ndarray:
    """(time, y, x) fold number (0 .. ``folds`` - 1) of every observed entry, -1 elsewhere:
    whole days dealt round-robin in a random order (``kind="time_slice"``, so a fold holds
    whole days), or single entries the same way (``"point"``). Folds differ in size by at
    most one day or entry."""
    obs = np.asarray(observed, dtype=bool)
    rng = np.random.default_rng(seed)
    out = np.full(obs.shape, -1, dtype=np.int64)
    if kind == "time_slice":
        days = np.flatnonzero(obs.reshape(obs.shape[0], -1).any(axis=1))
        of_day = np.full(obs.shape[0], -1, dtype=np.int64)
        of_day[rng.permutation(days)] = np.arange(days.size) % folds
        out[obs] = np.broadcast_to(of_day[:, None, None], obs.shape)[obs]
    else:
        n = int(obs.sum())
        out[obs] = rng.permutation(n) % folds
    return out


class Conformal(Imputer):
    """Any registered imputer (``base``) with cross-fitted conformal quantiles (module text).

    The observed entries are split into ``folds`` parts (whole days for
    ``mask_kind="time_slice"``, single entries for ``"point"``), each held out once to
    calibrate; the point estimate is ``base``'s, fitted on every observation. Fitting costs
    ``folds + 1`` fits of ``base``.
    """

    probabilistic: ClassVar[bool] = True

    def __init__(
        self,
        base: str = "regression",
        folds: int = 5,
        mask_kind: str = "time_slice",
        seed: int = 0,
    ):
        self.base = base
        self.folds = folds
        self.mask_kind = mask_kind
        self.seed = seed

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.base}-conformal"

    @property
    def transferable(self) -> bool:  # type: ignore[override]
        return False  # the calibration classes need the period's own observations

    def _validate_params(self) -> None:
        if self.base not in REFERENCES:
            raise ValueError(f"base={self.base!r}: expected one of {', '.join(REFERENCES)}")
        if isinstance(self.folds, bool) or integer("folds", self.folds) < 2:
            raise ValueError(f"folds={self.folds!r}: expected a whole number of 2 or more")
        if self.mask_kind not in ("time_slice", "point"):
            raise ValueError(f"mask_kind={self.mask_kind!r}: expected 'time_slice' or 'point'")
        if integer("seed", self.seed) < 0:
            raise ValueError(f"seed={self.seed!r}: expected 0 or more")

    def fit(self, ds: xr.Dataset) -> Conformal:
        """Calibrate on each fold from a fit without it, then fit ``base`` on every
        observation."""
        self._validate_params()
        values = np.asarray(ds[TARGET].values, float)
        observed = np.isfinite(values)
        fold = fold_of_entries(observed, int(self.folds), self.mask_kind, seed=self.seed + 11)
        residuals, classes = [], []
        for k in range(int(self.folds)):
            hidden = fold == k
            if not hidden.any():
                continue
            known = ds.assign({TARGET: ds[TARGET].where(~hidden)})
            estimate = REFERENCES[self.base]().fit(known).impute(known).values
            residuals.append(values[hidden] - estimate[hidden])
            classes.append(strata(observed & ~hidden)[hidden])
        if not residuals:
            raise ValueError(f"{TARGET}: no observed entry to calibrate {self.name} on")
        self.bands_ = ResidualQuantiles.fit(
            np.concatenate(residuals), np.concatenate(classes), noise_variance(values)
        )
        self.fitted_ = REFERENCES[self.base]().fit(ds)
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """``base``'s field for ``ds``."""
        self._check_fitted("fitted_")
        out = self.fitted_.impute(ds)
        out.attrs["model"] = self.name
        return out

    def impute_distribution(
        self,
        ds: xr.Dataset,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target: str = "observation",
    ) -> xr.Dataset:
        """The field and its quantiles (``soil_moisture_quantile``) for ``target``."""
        self._check_fitted("fitted_", "bands_")
        point = self.impute(ds)
        return with_bands(ds, point, self.bands_, quantiles, self, target)


def with_bands(
    ds: xr.Dataset,
    point: xr.DataArray,
    bands: ResidualQuantiles,
    quantiles: Sequence[float],
    imputer: Imputer,
    target: str = "observation",
) -> xr.Dataset:
    """``point`` and its quantiles from ``bands`` for the classes of ``ds``'s observations."""
    classes = strata(np.isfinite(np.asarray(ds[TARGET].values)))
    levels = tuple(quantiles)
    values = point.values[None].astype(np.float64) + bands.offsets(levels, classes, target)
    return as_quantiles(ds, point, values, levels, imputer, target)
