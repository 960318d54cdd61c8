"""Daymet daily weather (NetCDF) onto the target 1 km grid as ``(time, y, x)`` covariates.

Values are interpolated bilinearly at each target cell centre, projected into the source grid
(Lambert Conformal Conic or regular lon/lat): see :class:`.regrid.PointSampler`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS

from ..grid import GridBox
from .formats import PathLike
from .regrid import (
    KM_UNITS,
    LATLON_DIMS,
    M_UNITS,
    PointSampler,
    TargetGrid,
    cf_crs,
    covering_slice,
    target_grid,
    transformer,
)
from .report import LoadReport, ReaderError

if TYPE_CHECKING:
    from ..zarr_stream import DayStream

__all__ = [
    "DAYMET_LONG_NAMES",
    "DAYMET_UNITS",
    "DAYMET_VARIABLES",
    "read_daymet",
    "stream_daymet",
]

#: Daymet v4 daily variables read by default, with Daymet's own units (kept as they are).
DAYMET_VARIABLES = ("prcp", "tmax", "tmin", "srad", "vp")
DAYMET_UNITS = {
    "prcp": "mm/day",
    "tmax": "degrees C",
    "tmin": "degrees C",
    "srad": "W/m2",
    "vp": "Pa",
    "swe": "kg/m2",
    "dayl": "s",
}
DAYMET_LONG_NAMES = {
    "prcp": "daily total precipitation",
    "tmax": "daily maximum 2 m air temperature",
    "tmin": "daily minimum 2 m air temperature",
    "srad": "daylight-average shortwave radiation",
    "vp": "daily average water vapour pressure",
    "swe": "snow water equivalent",
    "dayl": "day length",
}
_UNIT_ALIASES = {
    "mm/day": {"mm/day", "mm/d", "mm day-1", "mm d-1", "mm day**-1", "kg m-2 d-1", "kg/m2/day"},
    "degrees C": {"degrees c", "degree c", "deg c", "degc", "°c", "celsius", "degree_celsius"},
    "W/m2": {"w/m2", "w m-2", "w/m^2", "w m**-2", "w/m**2"},
    "Pa": {"pa"},
    "kg/m2": {"kg/m2", "kg m-2", "kg/m^2"},
    "s": {"s", "s/day", "seconds"},
}


class _Unusable(Exception):
    """A file that opens but cannot serve the request: skipped and listed in the LoadReport."""


def _describe(paths: list[str]) -> str:
    names = [os.path.basename(p) for p in paths]
    if not names:
        return "(no files)"
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _daymet_dates(ds: xr.Dataset) -> pd.DatetimeIndex:
    """Calendar dates of the time axis (Daymet stamps each day at noon; the date is the label)."""
    if "time" not in ds.coords:
        raise _Unusable("has no 'time' coordinate")
    idx = ds.indexes["time"]
    if isinstance(idx, pd.DatetimeIndex):
        return idx.normalize()
    if isinstance(idx, xr.CFTimeIndex):
        return pd.DatetimeIndex([pd.Timestamp(t.year, t.month, t.day) for t in idx])
    raise _Unusable(f"time coordinate of dtype {idx.dtype} could not be decoded as dates")


def _axis_step(values: np.ndarray, name: str) -> float:
    if values.size < 2:
        raise _Unusable(f"axis '{name}' has fewer than 2 cells")
    d = np.diff(values)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise _Unusable(f"axis '{name}' is not strictly monotonic")
    return float(np.median(np.abs(d)))


def _daymet_source(ds: xr.Dataset, da: xr.DataArray, path: str, tgt: TargetGrid) -> PointSampler:
    """Locate the target cells on the file's grid; ReaderError if the file does not cover them."""
    dims = set(da.dims)
    if {"x", "y"} <= dims:
        xdim, ydim = "x", "y"
        crs = cf_crs(ds, da)
        if crs is None:
            raise _Unusable(f"variable '{da.name}' on x/y has no grid-mapping variable (CRS)")
        unit = str(ds["x"].attrs.get("units", "m")).strip().lower()
        if unit not in KM_UNITS | M_UNITS:
            raise _Unusable(f"x has units '{unit}': expected km or m")
        scale = 1000.0 if unit in KM_UNITS else 1.0
        unit_name = "km" if unit in KM_UNITS else "m"
        tr = transformer(CRS.from_epsg(4326), crs)
        px, py = (np.asarray(a) / scale for a in tr.transform(tgt.lon, tgt.lat))
    else:
        pair = next((p for p in LATLON_DIMS if set(p) <= dims), None)
        if pair is None:
            raise _Unusable(f"variable '{da.name}' has dims {da.dims}: expected y/x or lat/lon")
        ydim, xdim = pair
        unit_name = "degrees"
        px, py = tgt.lon.copy(), tgt.lat.copy()
        if float(np.nanmax(ds[xdim].values)) > 180.0:  # 0..360 longitudes
            px = px % 360.0
    xs = np.asarray(ds[xdim].values, dtype=float)
    ys = np.asarray(ds[ydim].values, dtype=float)
    sx, sy = _axis_step(xs, xdim), _axis_step(ys, ydim)
    x0, x1, y0, y1 = xs.min() - sx / 2, xs.max() + sx / 2, ys.min() - sy / 2, ys.max() + sy / 2
    tol = 1e-9 * max(sx, sy)
    if (
        np.nanmin(px) < x0 - tol
        or np.nanmax(px) > x1 + tol
        or np.nanmin(py) < y0 - tol
        or np.nanmax(py) > y1 + tol
    ):
        raise ReaderError(
            path,
            f"does not cover the target grid: the file spans {xdim} {x0:.6g}..{x1:.6g}, "
            f"{ydim} {y0:.6g}..{y1:.6g} {unit_name} (cell edges) but the target cell centres "
            f"need {xdim} {np.nanmin(px):.6g}..{np.nanmax(px):.6g}, "
            f"{ydim} {np.nanmin(py):.6g}..{np.nanmax(py):.6g} ({tgt.lonlat_text()})",
        )
    # Within half a source cell of the outermost centres: hold the edge value (no extrapolation).
    px = np.clip(px, xs.min(), xs.max())
    py = np.clip(py, ys.min(), ys.max())
    return PointSampler(
        xdim=xdim,
        ydim=ydim,
        px=px,
        py=py,
        xsel=covering_slice(xs, np.nanmin(px), np.nanmax(px), 1.5 * sx),
        ysel=covering_slice(ys, np.nanmin(py), np.nanmax(py), 1.5 * sy),
    )


