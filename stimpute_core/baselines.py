"""Classical gap-filling baselines: mean, climatology, linear interpolation, IDW, DINEOF, MF and Kalman.

Each is an :class:`~stimpute_core.imputation.Imputer`: settings go to the constructor, ``fit(ds)``
learns from the observed ``soil_moisture(time, y, x)`` only (never the truth), ``impute(ds)``
returns a complete field for ``ds`` via :func:`~stimpute_core.imputation.as_output`, so observed
values pass through unchanged. Every baseline fits a per-cell mean (the mean of all observed values
for cells never observed) and falls back on it wherever its own method has nothing to go on, so no
output holds NaN. ``impute`` accepts another period on the fitted grid and refuses any other grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from .data.contract import TARGET
from .imputation import Imputer, as_output, positive_int

_DIMS = ("time", "y", "x")
#: Tolerance (metres) when comparing the grid given to ``impute`` with the fitted one.
_GRID_ATOL = 1e-3
#: DINEOF: extra vectors in the subspace iteration beyond the rank, and power steps per iteration.
_OVERSAMPLE = 5
_POWER_ITERATIONS = 1
#: DINEOF: up to this min(time, cells) the subspace is the whole space, so the SVD is exact.
_FULL_BASIS_MAX = 64
#: Matrix factorisation: power steps of the subspace iteration giving the starting factors.
_MF_POWER_ITERATIONS = 2
#: Largest grid (cells) for which IDW keeps the full cell-to-cell weight table in memory.
_IDW_TABLE_MAX_CELLS = 2500


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
    cell_mean_: np.ndarray | None = None
    grid_: dict[str, np.ndarray] | None = None

    def __init__(self) -> None:
        """No settings (an explicit signature keeps ``get_params`` empty)."""

    def _fit_cell_mean(self, ds: xr.Dataset) -> np.ndarray:
        """Validate ``ds``, store ``cell_mean_`` and ``grid_``; return the target values."""
        values = _target_values(ds, require_observed=True)
        self.cell_mean_ = _cell_means(values)
        self.grid_ = {d: np.asarray(ds[d].values, dtype=np.float64).copy() for d in ("y", "x")}
        return values

    def _prepare(self, ds: xr.Dataset) -> np.ndarray:
        """Check fitted and that ``ds`` lies on the fitted grid; return its target values."""
        self._check_fitted("cell_mean_", "grid_")
        values = _target_values(ds, require_observed=False)
        assert self.grid_ is not None
        for dim in ("y", "x"):
            fitted, given = self.grid_[dim], np.asarray(ds[dim].values, dtype=np.float64)
            if given.shape != fitted.shape:
                raise ValueError(
                    f"grid differs from the one {type(self).__name__} was fitted on: "
                    f"{dim} has {given.size} cells, fitted {fitted.size}"
                )
            if not np.allclose(given, fitted, rtol=0.0, atol=_GRID_ATOL):
                diff = float(np.max(np.abs(given - fitted)))
                raise ValueError(
                    f"grid differs from the one {type(self).__name__} was fitted on: "
                    f"{dim} coordinates differ by up to {diff:g} m"
                )
        return values

    def _mean_field(self, n_time: int) -> np.ndarray:
        assert self.cell_mean_ is not None
        return np.broadcast_to(self.cell_mean_, (n_time, *self.cell_mean_.shape))


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
    seasonal_: np.ndarray | None = None

    def __init__(self, window_days: int = 31):
        positive_int("window_days", window_days)
        self.window_days = int(window_days)

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


def _interpolate_time(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per-cell linear interpolation along axis 0 between finite values, edges held constant.

    Vectorised with running indices of the previous and next observation (same result as
    ``np.interp`` per cell). Cells without any finite value get ``fallback`` (y, x).
    """
    n_time = values.shape[0]
    obs = np.isfinite(values)
    t = np.arange(n_time).reshape(-1, *([1] * (values.ndim - 1)))
    prev = np.maximum.accumulate(np.where(obs, t, -1), axis=0)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(obs, t, n_time), 0), axis=0), 0)
    has_prev, has_next = prev >= 0, nxt < n_time
    v_prev = np.take_along_axis(values, np.clip(prev, 0, n_time - 1), axis=0)
    v_next = np.take_along_axis(values, np.clip(nxt, 0, n_time - 1), axis=0)
    span = np.maximum(nxt - prev, 1)
    frac = (t - prev) / span
    inner = v_prev + frac * (v_next - v_prev)
    return np.where(
        has_prev & has_next,
        inner,
        np.where(has_prev, v_prev, np.where(has_next, v_next, fallback)),
    )


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
        return as_output(ds, _interpolate_time(values, self.cell_mean_), self)


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
        if not power > 0:
            raise ValueError(f"power must be positive, got {power!r}")
        if max_neighbours is not None and (
            int(max_neighbours) != max_neighbours or max_neighbours < 1
        ):
            raise ValueError(
                f"max_neighbours must be None or a positive integer, got {max_neighbours!r}"
            )
        self.power = float(power)
        self.max_neighbours = None if max_neighbours is None else int(max_neighbours)

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


