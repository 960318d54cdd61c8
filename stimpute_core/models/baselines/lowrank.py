"""Low-rank baselines: DINEOF (iterative truncated SVD) and matrix factorisation."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import xarray as xr
from scipy import sparse

from ..base import as_output, integer, positive_int, positive_number
from .common import _CellMeanImputer

#: DINEOF: extra vectors in the subspace iteration beyond the rank, and power steps per iteration.
_OVERSAMPLE = 5
_OVERSAMPLE = 5
_POWER_ITERATIONS = 1
#: DINEOF: up to this min(time, cells) the subspace is the whole space, so the SVD is exact.
_FULL_BASIS_MAX = 64
#: Matrix factorisation: power steps of the subspace iteration giving the starting factors.
_MF_POWER_ITERATIONS = 2


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
    rank_: int
    cv_errors_: dict[int, float]

    def __init__(
        self,
        max_rank: int = 10,
        cv_fraction: float = 0.03,
        tol: float = 1e-3,
        max_iter: int = 100,
        seed: int = 0,
    ):
        self.max_rank = max_rank
        self.cv_fraction = cv_fraction
        self.tol = tol
        self.max_iter = max_iter
        self.seed = seed

    def _validate_params(self) -> None:
        positive_int("max_rank", self.max_rank)
        if not (positive_number(self.cv_fraction) and self.cv_fraction < 1):
            raise ValueError(f"cv_fraction must lie in (0, 1), got {self.cv_fraction!r}")
        if not positive_number(self.tol):
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        positive_int("max_iter", self.max_iter)
        integer("seed", self.seed)

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
    cell_factors_: np.ndarray
    scale_: float
    day_penalty_: float
    n_iter_: int

    def __init__(
        self,
        rank: int = 10,
        l2: float = 1e-2,
        max_iter: int = 50,
        tol: float = 1e-4,
        seed: int = 0,
    ):
        self.rank = rank
        self.l2 = l2
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _validate_params(self) -> None:
        positive_int("rank", self.rank)
        # l2 = 0 would leave the normal equations of days (cells) with fewer observations than
        # the rank singular.
        if not positive_number(self.l2):
            raise ValueError(f"l2 must be positive, got {self.l2!r}")
        positive_int("max_iter", self.max_iter)
        if not positive_number(self.tol):
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        integer("seed", self.seed)

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