def _check_units(da: xr.DataArray, name: str) -> None:
    units = da.attrs.get("units")
    expected = DAYMET_UNITS.get(name)
    if units is None or expected is None:
        return
    if str(units).strip().lower() not in _UNIT_ALIASES[expected] | {expected.lower()}:
        raise _Unusable(f"variable '{name}' has units '{units}': expected Daymet's {expected}")


def _daymet_pieces(
    path: str,
    variables: tuple[str, ...],
    tgt: TargetGrid,
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
    split: Callable[[pd.DatetimeIndex], list[slice]] | None = None,
) -> Iterator[tuple[str, xr.DataArray]]:
    """The requested variables of one file on the target grid (may be empty in time), in
    pieces of days: ``split`` cuts the file's days in the period into slices (default: one).

    Every check runs before the first piece is sampled, so a file refused as unusable yields
    nothing.
    """
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # any unreadable file is skipped, never fatal
        raise _Unusable(f"cannot be opened as NetCDF ({type(exc).__name__}: {exc})") from exc
    with ds:
        present = [v for v in variables if v in ds.data_vars]
        if not present:
            raise _Unusable(f"holds none of the variables {', '.join(variables)}")
        dates = _daymet_dates(ds)
        keep = ~dates.duplicated()
        ds = ds.isel(time=np.nonzero(keep)[0]).assign_coords(time=dates[keep])
        if not dates[keep].is_monotonic_increasing:
            ds = ds.sortby("time")
        if t0 is not None or t1 is not None:
            ds = ds.sel(time=slice(t0, t1))
        sources: dict[tuple, PointSampler] = {}
        plan = []
        for name in present:
            da = ds[name]
            _check_units(da, name)
            extra = [d for d in da.dims if d not in ("time", "x", "y", "lat", "lon")]
            extra = [d for d in extra if d not in ("latitude", "longitude")]
            if any(da.sizes[d] != 1 for d in extra) or "time" not in da.dims:
                raise _Unusable(f"variable '{name}' has dims {da.dims}: expected (time, y, x)")
            da = da.isel({d: 0 for d in extra}, drop=True).reset_coords(drop=True)
            key = tuple(sorted(da.dims))
            if key not in sources:
                sources[key] = _daymet_source(ds, da, path, tgt)
            plan.append((name, da, sources[key]))
        pieces = [slice(None)] if split is None else split(ds.indexes["time"])
        for name, da, sampler in plan:
            for piece in pieces:
                yield name, sampler.sample(da.isel(time=piece))


