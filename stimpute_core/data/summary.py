"""A short description of a contract Dataset: what a user wants to know before anything else.

The target is read along its named dimensions (transposed to ``(time, y, x)``), so a file stored
in another order is described rightly too. :func:`describe_problems` says what a file lacks to be
described at all, and :func:`station_file_summary` recognises the station file that
``stimpute data insitu`` writes, so ``stimpute data info`` can explain instead of failing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .contract import INSITU, LAND_COVER, TARGET, TRUTH, covariate_names, land_cover_classes


def _target(ds: xr.Dataset) -> np.ndarray:
    """The target's values in the contract order ``(time, y, x)``."""
    return ds[TARGET].transpose("time", "y", "x").values


def describe_problems(ds: xr.Dataset) -> list[str]:
    """What ``ds`` lacks for :func:`describe` (empty when it can be described)."""
    problems = []
    if TARGET not in ds.data_vars:
        problems.append(f"variable '{TARGET}' is missing: expected {TARGET}(time, y, x)")
    elif set(ds[TARGET].dims) != {"time", "y", "x"}:
        problems.append(
            f"variable '{TARGET}' has dims {ds[TARGET].dims}: expected ('time', 'y', 'x')"
        )
    for name in ("lat", "lon"):
        if name not in ds.variables:
            problems.append(f"coordinate '{name}' is missing: expected {name}(y, x) in degrees")
    if "time" in ds.dims and ds.sizes["time"] == 0:
        problems.append("dimension 'time' has length 0: the file holds no day")
    return problems


def station_file_summary(ds: xr.Dataset) -> str | None:
    """A line describing ``ds`` when it is a station file (``insitu(station, time)`` without a
    grid, as ``stimpute data insitu`` writes it), else ``None``."""
    if INSITU not in ds.data_vars or TARGET in ds.data_vars or "station" not in ds.dims:
        return None
    t = pd.DatetimeIndex(ds["time"].values) if "time" in ds.coords else pd.DatetimeIndex([])
    period = f", {t[0]:%Y-%m-%d} .. {t[-1]:%Y-%m-%d}" if len(t) else ", no day"
    observed = int(np.isfinite(ds[INSITU].values).sum())
    return (
        f"a station file ({INSITU}(station, time): {ds.sizes['station']} station(s){period}, "
        f"{observed} observed station-days) as `stimpute data insitu` writes it, not a gridded "
        "contract Dataset; `stimpute data build` takes it in a recipe's [insitu] section "
        '(stations = "<this file>")'
    )


def describe(ds: xr.Dataset) -> dict[str, Any]:
    """Grid, period, sparsity, covariates, land-cover mix and stations of ``ds`` as plain values.

    ``ds`` must pass :func:`describe_problems`; the target may be stored in any dimension order.
    A lazily opened store is described without loading its cube (reductions, tile by tile).
    """
    t = pd.DatetimeIndex(ds["time"].values)
    x, y = ds["x"].values, ds["y"].values
    dynamic, static = covariate_names(ds)
    gaps = sparsity(ds)
    info: dict[str, Any] = {
        "grid": {
            "ny": int(ds.sizes["y"]),
            "nx": int(ds.sizes["x"]),
            "dx_m": float(abs(x[1] - x[0])) if len(x) > 1 else None,
            "dy_m": float(abs(y[1] - y[0])) if len(y) > 1 else None,
            "crs": ds.attrs.get("crs", "EPSG:6933"),
            "lon_range": [float(ds["lon"].min()), float(ds["lon"].max())],
            "lat_range": [float(ds["lat"].min()), float(ds["lat"].max())],
        },
        "period": {"start": f"{t[0]:%Y-%m-%d}", "end": f"{t[-1]:%Y-%m-%d}", "days": len(t)},
        "missing_percent": gaps["missing_percent"],
        "observed_values": gaps["observed_values"],
        "days_with_observations": gaps["days_with_observations"],
        "median_gap_days": gaps["median_gap_days"] if gaps["days_with_observations"] > 1 else None,
        "dynamic_covariates": dynamic,
        "static_covariates": static,
        "has_truth": TRUTH in ds.data_vars,
        "stations": int(ds.sizes.get("station", 0)) if INSITU in ds.data_vars else 0,
    }
    if LAND_COVER in ds.data_vars:
        classes = land_cover_classes(ds)
        values = np.asarray(ds[LAND_COVER].values)
        finite = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
        codes, counts = np.unique(values[finite], return_counts=True)
        info["land_cover"] = {
            classes.get(int(c), str(int(c))): int(n) for c, n in zip(codes, counts, strict=True)
        }
        if not finite.all():  # a broken file is still described (its problems listed apart)
            info["land_cover"]["not a code (NaN or infinite)"] = int((~finite).sum())
    return info


