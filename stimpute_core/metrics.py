"""Scores for imputed soil moisture, defined as in pytesmo so numbers compare with the literature.

Every metric takes ``(pred, truth, mask=None)``: arrays or DataArrays of one (broadcastable)
shape, and an optional boolean ``mask`` choosing the entries to score. Entries where either value
is NaN are dropped as well. A metric with no pair to score returns NaN.

- ``bias`` is ``mean(pred) - mean(truth)``: positive means the prediction is too wet.
- ``mre`` is a ratio of sums, ``sum|pred - truth| / sum|truth|`` (as the paper and PyPOTS),
  not a mean of ratios, which blows up for dry soils.
- ``ubrmsd`` is the RMSD after removing each series' mean; ``ubrmsd² = rmse² - bias²``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .data.contract import INSITU
from .data.selection import station_cells

#: SMAP mission accuracy requirement: unbiased RMSD of 0.04 m³/m³.
UBRMSD_TARGET = 0.04
#: Statistics :func:`error_map` can map.
MAP_STATS = ("mae", "rmse", "bias", "n")

ArrayLike = np.ndarray | xr.DataArray


def _values(a: Any) -> np.ndarray:
    return np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=float)


def _pairs(pred: Any, truth: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The scored pairs as two 1-D arrays: inside ``mask`` and finite in both."""
    p, t = np.broadcast_arrays(_values(pred), _values(truth))
    keep = np.isfinite(p) & np.isfinite(t)
    if mask is not None:
        m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=bool)
        keep &= np.broadcast_to(m, keep.shape)
    return p[keep], t[keep]