def _frob_inner(a1: np.ndarray, b1: np.ndarray, a0: np.ndarray, b0: np.ndarray) -> float:
    """Frobenius inner product of ``a1 @ b1.T`` and ``a0 @ b0.T`` without forming them."""
    return float(np.sum((a1.T @ a0) * (b1.T @ b0)))


def _dineof(
    shape: tuple[int, int],
    known_idx: np.ndarray,
    known_values: np.ndarray,
    max_rank: int,
    *,
    tol: float,
    max_iter: int,
    rng: np.random.Generator,
    on_rank: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DINEOF iterations on a (time, cells) anomaly matrix; returns factors ``a``, ``b``.

    The matrix is known at the sorted flat indices ``known_idx``; elsewhere it holds the current
    reconstruction ``a @ b.T`` (0 to start). It is never formed: it is kept as that low-rank
    product plus a sparse correction at the known entries (as in soft-impute, Mazumder et al.
    2010), so one iteration costs O(known entries × basis width), not O(time × cells). The
    truncated SVD is a block subspace iteration (Halko et al. 2011) on ``_OVERSAMPLE`` more
    vectors than the rank, warm-started from the previous iteration's right singular vectors
    (whole space, hence exact, when min(time, cells) <= ``_FULL_BASIS_MAX``); its Rayleigh–Ritz
    step gives the leading ``k`` singular triplets. Ranks 1..``max_rank`` run in turn, each until
    the relative change of the reconstructed missing entries is below ``tol`` or ``max_iter``
    iterations; ``on_rank(k, a, b)`` is called after each rank.
    """
    n_time, n_cells = shape
    rows, cols = np.divmod(known_idx, n_cells)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_time))])
    resid = sparse.csr_matrix((known_values.astype(np.float64), cols, indptr), shape=shape)
    a, b = np.zeros((n_time, 0)), np.zeros((n_cells, 0))
    r_known = np.zeros(known_idx.size)
    smallest = min(shape)
    basis = np.zeros((n_cells, 0))

    def times(v: np.ndarray) -> np.ndarray:
        return a @ (b.T @ v) + resid @ v

    def times_t(u: np.ndarray) -> np.ndarray:
        return b @ (a.T @ u) + resid.T @ u

    for k in range(1, max_rank + 1):
        width = smallest if smallest <= _FULL_BASIS_MAX else min(k + _OVERSAMPLE, smallest)
        if basis.shape[1] < width:
            extra = rng.standard_normal((n_cells, width - basis.shape[1]))
            basis, _ = np.linalg.qr(np.hstack([basis, extra]))
        for _ in range(max_iter):
            for _ in range(_POWER_ITERATIONS):
                basis, _ = np.linalg.qr(times_t(times(basis)))
            y = times(basis)
            _, rot = np.linalg.eigh(y.T @ y)
            rot = rot[:, ::-1]  # descending singular values
            basis, y = basis @ rot, y @ rot
            a_new, b_new = y[:, :k], basis[:, :k]
            r_new = np.einsum("ij,ij->i", a_new[rows], b_new[cols])
            norm2_new = _frob_inner(a_new, b_new, a_new, b_new)
            full2 = norm2_new + _frob_inner(a, b, a, b) - 2 * _frob_inner(a_new, b_new, a, b)
            change2 = max(full2 - float(np.sum((r_new - r_known) ** 2)), 0.0)
            scale2 = max(norm2_new - float(np.sum(r_new**2)), 0.0)
            a, b, r_known = a_new, b_new, r_new
            resid.data[:] = known_values - r_known
            if change2 <= tol**2 * scale2 or scale2 == 0.0:
                break
        if on_rank is not None:
            on_rank(k, a, b)
    return a, b


class DINEOFImputer(_CellMeanImputer):
    """Data Interpolating Empirical Orthogonal Functions (Beckers & Rixen 2003).

    The (time × cell) matrix of anomalies about the fitted per-cell mean has its missing entries
    set to 0 and is then reconstructed iteratively from its leading ``k`` EOFs (truncated SVD),
    replacing only the missing entries, until their relative change is below ``tol`` or after
    ``max_iter`` iterations. Ranks ``k = 1, 2, ...`` are run in turn, each warm-started from the
    previous one's reconstruction, as in the original method.

    ``fit`` picks the rank by cross-validation: a ``cv_fraction`` of the observed entries (drawn
    with ``seed``) is hidden, ranks 1..``max_rank`` are run and the RMSE on the hidden entries is
    recorded in ``cv_errors_``; ``rank_`` is the rank with the lowest error. ``impute(ds)`` reruns
    the reconstruction, ranks 1..``rank_``, on all of ``ds``'s own observations.

    DINEOF therefore learns from the period it reconstructs: its EOFs come from ``ds`` at
    ``impute``; only the per-cell mean and the rank come from ``fit``. Cells never observed are
    still reconstructed (per-cell mean plus an EOF reconstruction that stays near 0 anomaly).
    """

    name: ClassVar[str] = "dineof"
    rank_: int | None = None
    cv_errors_: dict[int, float] | None = None

    def __init__(
        self,
        max_rank: int = 10,
        cv_fraction: float = 0.03,
        tol: float = 1e-3,
        max_iter: int = 100,
        seed: int = 0,
    ):
        positive_int("max_rank", max_rank)
        if not 0 < cv_fraction < 1:
            raise ValueError(f"cv_fraction must lie in (0, 1), got {cv_fraction!r}")
        if not tol > 0:
            raise ValueError(f"tol must be positive, got {tol!r}")
        positive_int("max_iter", max_iter)
        self.max_rank = int(max_rank)
        self.cv_fraction = float(cv_fraction)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.seed = int(seed)

    def _anomalies(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted flat indices of the observed entries and their anomalies (time, cells)."""
        flat = (values - self.cell_mean_).reshape(-1)
        idx = np.flatnonzero(np.isfinite(flat))
        return idx, flat[idx]

    def fit(self, ds: xr.Dataset) -> DINEOFImputer:
        """Learn the per-cell mean and pick ``rank_`` by cross-validation on hidden entries.

        At least one entry is hidden and one kept; with a single observed entry there is
        nothing to validate on, so ``rank_`` is 1 and ``cv_errors_`` empty. Ranks stop at
        min(time, cells). The per-cell mean includes the hidden entries: a small optimism in
        the CV errors that does not affect their comparison across ranks.
        """
        values = self._fit_cell_mean(ds)
        shape = (values.shape[0], values.shape[1] * values.shape[2])
        idx, anomaly = self._anomalies(values)
        n_cv = min(max(1, round(self.cv_fraction * idx.size)), idx.size - 1)
        errors: dict[int, float] = {}
        if n_cv >= 1:
            rng = np.random.default_rng(self.seed)
            hide = np.zeros(idx.size, dtype=bool)
            hide[rng.choice(idx.size, size=n_cv, replace=False)] = True
            cv_rows, cv_cols = np.divmod(idx[hide], shape[1])
            cv_true = anomaly[hide]

            def record(k: int, a: np.ndarray, b: np.ndarray) -> None:
                pred = np.einsum("ij,ij->i", a[cv_rows], b[cv_cols])
                errors[k] = float(np.sqrt(np.mean((pred - cv_true) ** 2)))

            _dineof(
                shape,
                idx[~hide],
                anomaly[~hide],
                min(self.max_rank, *shape),
                tol=self.tol,
                max_iter=self.max_iter,
                rng=rng,
                on_rank=record,
            )
        self.cv_errors_ = errors
        self.rank_ = min(errors, key=errors.__getitem__) if errors else 1
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Reconstruct ``ds`` from its own observations with ranks 1..``rank_``."""
        self._check_fitted("rank_")
        values = self._prepare(ds)
        assert self.rank_ is not None and self.cell_mean_ is not None
        n_time = values.shape[0]
        shape = (n_time, self.cell_mean_.size)
        idx, anomaly = self._anomalies(values)
        estimate = np.array(self._mean_field(n_time))
        if idx.size and idx.size < values.size:
            a, b = _dineof(
                shape,
                idx,
                anomaly,
                min(self.rank_, *shape),
                tol=self.tol,
                max_iter=self.max_iter,
                rng=np.random.default_rng(self.seed),
            )
            estimate += (a @ b.T).reshape(values.shape)
        return as_output(ds, estimate, self)


def _ridge_rows(mask: np.ndarray, x: np.ndarray, factors: np.ndarray, l2: float) -> np.ndarray:
    """Ridge regression of each row of ``x`` (rows, cols) on ``factors`` (cols, k), observed only.

    ``mask`` is the 0/1 float mask of observed entries and ``x`` is 0 where unobserved. Row ``r``
    solves ``(G_r + l2 I) u_r = factorsᵀ (m_r ∘ x_r)`` with ``G_r = Σ_c m_rc f_c f_cᵀ``; all the
    Gram matrices come from one product ``mask @ outer`` and one batched solve. A row with no
    observed entry gets ``u_r = 0`` exactly.
    """
    k = factors.shape[1]
    outer = (factors[:, :, None] * factors[:, None, :]).reshape(-1, k * k)
    gram = (mask @ outer).reshape(-1, k, k) + l2 * np.eye(k)
    return np.linalg.solve(gram, (x @ factors)[..., None])[..., 0]


def _spectral_factors(
    x: np.ndarray, observed_fraction: float, rank: int, rng: np.random.Generator
) -> np.ndarray:
    """Starting cell factors (cells, rank): the leading right singular vectors of ``x``.

    ``x`` (time, cells) is 0 where missing, so ``x / observed_fraction`` estimates the full
    matrix; its truncated SVD ``A S Bᵀ`` (a seeded subspace iteration with ``_OVERSAMPLE`` extra
    vectors) gives the balanced factors ``B √S``. Starting ALS there rather than at random avoids
    the poor local minima a random start sometimes falls into. Columns beyond min(time, cells)
    are 0 (they stay 0: the rank is then min(time, cells)).
    """
    width = min(rank + _OVERSAMPLE, *x.shape)
    basis, _ = np.linalg.qr(rng.standard_normal((x.shape[1], width)))
    for _ in range(_MF_POWER_ITERATIONS):
        basis, _ = np.linalg.qr(x.T @ (x @ basis))
    _, sing, rot = np.linalg.svd(x @ basis, full_matrices=False)
    k = min(rank, width)
    factors = np.zeros((x.shape[1], rank))
    factors[:, :k] = (basis @ rot.T[:, :k]) * np.sqrt(sing[:k] / observed_fraction)
    return factors


class MatrixFactorizationImputer(_CellMeanImputer):
    """Low-rank matrix factorisation of the (time × cell) anomalies, as ``fancyimpute``'s.

    The anomalies about the per-cell mean are divided by their RMS over the observed entries
    (``scale_``) and factorised as ``X ≈ U Vᵀ`` (``U``: time × ``rank``, ``V``: cells × ``rank``)
    by alternating ridge least squares on the observed entries only. ``l2`` is relative to the
    data: the objective is the mean squared error per observed entry plus ``l2`` times the mean
    squared norm of a day's and of a cell's factors, i.e. ``Σ_obs (x − u_t·v_n)² + l2 |obs|
    (‖U‖² / T + ‖V‖² / N)``. The ridge weights are then ``l2`` times the mean number of
    observations per day (``U``) or per cell (``V``), so neither the data's units nor the size
    of the grid or period change its meaning (a fixed weight over-fits the many sparse rows).
    Iterations (a ``U`` then a ``V`` step) start from the truncated SVD of the zero-filled
    anomalies (``seed`` draws its random start) and stop when the observed-entry RMSE improves by
    less than ``tol`` relatively, or after ``max_iter``.

    ``fit`` learns the per-cell mean and the cell factors ``cell_factors_`` (``V``); ``impute(ds)``
    solves the ``U`` step (with the fit's ridge weight ``day_penalty_``) for the days of ``ds``
    from their observations and returns ``cell_mean_ + scale_ · U Vᵀ``. A day with no
    observation gets ``u_t = 0``, i.e. exactly the per-cell mean, so the method cannot help when
    whole days are missing; a cell never observed at fit gets ``v_n = 0``, i.e. its mean too.
    Unlike DINEOF (EOFs by truncated SVD, rank chosen by cross-validation, refitted on the imputed
    period), the rank is fixed and the factors are ridge-regularised and learnt at fit only.
    """

    name: ClassVar[str] = "mf"
    cell_factors_: np.ndarray | None = None
    scale_: float | None = None
    day_penalty_: float | None = None
    n_iter_: int | None = None

    def __init__(
        self,
        rank: int = 10,
        l2: float = 1e-2,
        max_iter: int = 50,
        tol: float = 1e-4,
        seed: int = 0,
    ):
        positive_int("rank", rank)
        # l2 = 0 would leave the normal equations of days (cells) with fewer observations than
        # the rank singular.
        if not l2 > 0:
            raise ValueError(f"l2 must be positive, got {l2!r}")
        positive_int("max_iter", max_iter)
        if not tol > 0:
            raise ValueError(f"tol must be positive, got {tol!r}")
        self.rank = int(rank)
        self.l2 = float(l2)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.seed = int(seed)

    def _scaled(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0/1 observed mask and scaled anomalies (0 where missing), both (time, cells)."""
        assert self.cell_mean_ is not None and self.scale_ is not None
        x = ((values - self.cell_mean_) / self.scale_).reshape(values.shape[0], -1)
        obs = np.isfinite(x)
        return obs.astype(np.float64), np.where(obs, x, 0.0)

    def fit(self, ds: xr.Dataset) -> MatrixFactorizationImputer:
        """Learn ``cell_mean_``, ``scale_`` and ``cell_factors_`` (cells, rank) by ALS."""
        values = self._fit_cell_mean(ds)
        rms = float(np.sqrt(np.nanmean((values - self.cell_mean_) ** 2)))
        self.scale_ = rms if rms > 0 else 1.0  # constant data: any scale, the factors are 0
        mask, x = self._scaled(values)
        n_time, n_cells = x.shape
        n_obs = mask.sum()
        day_penalty, cell_penalty = self.l2 * n_obs / n_time, self.l2 * n_obs / n_cells
        rng = np.random.default_rng(self.seed)
        v = _spectral_factors(x, n_obs / x.size, self.rank, rng)
        previous, n_iter = np.inf, 0
        while n_iter < self.max_iter:
            n_iter += 1
            u = _ridge_rows(mask, x, v, day_penalty)
            v = _ridge_rows(mask.T, x.T, u, cell_penalty)
            rmse = float(np.sqrt(np.sum((mask * (x - u @ v.T)) ** 2) / n_obs))
            if rmse == 0.0 or (np.isfinite(previous) and previous - rmse <= self.tol * previous):
                break
            previous = rmse
        self.cell_factors_, self.day_penalty_, self.n_iter_ = v, day_penalty, n_iter
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Fit each day's factors to its observations; estimate ``cell_mean_ + scale_ · U Vᵀ``."""
        self._check_fitted("cell_factors_", "scale_", "day_penalty_")
        values = self._prepare(ds)
        assert self.cell_factors_ is not None and self.scale_ is not None
        assert self.day_penalty_ is not None
        mask, x = self._scaled(values)
        u = _ridge_rows(mask, x, self.cell_factors_, self.day_penalty_)
        anomaly = (self.scale_ * (u @ self.cell_factors_.T)).reshape(values.shape)
        return as_output(ds, self._mean_field(values.shape[0]) + anomaly, self)


#: Kalman: prior variance of the level at the first step (diffuse start, in units of σ²).
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
    q_: np.ndarray | None = None

    def __init__(self, q_grid: tuple[float, ...] = _Q_GRID):
        grid = np.asarray(q_grid, dtype=np.float64).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
            raise ValueError(
                f"q_grid must be a non-empty sequence of positive numbers, got {q_grid!r}"
            )
        self.q_grid = tuple(float(q) for q in grid)

    def fit(self, ds: xr.Dataset) -> KalmanSmoothingImputer:
        """Learn ``cell_mean_`` and the per-cell ratio ``q_`` (y, x) by profile likelihood."""
        values = self._fit_cell_mean(ds)
        assert self.cell_mean_ is not None
        y = values.reshape(values.shape[0], -1)
        grid = np.asarray(self.q_grid)
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


#: Baseline classes by their ``name``.
BASELINES: dict[str, type[Imputer]] = {
    cls.name: cls
    for cls in (
        MeanImputer,
        ClimatologyImputer,
        LinearInterpolationImputer,
        IDWImputer,
        DINEOFImputer,
        MatrixFactorizationImputer,
        KalmanSmoothingImputer,
    )
}


def make_imputer(name: str, **kwargs: Any) -> Imputer:
    """A baseline by name (``BASELINES`` key) with constructor arguments ``kwargs``."""
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(
            f"unknown baseline {name!r}: known baselines are {', '.join(sorted(BASELINES))}"
        ) from None
    return cls(**kwargs)
