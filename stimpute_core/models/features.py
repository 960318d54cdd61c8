"""Inputs derived from the covariates alone: rain memory, the season and the coarse product's
anomaly.

Soil moisture at 5 cm answers to the rain of the past days to weeks and to the season; a model
that sees one day's weather has to learn that memory itself, and the ST-Transformer's 72-day
window holds only a few observed days per cell. These fields give it (and the covariate
references) the memory directly:

- ``api_<d>``: antecedent precipitation indices ``api_t = d * api_{t-1} + prcp_t`` for a few
  decays ``d`` (memories of about 3 days to a month);
- ``days_since_rain``: days since the last day with at least 1 mm, as ``log1p``;
- ``doy_sin``, ``doy_cos``: the day of the year on the unit circle;
- ``sm_36km_filled`` and ``sm_36km_anomaly``: the coarse product with its gaps interpolated in
  time, and its departure from its own 31-day running mean.

Every field is computed from the covariates of the Dataset it is given, never from
``soil_moisture`` or the truth, so no held-out entry can reach a model through it. A feature
that needs a missing covariate (no ``prcp``, no ``sm_36km``) is left out; a window where
``sm_36km`` exists but has no value gets NaN (missing) for its two fields.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from ..data.contract import TARGET

#: Decays of the antecedent precipitation indices (e-folding memories of 3, 7, 14 and 33 days).
API_DECAYS = (0.7, 0.85, 0.93, 0.97)
#: A day counts as rainy from this much precipitation (mm).
RAIN_DAY_MM = 1.0
COARSE = "sm_36km"
PRCP = "prcp"


def interpolate_time(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
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


def antecedent_precipitation(prcp: np.ndarray, decay: float = 0.9) -> np.ndarray:
    """Antecedent precipitation index ``api_t = decay * api_{t-1} + prcp_t`` along axis 0.

    Soil moisture answers to the rain of the last days, not only of the day itself; the index is
    the standard way to give a model that memory. Missing rain counts as none.
    """
    rain = np.nan_to_num(np.asarray(prcp, dtype=np.float64), nan=0.0)
    out = np.empty_like(rain)
    level = np.zeros(rain.shape[1:])
    for t in range(rain.shape[0]):
        level = decay * level + rain[t]
        out[t] = level
    return out


def days_since_rain(prcp: np.ndarray, threshold: float = RAIN_DAY_MM) -> np.ndarray:
    """Days since the last day with ``prcp >= threshold`` (0 on a rainy day), along axis 0.

    Before the first rainy day the count runs from the start of the record.
    """
    rain = np.nan_to_num(np.asarray(prcp, dtype=np.float64), nan=0.0) >= threshold
    out = np.empty(rain.shape, dtype=np.float64)
    count = np.zeros(rain.shape[1:])
    for t in range(rain.shape[0]):
        count = np.where(rain[t], 0.0, count + 1.0)
        out[t] = count
    return out


def fill_in_time(values: np.ndarray) -> np.ndarray:
    """A (time, ...) field with its gaps filled by linear interpolation in time per series (the
    edges held); a series with no value gets the mean of all values (0 when there is none)."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    overall = float(v[finite].mean()) if finite.any() else 0.0
    return interpolate_time(v, np.full(v.shape[1:], overall))


def derived_features(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The derived (time, y, x) fields of ``ds`` by name, as float32 (see the module docstring)."""
    if TARGET in ds.data_vars:
        shape = ds[TARGET].shape
    else:
        shape = (ds.sizes["time"], ds.sizes["y"], ds.sizes["x"])
    out: dict[str, np.ndarray] = {}
    if PRCP in ds.data_vars:
        prcp = np.broadcast_to(np.asarray(ds[PRCP].values, dtype=np.float64), shape)
        for decay in API_DECAYS:
            out[f"api_{decay:g}"] = antecedent_precipitation(prcp, decay)
        out["days_since_rain"] = np.log1p(days_since_rain(prcp))
    doy = pd.DatetimeIndex(ds["time"].values).day_of_year.to_numpy()
    angle = 2 * np.pi * (doy - 1) / 365.25
    out["doy_sin"] = np.broadcast_to(np.sin(angle)[:, None, None], shape)
    out["doy_cos"] = np.broadcast_to(np.cos(angle)[:, None, None], shape)
    if COARSE in ds.data_vars:
        coarse = np.broadcast_to(ds[COARSE].values, shape)
        if np.isfinite(coarse).any():
            filled = fill_in_time(coarse)
            running = ndimage.uniform_filter1d(filled, size=31, axis=0, mode="nearest")
            out["sm_36km_filled"], out["sm_36km_anomaly"] = filled, filled - running
        else:  # a window without any coarse value (SMAP's safe mode): missing, not invented
            out["sm_36km_filled"] = out["sm_36km_anomaly"] = np.full(shape, np.nan)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def with_derived_features(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the derived fields added as (time, y, x) covariates named ``derived_*``."""
    fields = derived_features(ds)
    return ds.assign(
        {
            f"derived_{name}": (("time", "y", "x"), values, {"units": "1", "derived": "yes"})
            for name, values in fields.items()
        }
    )
