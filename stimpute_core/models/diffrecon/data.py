"""DiffRecon's inputs: the coarse series, the point tokens of the sparse observations, the
conditioning channels and the training crops (numpy only; the networks are in :mod:`.core`).

Units: stage one works on the coarse value standardised by the coarse observations' mean and
spread (``c_mean``, ``c_std``); stage two on the fine *anomaly* ``(sm - c_med) / y_std``, the
departure of the 1 km value from the completed coarse field's median ``c_med``. Covariates are
encoded by the ST-Transformer's :class:`~..st_transformer.data.Normalizer` (fitted on the
training Dataset with the validation entries hidden).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from ...data.contract import TARGET
from ..features import COARSE

#: Point tokens per fine entry: previous and next observation of the cell, same-day means in
#: 3 x 3 and 7 x 7 neighbourhoods, the day's mean over the grid and the cell's mean in the slab.
FINE_TOKENS = 6
#: Point tokens per coarse day: previous and next observed coarse value.
COARSE_TOKENS = 2
#: Features of one token: value, distance (or observed share) and whether it exists.
TOKEN_DIM = 3
#: Gaps (days) beyond which the previous / next observation counts as absent.
GAP_CAP = 60
#: Harmonics of the day of year (the temporal encoder's period features).
N_HARMONICS = 2


@dataclass
class Scales:
    """What the diffusion's units depend on, learned in ``fit`` from the training observations."""

    y_mean: float
    y_std: float
    c_mean: float
    c_std: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str) -> Scales:
        if not isinstance(d, dict) or sorted(d) != sorted(cls.__dataclass_fields__):
            raise ValueError(f"{where}: expected the keys {sorted(cls.__dataclass_fields__)}")
        for key, value in d.items():
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not np.isfinite(value) or not (0 < value <= 1 if "std" in key else
                                                        0 <= value <= 1):  # fmt: skip
                raise ValueError(f"{where}.{key}={value!r}: expected a finite number in m³/m³ "
                                 "(spreads above 0, at most 1)")  # fmt: skip
        return cls(**d)


def coarse_cube(ds: xr.Dataset) -> np.ndarray:
    """The coarse product ``sm_36km`` as a (time, y, x) float64 array (NaN = no value)."""
    if COARSE not in ds.data_vars:
        raise ValueError(
            f"diffrecon needs the coarse product '{COARSE}' (its stage one completes it); the "
            "Dataset has none"
        )
    return np.broadcast_to(np.asarray(ds[COARSE].values, np.float64), ds[TARGET].shape).copy()