def mae(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute error."""
    p, t = _pairs(pred, truth, mask)
    return float(np.mean(np.abs(p - t))) if p.size else np.nan


def mre(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean relative error as a ratio of sums: ``sum|pred - truth| / sum|truth|``."""
    p, t = _pairs(pred, truth, mask)
    denom = np.sum(np.abs(t))
    return float(np.sum(np.abs(p - t)) / denom) if p.size and denom > 0 else np.nan


def rmse(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Root-mean-square error."""
    p, t = _pairs(pred, truth, mask)
    return float(np.sqrt(np.mean((p - t) ** 2))) if p.size else np.nan


def bias(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """``mean(pred) - mean(truth)`` (pytesmo's sign: the first argument minus the reference)."""
    p, t = _pairs(pred, truth, mask)
    return float(np.mean(p) - np.mean(t)) if p.size else np.nan


def _ubrmsd(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((p - p.mean()) - (t - t.mean())) ** 2))) if p.size else np.nan


def ubrmsd(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Unbiased RMSD: the RMSD of the anomalies from each series' own mean."""
    return _ubrmsd(*_pairs(pred, truth, mask))


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    if p.size < 2:
        return np.nan
    dp, dt = p - p.mean(), t - t.mean()
    denom = np.sqrt(np.sum(dp**2) * np.sum(dt**2))
    return float(np.sum(dp * dt) / denom) if denom > 0 else np.nan


def pearson_r(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Pearson correlation; NaN with fewer than two pairs or when either series is constant."""
    return _pearson(*_pairs(pred, truth, mask))


def score(pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None = None) -> dict[str, Any]:
    """All metrics at once: ``n, mae, mre, rmse, bias, ubrmsd, r``."""
    p, t = _pairs(pred, truth, mask)
    return {
        "n": int(p.size),
        "mae": mae(p, t),
        "mre": mre(p, t),
        "rmse": rmse(p, t),
        "bias": bias(p, t),
        "ubrmsd": _ubrmsd(p, t),
        "r": _pearson(p, t),
    }


def roughness(
    field: ArrayLike,
    prcp: ArrayLike | None = None,
    *,
    pairs: ArrayLike | None = None,
    rain_mm: float = 1.0,
) -> float:
    """Mean absolute day-to-day change of a (time, y, x) field on days without rain.

    Soil moisture jumps up when it rains and dries down smoothly otherwise; an imputation that
    jitters from day to day on dry days does not look like soil moisture. A pair of days
    ``(t - 1, t)`` of a cell counts when ``prcp`` on day ``t`` is below ``rain_mm`` (every pair
    without ``prcp``) and, with ``pairs`` (a (time, y, x) mask of day ``t``), where it is set:
    for example where both days were gap-filled. NaN with no pair to count.
    """
    f = _cube(field).astype(np.float64)
    change = np.abs(np.diff(f, axis=0))
    keep = np.isfinite(change)
    if prcp is not None:
        keep &= np.nan_to_num(_cube(prcp)[1:], nan=0.0) < rain_mm
    if pairs is not None:
        keep &= _cube(pairs).astype(bool)[1:]
    return float(change[keep].mean()) if keep.any() else float("nan")


def _cube(a: Any) -> np.ndarray:
    """A (time, y, x) float array; DataArrays with those dims are put in that order first."""
    if isinstance(a, xr.DataArray) and set(a.dims) == {"time", "y", "x"}:
        a = a.transpose("time", "y", "x")
    v = _values(a)
    if v.ndim != 3:
        raise ValueError(f"expected a (time, y, x) array, got shape {v.shape}")
    return v


def _cell_stats(
    pred: Any, truth: Any, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell number of scored entries and sums of error, |error| and error² over time."""
    p, t = np.broadcast_arrays(_cube(pred), _cube(truth))
    keep = np.isfinite(p) & np.isfinite(t)
    if mask is not None:
        keep &= np.broadcast_to(_cube(mask).astype(bool), keep.shape)
    err = np.where(keep, p - t, 0.0)
    return keep.sum(axis=0), err.sum(axis=0), np.abs(err).sum(axis=0), (err**2).sum(axis=0)


def _cell_stat(stat: str, n: np.ndarray, s: np.ndarray, sa: np.ndarray, s2: np.ndarray):
    if stat == "n":
        return n
    with np.errstate(invalid="ignore", divide="ignore"):
        if stat == "mae":
            out = sa / n
        elif stat == "rmse":
            out = np.sqrt(s2 / n)
        else:
            out = s / n
    return np.where(n > 0, out, np.nan)


def error_map(
    pred: ArrayLike, truth: ArrayLike, mask: ArrayLike | None, stat: str = "mae"
) -> xr.DataArray:
    """Per-cell ``stat`` (``mae``, ``rmse``, ``bias`` or ``n``) over time, as a (y, x) DataArray.

    Shows where a model does well or badly. Cells without a scored entry are NaN (0 for ``n``).
    The y/x coordinates (and lat/lon) of DataArray inputs are kept.
    """
    if stat not in MAP_STATS:
        raise ValueError(f"unknown stat {stat!r}: expected one of {', '.join(MAP_STATS)}")
    values = _cell_stat(stat, *_cell_stats(pred, truth, mask))
    coords = {}
    for a in (pred, truth):
        if isinstance(a, xr.DataArray):
            coords = {k: v for k, v in a.coords.items() if set(v.dims) <= {"y", "x"}}
            break
    units = "1" if stat == "n" else "m3/m3"
    return xr.DataArray(values, dims=("y", "x"), coords=coords, name=stat, attrs={"units": units})


def by_land_cover(
    pred: ArrayLike,
    truth: ArrayLike,
    mask: ArrayLike | None,
    land_cover: ArrayLike,
    classes: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Scores per land-cover class, one row per code present in ``land_cover`` (sorted by code).

    Columns: ``land_cover``, ``name``, ``n_cells`` (cells with a scored entry), ``n``, ``mae``,
    ``rmse``, ``bias`` and ``cell_mae_median`` (median over cells of the per-cell MAE, which is
    not dominated by the cells observed most often). Names come from ``classes``, else from the
    CF flag attributes of a ``land_cover`` DataArray, else the code itself.
    """
    if classes is None and isinstance(land_cover, xr.DataArray):
        values = np.atleast_1d(land_cover.attrs.get("flag_values", []))
        meanings = str(land_cover.attrs.get("flag_meanings", "")).split()
        classes = {int(v): m for v, m in zip(values, meanings, strict=False)}
    classes = dict(classes or {})
    lc = _values(land_cover)
    n, s, sa, s2 = _cell_stats(pred, truth, mask)
    if lc.shape != n.shape:
        raise ValueError(f"land_cover shape {lc.shape} differs from the grid shape {n.shape}")
    cell_mae = _cell_stat("mae", n, s, sa, s2)
    rows = []
    for code in np.unique(lc[np.isfinite(lc)]).astype(int):
        cells = lc == code
        nn = int(n[cells].sum())
        scored = cells & (n > 0)
        rows.append(
            {
                "land_cover": int(code),
                "name": classes.get(int(code), str(code)),
                "n_cells": int(scored.sum()),
                "n": nn,
                "mae": float(sa[cells].sum() / nn) if nn else np.nan,
                "rmse": float(np.sqrt(s2[cells].sum() / nn)) if nn else np.nan,
                "bias": float(s[cells].sum() / nn) if nn else np.nan,
                "cell_mae_median": float(np.median(cell_mae[scored])) if nn else np.nan,
            }
        )
    columns = ["land_cover", "name", "n_cells", "n", "mae", "rmse", "bias", "cell_mae_median"]
    return pd.DataFrame(rows, columns=columns)


def _field_at_stations(ds: xr.Dataset, field: ArrayLike, what: str) -> np.ndarray:
    """``field`` (time, y, x) on ``ds``'s days as an array; DataArrays are matched by day."""
    if isinstance(field, xr.DataArray) and "time" in field.dims:
        field = field.transpose("time", "y", "x").reindex(time=ds["time"].values)
    v = _values(field)
    shape = (ds.sizes["time"], ds.sizes["y"], ds.sizes["x"])
    if v.shape != shape:
        raise ValueError(f"{what} has shape {v.shape}: expected (time, y, x) = {shape}")
    return v


def _station_scores(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    return {
        "bias": float(np.mean(p) - np.mean(t)),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "ubrmsd": _ubrmsd(p, t),
        "r": _pearson(p, t),
    }


def station_table(
    ds: xr.Dataset,
    imputed: ArrayLike,
    *,
    satellite: ArrayLike | None = None,
    min_pairs: int = 10,
) -> pd.DataFrame:
    """Compare each station's in-situ series with the imputed field at the station's cell.

    Values are paired by day where both are finite; ``bias`` is imputed minus in-situ. Stations
    with fewer than ``min_pairs`` pairs keep a row with ``n`` and NaN metrics; stations outside the
    grid are left out. A last row, station ``"all"`` (row/col -1), scores the pooled pairs of the
    stations with enough pairs. ``meets_target`` says whether ``ubrmsd`` is within
    :data:`UBRMSD_TARGET`. With ``satellite`` (say the raw observations) the columns ``n_sat``,
    ``ubrmsd_sat`` and ``bias_sat`` score that field the same way, for comparison.
    """
    if INSITU not in ds.data_vars:
        raise ValueError(f"ds has no '{INSITU}' variable: no station to compare with")
    insitu = _values(ds[INSITU].transpose("station", "time"))
    fields = {"": _field_at_stations(ds, imputed, "imputed")}
    if satellite is not None:
        fields["_sat"] = _field_at_stations(ds, satellite, "satellite")
    rows, cols = station_cells(ds)

    def coord(name: str) -> np.ndarray:
        if name in ds.coords:
            return np.asarray(ds[name].values, dtype=float)
        return np.full(ds.sizes["station"], np.nan)

    lat, lon, depth = coord("station_lat"), coord("station_lon"), coord("station_depth")
    nan_scores = {"bias": np.nan, "rmse": np.nan, "ubrmsd": np.nan, "r": np.nan}
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in fields}
    records = []
    for i, name in enumerate(ds["station"].values):
        r, c = int(rows[i]), int(cols[i])
        if r < 0 or c < 0:
            continue
        rec: dict[str, Any] = {
            "station": name.item() if hasattr(name, "item") else name,
            "lat": lat[i],
            "lon": lon[i],
            "depth": depth[i],
            "row": r,
            "col": c,
        }
        for suffix, field in fields.items():
            p, t = field[:, r, c], insitu[i]
            ok = np.isfinite(p) & np.isfinite(t)
            p, t = p[ok], t[ok]
            enough = p.size >= min_pairs
            if enough:
                pooled[suffix].append((p, t))
            scores = _station_scores(p, t) if enough else nan_scores
            rec["n" + suffix] = int(p.size)
            for key, value in scores.items():
                rec[key + suffix] = value
        records.append(rec)

    total: dict[str, Any] = {
        "station": "all",
        "lat": np.nan,
        "lon": np.nan,
        "depth": np.nan,
        "row": -1,
        "col": -1,
    }
    for suffix, pairs in pooled.items():
        if pairs:
            p = np.concatenate([a for a, _ in pairs])
            t = np.concatenate([b for _, b in pairs])
            scores = _station_scores(p, t)
        else:
            p, scores = np.zeros(0), nan_scores
        total["n" + suffix] = int(p.size)
        for key, value in scores.items():
            total[key + suffix] = value
    records.append(total)

    columns = ["station", "lat", "lon", "depth", "row", "col", "n", "bias", "rmse", "ubrmsd", "r"]
    table = pd.DataFrame(records)
    table["meets_target"] = table["ubrmsd"].le(UBRMSD_TARGET)
    columns.append("meets_target")
    if satellite is not None:
        columns += ["n_sat", "ubrmsd_sat", "bias_sat"]
    return table[columns].reset_index(drop=True)