def format_description(info: dict[str, Any]) -> str:
    """:func:`describe`'s result as readable text."""
    g, p = info["grid"], info["period"]
    lines = [
        f"grid        {g['ny']} x {g['nx']} cells of {g['dx_m']:.1f} m ({g['crs']})"
        if g["dx_m"]
        else f"grid        {g['ny']} x {g['nx']} cells ({g['crs']})",
        f"extent      lon {g['lon_range'][0]:.4f}..{g['lon_range'][1]:.4f}, "
        f"lat {g['lat_range'][0]:.4f}..{g['lat_range'][1]:.4f}",
        f"period      {p['start']} .. {p['end']} ({p['days']} days)",
        f"missing     {info['missing_percent']:.2f} % of cell-days "
        f"({info['observed_values']} observed values on {info['days_with_observations']} days)",
        f"time-varying covariates  {', '.join(info['dynamic_covariates']) or '-'}",
        f"static covariates        {', '.join(info['static_covariates']) or '-'}",
        f"truth       {'yes (synthetic)' if info['has_truth'] else 'no'}",
        f"stations    {info['stations']}",
    ]
    if "land_cover" in info:
        total = sum(info["land_cover"].values())
        mix = ", ".join(f"{k} {100 * v / total:.1f} %" for k, v in info["land_cover"].items())
        lines.append(f"land cover  {mix}")
    return "\n".join(lines)


def observed_fraction(ds: xr.Dataset) -> xr.DataArray:
    """Fraction of days on which each cell is observed: the sparsity map."""
    frac = np.isfinite(ds[TARGET]).mean("time").rename("observed_fraction")
    # Only its own attributes: the target's units (m³/m³) would label the map wrongly.
    frac.attrs = {"long_name": "fraction of days observed", "units": "1"}
    return frac


def daily_coverage(ds: xr.Dataset) -> pd.Series:
    """Fraction of cells observed on each day: shows the overpass pattern."""
    cover = np.isfinite(_target(ds)).mean(axis=(1, 2))
    return pd.Series(cover, index=pd.DatetimeIndex(ds["time"].values), name="coverage")


def _observed_per_day(ds: xr.Dataset) -> np.ndarray:
    """Observed cells of each day: one reduction, computed tile by tile on a lazily opened
    store (the cube is never loaded whole)."""
    other = [d for d in ds[TARGET].dims if d != "time"]
    return np.asarray(ds[TARGET].notnull().sum(other).values, dtype=np.int64)


def sparsity(ds: xr.Dataset) -> dict[str, float | int]:
    """How sparse the target is: the overall missing rate and how often a day has data.

    Returns ``missing_percent`` (share of cell-days without an observation, in %),
    ``days_with_observations`` (days on which at least one cell is observed), ``days`` (days in
    ``ds``), ``median_gap_days`` (median spacing of the observed days, in days: the typical
    revisit; NaN with fewer than two observed days) and ``observed_values``. Works on a lazily
    opened store without loading its cube.
    """
    per_day = _observed_per_day(ds)
    times = pd.DatetimeIndex(ds["time"].values)
    days = times[per_day > 0]
    gaps = np.diff(days.values) / np.timedelta64(1, "D")
    size = int(ds[TARGET].size)
    return {
        "missing_percent": float(100.0 * (1.0 - per_day.sum() / size)) if size else 100.0,
        "days_with_observations": len(days),
        "days": len(times),
        "median_gap_days": float(np.median(gaps)) if len(gaps) else float("nan"),
        "observed_values": int(per_day.sum()),
    }