def coarse_groups(coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct coarse series ``(G, T)`` and each fine cell's series index ``(H, W)``: the
    fine cells of one coarse cell share one series (on the built-in scenario: one series)."""
    t, h, w = coarse.shape
    rows = np.where(np.isfinite(coarse), coarse, -999.0).reshape(t, h * w).T
    series, label = np.unique(rows, axis=0, return_inverse=True)
    return np.where(series == -999.0, np.nan, series), label.reshape(h, w)


def harmonics(times: np.ndarray) -> np.ndarray:
    """(T, 2 * N_HARMONICS) sines and cosines of the day of year (annual, half-annual)."""
    doy = pd.DatetimeIndex(times).day_of_year.to_numpy()
    angle = 2 * np.pi * (doy - 1) / 365.25
    parts = [f(k * angle) for k in range(1, N_HARMONICS + 1) for f in (np.sin, np.cos)]
    return np.stack(parts, axis=-1).astype(np.float32)


def _prev_next(v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Value and gap (days) of the last observation at or before and the next at or after each
    entry along axis 0 (NaN = unobserved); gap ``GAP_CAP`` and value 0 where there is none."""
    obs = np.isfinite(v)
    n = v.shape[0]
    t = np.arange(n).reshape(-1, *([1] * (v.ndim - 1)))
    last = np.maximum.accumulate(np.where(obs, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(obs, t, n)[::-1], axis=0)[::-1]
    filled = np.nan_to_num(v)
    out = []
    for idx, gap in ((last, t - last), (nxt, nxt - t)):
        ok = (idx >= 0) & (idx < n) & (gap <= GAP_CAP)
        value = np.take_along_axis(filled, np.clip(idx, 0, n - 1), axis=0)
        out += [np.where(ok, value, 0.0), np.where(ok, gap, GAP_CAP), ok]
    return tuple(out)


def _gap_scale(gap: np.ndarray) -> np.ndarray:
    return np.log1p(gap) / np.log1p(GAP_CAP)


def fine_tokens(a: np.ndarray) -> np.ndarray:
    """(T, H, W, FINE_TOKENS, TOKEN_DIM) point tokens of the visible anomalies ``a`` (NaN where
    not visible; module text). Every statistic uses visible entries only."""
    obs = np.isfinite(a)
    v = np.where(obs, a, 0.0)
    pv, pg, pok, nv, ng, nok = _prev_next(a)
    tokens = [(pv, _gap_scale(pg), pok), (nv, _gap_scale(ng), nok)]
    for size in (3, 7):
        total = ndimage.uniform_filter(v, size=(1, size, size), mode="constant")
        count = ndimage.uniform_filter(obs.astype(np.float64), size=(1, size, size),
                                       mode="constant")  # fmt: skip
        has = count > 1e-9
        tokens.append((np.where(has, total / np.maximum(count, 1e-9), 0.0), count, has))
    day_n = obs.sum(axis=(1, 2), keepdims=True)
    day_v = v.sum(axis=(1, 2), keepdims=True) / np.maximum(day_n, 1)
    frac = day_n / obs[0].size
    tokens.append(tuple(np.broadcast_to(z, a.shape) for z in (day_v, frac, day_n > 0)))
    cell_n = obs.sum(axis=0, keepdims=True)
    cell_v = v.sum(axis=0, keepdims=True) / np.maximum(cell_n, 1)
    scale = np.log1p(cell_n) / np.log1p(30.0)
    tokens.append(tuple(np.broadcast_to(z, a.shape) for z in (cell_v, scale, cell_n > 0)))
    out = np.stack([np.stack([np.asarray(z, np.float32) for z in tok], -1) for tok in tokens], -2)
    return np.ascontiguousarray(out, dtype=np.float32)


def coarse_tokens(c: np.ndarray) -> np.ndarray:
    """(..., T, COARSE_TOKENS, TOKEN_DIM) tokens of the visible coarse values ``c`` (time last
    axis here: ``c`` is (..., T))."""
    moved = np.moveaxis(c, -1, 0)
    pv, pg, pok, nv, ng, nok = _prev_next(moved)
    toks = [np.stack([pv, _gap_scale(pg), pok], -1), np.stack([nv, _gap_scale(ng), nok], -1)]
    out = np.stack([np.moveaxis(t, 0, -2) for t in toks], -2)
    return out.astype(np.float32)


def coarse_context(u: np.ndarray, label: np.ndarray, times: np.ndarray, g: int) -> np.ndarray:
    """(T, D + harmonics) conditioning of coarse series ``g``: the covariates averaged over its
    fine cells, and the period features."""
    cells = label == g
    return np.concatenate([u[:, cells].mean(axis=1), harmonics(times)], axis=-1).astype(np.float32)


def fine_context(
    u: np.ndarray, c_med: np.ndarray, c_dep: np.ndarray, c_seen: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """(S, T, H, W, D + 3 + harmonics) stage-two conditioning per coarse sample: covariates,
    the completed coarse median, the sample's departure from it, whether the coarse was
    observed, and the period features. ``c_med``, ``c_seen``: (T, H, W); ``c_dep``: (S, T, H, W)."""
    s = c_dep.shape[0]
    t, h, w = c_med.shape
    per = np.concatenate(
        [u, c_med[..., None], c_seen[..., None].astype(np.float32),
         np.broadcast_to(harmonics(times)[:, None, None], (t, h, w, 2 * N_HARMONICS))],
        axis=-1,
    )  # fmt: skip
    per = np.broadcast_to(per[None], (s, *per.shape))
    return np.concatenate([per, c_dep[..., None]], axis=-1).astype(np.float32)


def n_fine_context(n_covariates: int) -> int:
    """Channels of :func:`fine_context` for ``n_covariates`` encoded covariates."""
    return n_covariates + 3 + 2 * N_HARMONICS


def n_coarse_context(n_covariates: int) -> int:
    """Channels of :func:`coarse_context`."""
    return n_covariates + 2 * N_HARMONICS


def slab(t0: int, length: int, n_time: int, extend: int) -> tuple[int, int]:
    """Days ``[a, b)`` of the slab around the window ``[t0, t0 + length)`` that point tokens
    are computed on (``extend`` days either side, within the record)."""
    return max(0, t0 - extend), min(n_time, t0 + length + extend)