def read_daymet(
    paths: PathLike | Iterable[PathLike],
    grid: xr.Dataset | GridBox,
    *,
    variables: Iterable[str] = DAYMET_VARIABLES,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Read Daymet-style daily NetCDF files onto the target grid as ``(time, y, x)`` covariates.

    Files may hold one variable and year each (as Daymet ships them) or several variables. Two
    layouts are understood: Daymet's native Lambert Conformal Conic grid (1-D ``x``/``y`` in km or
    m per their ``units``, CRS from the CF grid-mapping variable) and a regular ``lat``/``lon``
    grid. Values are interpolated bilinearly at every target cell centre projected into the
    source grid; centres within half a source cell beyond the outermost source centres take the
    edge value. Source NaN (Daymet's fill over water) propagates to the cells it touches.

    Time: Daymet labels each day at noon; the calendar date is used. The daily axis runs
    ``start..end`` (default: the first to the last day read; an open end on 30 December of a
    leap year is taken to 31 December). Daymet's 365-day calendar drops 31 December in leap
    years: such a day is filled by copying 30 December (listed in the ``filled_days`` attribute);
    every other missing day is NaN. Units stay Daymet's (mm/day, degrees C, W/m2, Pa); a file
    whose units differ is skipped. Output is float32, like Daymet's files.

    Each file must cover the whole target grid (tiles are not mosaicked): ReaderError otherwise,
    naming the file and both extents, and when a requested variable is in none of the files. A
    file that cannot be opened or used is skipped and listed in the returned :class:`LoadReport`.
    """
    tgt = target_grid(grid)
    variables = tuple(variables)
    files = [str(paths)] if isinstance(paths, str | os.PathLike) else [str(p) for p in paths]
    t0 = pd.Timestamp(start).normalize() if start is not None else None
    t1 = pd.Timestamp(end).normalize() if end is not None else None
    report = LoadReport()
    pieces: dict[str, list[xr.DataArray]] = {v: [] for v in variables}
    for path in files:
        try:
            got = dict(_daymet_pieces(path, variables, tgt, t0, t1))
        except _Unusable as exc:
            report.add_skipped(path, str(exc))
            continue
        for name, da in got.items():
            pieces[name].append(da)
        report.add_read(path)

    missing = [v for v in variables if not pieces[v]]
    if missing:
        raise ReaderError(
            _describe(files),
            f"variable(s) {', '.join(missing)} found in none of the {len(files)} file(s) "
            f"({len(report.skipped)} skipped)\n{report.summary()}",
        )

    series: dict[str, xr.DataArray] = {}
    for name in variables:
        arr = xr.concat(pieces[name], dim="time")
        arr = arr.isel(time=np.nonzero(~arr.indexes["time"].duplicated())[0]).sortby("time")
        series[name] = arr
    read_days = [a.indexes["time"] for a in series.values() if a.sizes["time"]]
    if (t0 is None or t1 is None) and not read_days:
        raise ReaderError(_describe(files), "holds no day in the requested period")
    first = t0 if t0 is not None else min(d.min() for d in read_days)
    last = t1 if t1 is not None else max(d.max() for d in read_days)
    if t1 is None and last.month == 12 and last.day == 30 and last.is_leap_year:
        last = last + pd.Timedelta(days=1)
    days = pd.date_range(first, last, freq="D")

    filled: set[pd.Timestamp] = set()
    data_vars = {}
    for name, arr in series.items():
        have = arr.indexes["time"]
        full = arr.reindex(time=days)
        values = full.values
        for i in _leap_fill(days, days.isin(have)):
            values[i] = values[i - 1]
            filled.add(days[i])
        attrs = {
            "units": DAYMET_UNITS.get(name, str(arr.attrs.get("units", ""))),
            "long_name": DAYMET_LONG_NAMES.get(name, name),
            "source": "Daymet",
        }
        data_vars[name] = (("time", "y", "x"), values.astype(np.float32), attrs)
    ds = xr.Dataset(data_vars, coords={"time": days, **tgt.coords})
    ds.attrs["source"] = f"Daymet daily weather: {_describe(report.read)}"
    ds.attrs["regridding"] = "bilinear at target cell centres"
    if filled:
        ds.attrs["filled_days"] = ", ".join(
            f"{d:%Y-%m-%d} (copy of the day before: Daymet's 365-day calendar)"
            for d in sorted(filled)
        )
    return ds, report


def _leap_fill(days: pd.DatetimeIndex, have: np.ndarray) -> list[int]:
    """Days (indices) filled by copying the day before: 31 December of a leap year that no file
    holds while 30 December is held (Daymet's 365-day calendar)."""
    return [
        i
        for i, day in enumerate(days[1:], start=1)
        if day.month == 12 and day.day == 31 and day.is_leap_year and have[i - 1] and not have[i]
    ]


def stream_daymet(
    paths: PathLike | Iterable[PathLike],
    stream: DayStream,
    *,
    variables: Iterable[str] = DAYMET_VARIABLES,
) -> tuple[dict[str, dict], LoadReport]:
    """:func:`read_daymet` on the grid and days of ``stream`` (a :class:`~..zarr_stream.DayStream`
    holding every variable), written into it a piece of days at a time instead of held.

    Values are the same to the last bit as :func:`read_daymet` with ``start``/``end`` the
    stream's first and last day: each file is sampled in pieces that fall in one of the
    stream's batches (memory: one piece of days of the grid, not a file's year nor the cube);
    a day already written by an earlier file is kept (the first file wins, as there); 31
    December of a leap year is filled as there. Returns each variable's attributes and the
    report.
    """
    days = pd.DatetimeIndex(stream.grid["time"].values)
    tgt = target_grid(stream.grid)
    variables = tuple(variables)
    files = [str(paths)] if isinstance(paths, str | os.PathLike) else [str(p) for p in paths]

    def split(times: pd.DatetimeIndex) -> list[slice]:
        key = days.get_indexer(times) // stream.batch
        cuts = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), len(key)]
        return [slice(a, b) for a, b in itertools.pairwise(cuts)]

    written = {v: np.zeros(len(days), dtype=bool) for v in variables}
    units: dict[str, str] = {}
    report = LoadReport()
    for path in files:
        try:
            for name, piece in _daymet_pieces(path, variables, tgt, days[0], days[-1], split):
                units.setdefault(name, str(piece.attrs.get("units", "")))
                pos = days.get_indexer(piece.indexes["time"])
                new = ~written[name][pos]
                if not new.any():
                    continue
                p0, p1 = int(pos[new][0]), int(pos[new][-1]) + 1
                block = stream.read(name, p0, p1)  # days of earlier files kept
                block[pos[new] - p0] = piece.values[new]
                stream.write(name, p0, block)
                written[name][pos[new]] = True
        except _Unusable as exc:
            report.add_skipped(path, str(exc))
            continue
        report.add_read(path)
    missing = [v for v in variables if v not in units]
    if missing:
        raise ReaderError(
            _describe(files),
            f"variable(s) {', '.join(missing)} found in none of the {len(files)} file(s) "
            f"({len(report.skipped)} skipped)\n{report.summary()}",
        )
    attrs = {}
    for name in variables:
        for i in _leap_fill(days, written[name]):
            stream.write(name, i, stream.read(name, i - 1, i))
        attrs[name] = {
            "units": DAYMET_UNITS.get(name, units[name]),
            "long_name": DAYMET_LONG_NAMES.get(name, name),
            "source": "Daymet",
        }
    return attrs, report
