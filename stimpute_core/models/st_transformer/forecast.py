"""Forecasting soil moisture a few days past the data with an ST-Transformer trained for it.

Training (``mask_kind="forecast"``, ``stimpute train --mask forecast``): every training window
hides all observations of its last ``forecast_days`` days and the loss is taken there, so the
network learns to continue the window; half the samples also lose those days' time-varying
covariates. Windows start on every day (not every ``stride`` days): with passes on a fixed
revisit, a fixed stride would put them on the same lead days in every sample. Validation
scores forecasts too (the last days of each validation window). No prior is used (it is an
imputation reference built from the observations around each day), and no intervals are
calibrated (they are calibrated for imputation; a forecast's error grows with the lead).

:func:`forecast` extends the data by ``days`` days from ``start`` (default: the day after the
last day) and reads the network's output on the last window, which ends on the last forecast
day. Nothing observed on or after ``start`` reaches the input: the target is blanked from
``start`` on. The time-varying covariates of the forecast days are used where the Dataset has
them (a re-analysis, or a weather forecast the user put in the file), unless
``future_covariates=False``; days the Dataset does not cover have none (they are flagged
missing, as in the half of the training samples without them). The result says which days
had covariates (``covariate_days``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ...data.contract import TARGET, covariate_names
from ..windows import patch_origins, take, window_starts

if TYPE_CHECKING:
    from .model import STTransformerImputer

FORECAST_NAME = "soil_moisture_forecast"


def forecast_days(n_time: int, window: int, horizon: int) -> np.ndarray:
    """Days (bool, ``n_time``) that end the validation windows (every ``window`` days, the
    last one ending on the last day): ``horizon`` days each, forecast from the days before.
    A block that would fall inside the last window rather than at its end is left out, so no
    validation day is scored with later days visible."""
    days = np.zeros(n_time, dtype=bool)
    if n_time <= window:
        days[max(n_time - horizon, 0) :] = True
        return days
    starts = window_starts(n_time, window, window)
    for s in starts:
        b0, b1 = s + window - horizon, s + window
        if not any(o != s and o <= b0 and b1 < o + window for o in starts):
            days[b0:b1] = True
    return days


def blank_future(u: np.ndarray, horizon: int, dynamic_channels: int) -> np.ndarray:
    """Covariates (T, N, D) of a sample with the time-varying ones of the last ``horizon`` days
    marked missing (value 0, flag 1: the first ``dynamic_channels`` channels are value/flag
    pairs): a forecast without the future's weather."""
    u = u.copy()
    u[-horizon:, :, 0:dynamic_channels:2] = 0.0
    u[-horizon:, :, 1:dynamic_channels:2] = 1.0
    return u


def forecast_input(
    ds: xr.Dataset,
    days: int,
    start: str | pd.Timestamp | None = None,
    future_covariates: bool = True,
) -> tuple[xr.Dataset, pd.DatetimeIndex, list[str]]:
    """``ds`` up to ``start`` followed by the ``days`` forecast days (target blanked from
    ``start`` on; the forecast days' time-varying covariates from ``ds`` where it has them
    and ``future_covariates``), the forecast days, and those of them with covariates."""
    times = pd.DatetimeIndex(ds["time"].values)
    first = times[-1] + pd.Timedelta(days=1) if start is None else pd.Timestamp(start)
    if not (times[0] < first <= times[-1] + pd.Timedelta(days=1)):
        raise ValueError(
            f"start={first.date()}: expected a day after the data's first day {times[0].date()} "
            f"and at most one day after its last {times[-1].date()}"
        )
    future = pd.date_range(first, periods=days, freq="D")
    span = times[times < first].append(future)
    out = ds.reindex(time=span)  # days past the data's end: every time-varying variable NaN
    out[TARGET] = out[TARGET].where(out["time"] < np.datetime64(first))
    dynamic, _ = covariate_names(ds)
    covered = [d for d in future if d in times] if future_covariates else []
    if not future_covariates:
        for name in dynamic:
            out[name] = out[name].where(out["time"] < np.datetime64(first))
    return out, future, [str(d.date()) for d in covered]


@torch.no_grad()
def forecast(
    model: STTransformerImputer,
    ds: xr.Dataset,
    days: int,
    *,
    start: str | pd.Timestamp | None = None,
    future_covariates: bool = True,
) -> xr.DataArray:
    """``soil_moisture_forecast(time, y, x)`` on the ``days`` days from ``start`` (module
    text), by ``model`` trained with ``mask_kind="forecast"`` for at least ``days`` days."""
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None
    if model.mask_kind != "forecast":
        raise ValueError(
            f"this model was trained to impute (mask_kind={model.mask_kind!r}), not to forecast: "
            "train one with mask_kind='forecast' (stimpute train --mask forecast)"
        )
    horizon = model.forecast_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= horizon:
        raise ValueError(f"days={days!r}: this model forecasts 1 to {horizon} days ahead")
    ext, future, covered = forecast_input(ds, days, start, future_covariates)
    y, u, offset = model._encode(ext)
    cfg = model.net_.cfg
    w, p = cfg.window, cfg.patch
    t = y.shape[0]
    if t < w:  # fewer days than a window: pad the past with unobserved days
        y = np.concatenate([np.full((w - t, *y.shape[1:]), np.nan, y.dtype), y])
        u = np.concatenate([np.repeat(u[:1], w - t, axis=0), u])
        t = w
    device = model._device()
    net = model.net_.to(device)
    out = np.empty((days, *y.shape[1:]), np.float32)
    try:
        for r0, c0 in patch_origins(y.shape[1], y.shape[2], p):
            ys = take(y, t - w, r0, c0, w, p)[None]
            us = take(u, t - w, r0, c0, w, p)[None]
            pred, _ = net(
                torch.as_tensor(np.nan_to_num(ys), device=device),
                torch.as_tensor(np.isfinite(ys), device=device),
                torch.as_tensor(us, device=device) if us.shape[-1] else None,
            )
            pred = pred.float().cpu().numpy().reshape(w, p, p)
            out[:, r0 : r0 + p, c0 : c0 + p] = pred[w - days :]
    finally:
        model.net_.cpu()
    h, wd = ds[TARGET].shape[1:]
    norm = model.normalizer_
    values = out[:, :h, :wd] * norm.y_std + (norm.y_mean if offset is None else offset[-days:])
    field = xr.DataArray(
        values.astype(np.float32),
        dims=("time", "y", "x"),
        coords={"time": future, "y": ds["y"], "x": ds["x"]},
        name=FORECAST_NAME,
        attrs={
            "long_name": f"soil moisture forecast, {days} day(s) from {future[0].date()}",
            "units": ds[TARGET].attrs.get("units", "m3 m-3"),
            "covariate_days": ", ".join(covered) or "none",
        },
    )
    return field


__all__ = ["FORECAST_NAME", "blank_future", "forecast", "forecast_days", "forecast_input"]
