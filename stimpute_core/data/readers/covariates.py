"""Covariate readers: Daymet daily weather and static rasters (terrain, soils, land cover).

Every reader returns its fields on the target 1 km grid of the data contract: ``(time, y, x)`` or
``(y, x)`` with the grid's ``x``/``y``/``lat``/``lon`` coordinates. The target is a contract-like
Dataset (1-D ``x``/``y`` cell centres in metres of EASE-Grid 2.0, EPSG:6933, unless its ``crs``
attribute says otherwise) or a :class:`~stimpute_core.data.grid.GridBox`.

- Daymet (:func:`read_daymet`) is interpolated bilinearly at each target cell centre, projected
  into the source grid (Lambert Conformal Conic or regular lon/lat). Daymet's 1 km cells are about
  as large as the target's, so point interpolation is the natural choice and keeps linear fields
  exact.
- Static rasters (:func:`read_static_raster`, :func:`land_cover_from_raster`) go through
  rasterio/GDAL warping (``rio.reproject``) onto the target transform, which handles any CRS, nodata
  and area averaging of fine rasters (30 m DEMs, POLARIS, NLCD).
- Slope and aspect follow the synthetic scenario's conventions (:func:`slope_aspect`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr
from affine import Affine
from pyproj import CRS, Proj, Transformer
from rasterio.enums import Resampling

from ..contract import IGBP_CLASSES, LAND_COVER, STATIC_COVARIATES
from ..grid import CELL_SIZE, EASE2_CRS, GridBox, grid_coords
from ..terrain import slope_aspect
from .report import LoadReport, ReaderError

PathLike = str | os.PathLike

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
_KM = {"km", "kilometer", "kilometers", "kilometre", "kilometres"}
_M = {"m", "meter", "meters", "metre", "metres"}
_NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5", ".he5"}
_LATLON_DIMS = (("lat", "lon"), ("latitude", "longitude"))

#: Unclassified land cover (MODIS MCD12Q1 uses 255): cells with no valid source pixel.
UNCLASSIFIED = 255
#: NLCD (CONUS, 30 m) to IGBP crosswalk. Approximate: evergreen forest is taken as needleleaf
#: (most US evergreen forest), shrub/scrub as open shrublands (NLCD's shrub class starts at 20 %
#: cover, IGBP's closed shrublands at 60 %), pasture/hay and the Alaska-only herbaceous/sedge/
#: lichen/moss classes as grasslands.
NLCD_TO_IGBP = {
    11: 17,
    12: 15,
    21: 13,
    22: 13,
    23: 13,
    24: 13,
    31: 16,
    41: 4,
    42: 1,
    43: 5,
    51: 7,
    52: 7,
    71: 10,
    72: 10,
    73: 10,
    74: 10,
    81: 10,
    82: 12,
    90: 11,
    95: 11,
}
_STATIC_ATTRS = {
    "elevation": ("m", "elevation"),
    "slope": ("degrees", "terrain slope"),
    "aspect": ("degrees", "terrain aspect (clockwise from north)"),
}


class _Unusable(Exception):
    """A file that opens but cannot serve the request: skipped and listed in the LoadReport."""


# --------------------------------------------------------------------------- the target grid


@dataclass(frozen=True)
class _Target:
    """The target grid: 1-D axes in its CRS, lon/lat of every cell centre, output coordinates."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    crs: CRS
    coords: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y), len(self.x)

    def spacing(self) -> tuple[float, float]:
        """Absolute cell sizes along x and y (a one-cell axis borrows the other's, else M01)."""
        dx = abs(float(self.x[1] - self.x[0])) if len(self.x) > 1 else None
        dy = abs(float(self.y[1] - self.y[0])) if len(self.y) > 1 else None
        dx = dx or dy or CELL_SIZE["M01"]
        return dx, dy or dx

    def bounds(self) -> tuple[float, float, float, float]:
        """Cell-edge bounds ``(left, bottom, right, top)`` in the target CRS."""
        dx, dy = self.spacing()
        return (
            float(self.x.min()) - dx / 2,
            float(self.y.min()) - dy / 2,
            float(self.x.max()) + dx / 2,
            float(self.y.max()) + dy / 2,
        )

    def transform(self) -> Affine:
        """North-up affine transform of the grid (origin at the north-west cell corner)."""
        left, _, _, top = self.bounds()
        dx, dy = self.spacing()
        return Affine(dx, 0.0, left, 0.0, -dy, top)

    def from_north_up(self, arr: np.ndarray) -> np.ndarray:
        """Reorder a north-up, west-to-east array into the target's own axis order."""
        if len(self.y) > 1 and self.y[1] > self.y[0]:
            arr = arr[::-1, :]
        if len(self.x) > 1 and self.x[1] < self.x[0]:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr)

    def lonlat_text(self) -> str:
        return (
            f"lon {np.nanmin(self.lon):.4f}..{np.nanmax(self.lon):.4f}, "
            f"lat {np.nanmin(self.lat):.4f}..{np.nanmax(self.lat):.4f}"
        )


def _target(grid: xr.Dataset | xr.DataArray | GridBox | _Target) -> _Target:
    """Normalise the target grid; lon/lat are taken from the grid or computed from x/y."""
    if isinstance(grid, _Target):
        return grid
    if isinstance(grid, GridBox):
        grid = xr.Dataset(coords=grid_coords(grid))
    if not isinstance(grid, xr.Dataset | xr.DataArray):
        raise TypeError(f"grid must be an xarray Dataset/DataArray or a GridBox, not {type(grid)}")
    for name in ("x", "y"):
        if name not in grid.coords or grid[name].ndim != 1 or grid[name].size == 0:
            raise ValueError(f"target grid needs a non-empty 1-D coordinate '{name}' in metres")
    crs = CRS.from_user_input(grid.attrs.get("crs", EASE2_CRS))
    x = np.asarray(grid["x"].values, dtype=float)
    y = np.asarray(grid["y"].values, dtype=float)
    has_lonlat = all(n in grid.coords and grid[n].dims == ("y", "x") for n in ("lat", "lon"))
    if has_lonlat:
        lon = np.asarray(grid["lon"].values, dtype=float)
        lat = np.asarray(grid["lat"].values, dtype=float)
    else:
        xx, yy = np.meshgrid(x, y)
        to_ll = _transformer(crs, CRS.from_epsg(4326))
        lon, lat = (np.asarray(a) for a in to_ll.transform(xx, yy))
    coords: dict[str, Any] = {
        "y": ("y", y, dict(grid["y"].attrs) or {"units": "m"}),
        "x": ("x", x, dict(grid["x"].attrs) or {"units": "m"}),
        "lat": (("y", "x"), lat, {"units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east"}),
    }
    return _Target(x=x, y=y, lon=lon, lat=lat, crs=crs, coords=coords)


def _describe(paths: list[str]) -> str:
    names = [os.path.basename(p) for p in paths]
    if not names:
        return "(no files)"
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# --------------------------------------------------------------------------- Daymet


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


def _grid_mapping(ds: xr.Dataset, da: xr.DataArray) -> CRS | None:
    """CRS from the CF grid-mapping variable named by ``da`` (or the only one in ``ds``)."""
    name = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if name is None:
        cands = [n for n, v in ds.variables.items() if "grid_mapping_name" in v.attrs]
        cands += [n for n, v in ds.variables.items() if "crs_wkt" in v.attrs and n not in cands]
        name = cands[0] if cands else None
    if name is None or name not in ds.variables:
        return None
    key = tuple(sorted((str(k), _hashable(v)) for k, v in ds[name].attrs.items()))
    return _crs_from_cf(key)


def _hashable(value: Any) -> Any:
    if isinstance(value, np.ndarray | list | tuple):
        return tuple(_hashable(v) for v in np.asarray(value).ravel().tolist())
    return value.item() if isinstance(value, np.generic) else value


@lru_cache(maxsize=16)
def _crs_from_cf(key: tuple) -> CRS:
    """``CRS.from_cf`` takes about half a second (datum look-up): cached per distinct mapping."""
    return CRS.from_cf(dict(key))


@lru_cache(maxsize=32)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


@dataclass
class _Source:
    """Where the target cell centres fall on a 1-D source grid, ready for ``DataArray.interp``."""

    xdim: str
    ydim: str
    px: np.ndarray  # target centres in source units, (ny, nx), clipped to the outermost centres
    py: np.ndarray
    xsel: slice
    ysel: slice

    def sample(self, da: xr.DataArray) -> xr.DataArray:
        sub = da.isel({self.xdim: self.xsel, self.ydim: self.ysel}).load()
        pts = {
            self.xdim: xr.DataArray(self.px, dims=("_y", "_x")),
            self.ydim: xr.DataArray(self.py, dims=("_y", "_x")),
        }
        out = sub.astype(np.float64).interp(pts, method="linear")
        out = out.drop_vars([self.xdim, self.ydim], errors="ignore")
        out.attrs = dict(da.attrs)
        return out.rename({"_y": "y", "_x": "x"}).transpose("time", "y", "x")


def _covering_slice(axis: np.ndarray, lo: float, hi: float, margin: float) -> slice:
    idx = np.nonzero((axis >= lo - margin) & (axis <= hi + margin))[0]
    return slice(int(idx.min()), int(idx.max()) + 1)


def _daymet_source(ds: xr.Dataset, da: xr.DataArray, path: str, tgt: _Target) -> _Source:
    """Locate the target cells on the file's grid; ReaderError if the file does not cover them."""
    dims = set(da.dims)
    if {"x", "y"} <= dims:
        xdim, ydim = "x", "y"
        crs = _grid_mapping(ds, da)
        if crs is None:
            raise _Unusable(f"variable '{da.name}' on x/y has no grid-mapping variable (CRS)")
        unit = str(ds["x"].attrs.get("units", "m")).strip().lower()
        if unit not in _KM | _M:
            raise _Unusable(f"x has units '{unit}': expected km or m")
        scale = 1000.0 if unit in _KM else 1.0
        unit_name = "km" if unit in _KM else "m"
        tr = _transformer(CRS.from_epsg(4326), crs)
        px, py = (np.asarray(a) / scale for a in tr.transform(tgt.lon, tgt.lat))
    else:
        pair = next((p for p in _LATLON_DIMS if set(p) <= dims), None)
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
    return _Source(
        xdim=xdim,
        ydim=ydim,
        px=px,
        py=py,
        xsel=_covering_slice(xs, np.nanmin(px), np.nanmax(px), 1.5 * sx),
        ysel=_covering_slice(ys, np.nanmin(py), np.nanmax(py), 1.5 * sy),
    )


def _check_units(da: xr.DataArray, name: str) -> None:
    units = da.attrs.get("units")
    expected = DAYMET_UNITS.get(name)
    if units is None or expected is None:
        return
    if str(units).strip().lower() not in _UNIT_ALIASES[expected] | {expected.lower()}:
        raise _Unusable(f"variable '{name}' has units '{units}': expected Daymet's {expected}")


def _read_daymet_file(
    path: str,
    variables: tuple[str, ...],
    tgt: _Target,
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
) -> dict[str, xr.DataArray]:
    """The requested variables of one file on the target grid (may be empty in time)."""
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
        sources: dict[tuple, _Source] = {}
        out = {}
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
            out[name] = sources[key].sample(da)
    return out


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
    tgt = _target(grid)
    variables = tuple(variables)
    files = [str(paths)] if isinstance(paths, str | os.PathLike) else [str(p) for p in paths]
    t0 = pd.Timestamp(start).normalize() if start is not None else None
    t1 = pd.Timestamp(end).normalize() if end is not None else None
    report = LoadReport()
    pieces: dict[str, list[xr.DataArray]] = {v: [] for v in variables}
    for path in files:
        try:
            got = _read_daymet_file(path, variables, tgt, t0, t1)
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
        for i, day in enumerate(days[1:], start=1):
            if day.month == 12 and day.day == 31 and day.is_leap_year and day not in have:
                if days[i - 1] in have:
                    values[i] = values[i - 1]
                    filled.add(day)
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


# --------------------------------------------------------------------------- static rasters


def _open_netcdf_raster(path: str, variable: str | None, band: int) -> xr.DataArray:
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise ReaderError(path, f"not a raster: cannot be opened as NetCDF ({exc})") from exc

    def spatial(v: xr.DataArray) -> tuple[str, str] | None:
        for ydim, xdim in (("y", "x"), *_LATLON_DIMS):
            if ydim in v.dims and xdim in v.dims:
                return ydim, xdim
        return None

    if variable is None:
        cands = [n for n, v in ds.data_vars.items() if spatial(v) is not None]
        if not cands:
            raise ReaderError(path, "not a raster: no variable on y/x or lat/lon axes")
        if len(cands) > 1:
            raise ReaderError(path, f"holds rasters {', '.join(map(str, cands))}: pass variable=")
        variable = str(cands[0])
    if variable not in ds.data_vars:
        raise ReaderError(path, f"has no variable '{variable}' (has {', '.join(map(str, ds))})")
    da = ds[variable]
    dims = spatial(da)
    if dims is None:
        raise ReaderError(path, f"variable '{variable}' has dims {da.dims}: not a y/x raster")
    ydim, xdim = dims
    for d in [d for d in da.dims if d not in dims]:
        if d == "band" and "band" in da.coords and band in da["band"].values:
            da = da.sel(band=band, drop=True)
        elif da.sizes[d] == 1:
            da = da.isel({d: 0}, drop=True)
        else:
            raise ReaderError(path, f"variable '{variable}' has an extra dimension '{d}'")
    if (ydim, xdim) == ("y", "x"):
        crs = _grid_mapping(ds, da)
        if crs is None:
            try:
                crs = da.rio.crs or ds.rio.crs
            except Exception:
                crs = None
        if crs is None:
            raise ReaderError(path, f"variable '{variable}' on x/y has no CRS (grid_mapping)")
        unit = str(ds["x"].attrs.get("units", "m")).strip().lower()
        if crs.is_projected and unit in _KM:
            da = da.assign_coords(x=da["x"] * 1000.0, y=da["y"] * 1000.0)
    else:
        crs = CRS.from_epsg(4326)
    attrs = dict(da.attrs)
    da = da.reset_coords(drop=True).rename({ydim: "y", xdim: "x"}).transpose("y", "x")
    da = da.drop_vars([c for c in da.coords if c not in ("x", "y")])
    da.attrs = attrs
    return da.rio.write_crs(crs).rio.set_spatial_dims(x_dim="x", y_dim="y")


def _open_geotiff(path: str, variable: str | None, band: int) -> xr.DataArray:
    try:
        da = rioxarray.open_rasterio(path, masked=True)
    except Exception as exc:
        raise ReaderError(path, f"not a raster rasterio can read ({exc})") from exc
    if isinstance(da, list):
        raise ReaderError(path, "holds several subdatasets: convert the one wanted to GeoTIFF")
    if isinstance(da, xr.Dataset):
        names = list(map(str, da.data_vars))
        if variable is None or variable not in names:
            raise ReaderError(path, f"holds rasters {', '.join(names)}: pass variable=")
        da = da[variable]
    if "band" in da.dims:
        bands = [int(b) for b in np.atleast_1d(da["band"].values)]
        if band not in bands:
            raise ReaderError(path, f"has band(s) {bands}, not band {band}")
        da = da.sel(band=band, drop=True)
    if da.rio.crs is None:
        raise ReaderError(path, "raster has no CRS")
    return da


def _source_raster(path: str, variable: str | None, band: int, tgt: _Target) -> xr.DataArray:
    """The source raster, clipped to the region (plus margin), float64 with NaN as nodata."""
    if Path(path).suffix.lower() in _NETCDF_SUFFIXES:
        da = _open_netcdf_raster(path, variable, band)
    else:
        da = _open_geotiff(path, variable, band)
    crs = da.rio.crs
    xs = np.asarray(da["x"].values, dtype=float)
    ys = np.asarray(da["y"].values, dtype=float)
    if xs.size < 2 or ys.size < 2:
        raise ReaderError(path, "raster has fewer than 2 pixels along an axis")
    left, bottom, right, top = da.rio.bounds()
    crs = CRS.from_user_input(crs)
    to_src = _transformer(tgt.crs, crs)
    xx, yy = np.meshgrid(tgt.x, tgt.y)
    cx, cy = (np.asarray(a) for a in to_src.transform(xx, yy))
    if not (
        np.all(np.isfinite(cx))
        and cx.min() >= left
        and cx.max() <= right
        and cy.min() >= bottom
        and cy.max() <= top
    ):
        raise ReaderError(
            path,
            f"raster does not cover the region: raster bounds x {left:.6g}..{right:.6g}, "
            f"y {bottom:.6g}..{top:.6g} ({crs.name}); the region's cell centres need "
            f"x {np.nanmin(cx):.6g}..{np.nanmax(cx):.6g}, y {np.nanmin(cy):.6g}..{np.nanmax(cy):.6g} "
            f"({tgt.lonlat_text()})",
        )
    # Clip to the region's cell edges plus a margin (one target cell, at least 3 pixels) so that
    # a large raster is read only where needed and the resampling kernels see full footprints.
    bx0, by0, bx1, by1 = to_src.transform_bounds(*tgt.bounds(), densify_pts=21)
    res_x, res_y = abs(xs[1] - xs[0]), abs(ys[1] - ys[0])
    mx = max(3 * res_x, (bx1 - bx0) / len(tgt.x))
    my = max(3 * res_y, (by1 - by0) / len(tgt.y))
    da = da.isel(x=_covering_slice(xs, bx0, bx1, mx), y=_covering_slice(ys, by0, by1, my))
    attrs = dict(da.attrs)
    da = da.reset_coords(drop=True).load().astype(np.float64)
    # North-up, west to east: GDAL warps such rasters most reliably (lat/lon NetCDFs often ascend).
    if da["y"].values[0] < da["y"].values[-1]:
        da = da.isel(y=slice(None, None, -1))
    if da["x"].values[0] > da["x"].values[-1]:
        da = da.isel(x=slice(None, None, -1))
    da.attrs = {k: v for k, v in attrs.items() if k not in ("_FillValue", "missing_value")}
    da.encoding = {}
    return da.rio.write_crs(crs).rio.write_nodata(np.nan, encoded=False)


def _centre_counts(src: xr.DataArray, tgt: _Target) -> np.ndarray | None:
    """Source pixel centres per target cell (north-up), or None when every cell surely has one.

    A lattice of pixel spacing a x b puts a centre in every square whose side exceeds
    sqrt(a^2 + b^2); pixels that fine (with a 10 % margin for projection distortion) skip the
    count.
    """
    to_tgt = _transformer(CRS.from_user_input(src.rio.crs), tgt.crs)
    xs, ys = src["x"].values, src["y"].values
    i, j = len(ys) // 2, len(xs) // 2
    px, py = to_tgt.transform(
        np.array([xs[j], xs[j + 1] if j + 1 < len(xs) else xs[j - 1], xs[j]]),
        np.array([ys[i], ys[i], ys[i + 1] if i + 1 < len(ys) else ys[i - 1]]),
    )
    a = np.hypot(px[1] - px[0], py[1] - py[0])
    b = np.hypot(px[2] - px[0], py[2] - py[0])
    dx, dy = tgt.spacing()
    if np.hypot(a, b) <= 0.9 * min(dx, dy):
        return None
    xx, yy = np.meshgrid(xs, ys)
    X, Y = (np.asarray(v).ravel() for v in to_tgt.transform(xx, yy))
    left, _, _, top = tgt.bounds()
    col = np.floor((X - left) / dx)
    row = np.floor((top - Y) / dy)
    ny, nx = tgt.shape
    ok = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    flat = row[ok].astype(np.int64) * nx + col[ok].astype(np.int64)
    return np.bincount(flat, minlength=ny * nx).reshape(ny, nx)


def _warp(src: xr.DataArray, tgt: _Target, resampling: Resampling) -> np.ndarray:
    out = src.rio.reproject(
        tgt.crs, shape=tgt.shape, transform=tgt.transform(), resampling=resampling, nodata=np.nan
    )
    return np.asarray(out.values, dtype=np.float64)


_METHODS = {
    "continuous": {"bilinear": Resampling.bilinear, "average": Resampling.average},
    "categorical": {"mode": Resampling.mode, "nearest": Resampling.nearest},
}
_FALLBACK = {"average": Resampling.bilinear, "mode": Resampling.nearest}


def _regrid(src: xr.DataArray, tgt: _Target, method: str, kind: str) -> np.ndarray:
    """Warp ``src`` onto the target grid; returns values in the target's axis order."""
    values = _warp(src, tgt, _METHODS[kind][method])
    if method in _FALLBACK:
        counts = _centre_counts(src, tgt)
        if counts is not None and (counts == 0).any():
            fallback = _warp(src, tgt, _FALLBACK[method])
            values = np.where(counts == 0, fallback, values)
    return tgt.from_north_up(values)


def _resolve_method(kind: str, method: str | None) -> str:
    if kind not in _METHODS:
        raise ValueError(f"kind must be 'continuous' or 'categorical', not {kind!r}")
    method = method or ("bilinear" if kind == "continuous" else "mode")
    if method not in _METHODS[kind]:
        raise ValueError(f"method for {kind} fields must be one of {sorted(_METHODS[kind])}")
    return method


def read_static_raster(
    path: PathLike,
    grid: xr.Dataset | GridBox,
    *,
    variable: str | None = None,
    kind: str = "continuous",
    method: str | None = None,
    band: int = 1,
    circular: bool = False,
) -> xr.DataArray:
    """One static field from a GeoTIFF or NetCDF raster, regridded onto the target grid as (y, x).

    GeoTIFFs (and anything else GDAL reads) open through rioxarray; NetCDF files (``.nc``, ...)
    through xarray, with the CRS from the CF grid-mapping variable (x/y in m or km) or EPSG:4326
    for ``lat``/``lon`` axes. Regridding is GDAL warping onto the target transform (cell size =
    spacing, origin at the north-west cell corner).

    ``kind="continuous"``: ``method="bilinear"`` (default; GDAL widens the kernel when the source
    is finer than the target) or ``"average"`` (area mean of the source pixels in each cell,
    weighted by overlap); a cell holding no source pixel centre (a source coarser than 1 km)
    takes the bilinear value instead, which avoids blocky copies of coarse pixels.
    ``kind="categorical"``: ``"mode"`` (default: majority of the source pixels in each cell;
    nearest where a cell holds no source pixel centre) or ``"nearest"``. Categorical codes come
    back as float with NaN (:func:`land_cover_from_raster` makes integers).

    ``circular=True`` treats values as angles in degrees (aspect): their sine and cosine are
    regridded and recombined, so 359 and 1 average to 0, not 180; negative angles (GDAL's flat
    marker) are nodata. Nodata pixels are NaN and never mixed into values. ``variable`` picks the
    NetCDF variable (and names the result; default the file name); ``band`` the GeoTIFF band.

    Raises ReaderError when the file is not a raster, has no CRS, or does not cover every
    target cell centre (naming the raster's and the region's bounds).
    """
    method = _resolve_method(kind, method)
    tgt = _target(grid)
    path = str(path)
    src = _source_raster(path, variable, band, tgt)
    if circular:
        rad = np.deg2rad(src.where(src >= 0))

        def part(values: xr.DataArray) -> np.ndarray:
            values = values.rio.write_crs(src.rio.crs).rio.write_nodata(np.nan, encoded=False)
            return _regrid(values, tgt, method, kind)

        s, c = part(np.sin(rad)), part(np.cos(rad))
        values = np.where(np.hypot(s, c) > 1e-12, np.rad2deg(np.arctan2(s, c)) % 360.0, 0.0)
        values = np.where(np.isfinite(s) & np.isfinite(c), values, np.nan)
    else:
        values = _regrid(src, tgt, method, kind)
    attrs = {k: v for k, v in src.attrs.items() if k in ("units", "long_name", "standard_name")}
    attrs.update(source=os.path.basename(path), resampling=method)
    name = variable or Path(path).stem
    return xr.DataArray(values, dims=("y", "x"), coords=tgt.coords, name=name, attrs=attrs)


def land_cover_from_raster(
    path: PathLike,
    grid: xr.Dataset | GridBox,
    *,
    codes: str = "igbp",
    method: str = "mode",
    variable: str | None = None,
    band: int = 1,
) -> xr.DataArray:
    """Integer IGBP land cover on the target grid, with CF ``flag_values``/``flag_meanings``.

    ``codes="igbp"`` reads IGBP codes 1..17 (MODIS MCD12Q1 LC_Type1); other values (0, 255, ...)
    are treated as nodata, and a raster whose valid pixels are mostly not IGBP codes is refused
    (an NLCD raster, say: pass ``codes="nlcd"``). ``codes="nlcd"`` maps NLCD classes through
    :data:`NLCD_TO_IGBP` at the source resolution, before resampling, so that classes merging
    into one IGBP class vote together. Resampling is the majority (``"mode"``, nearest where a
    cell holds no source pixel centre) or ``"nearest"``. Cells without any valid pixel get
    :data:`UNCLASSIFIED` (255, "unclassified"), listed in the flags only when it occurs.
    """
    tgt = _target(grid)
    path = str(path)
    method = _resolve_method("categorical", method)
    src = _source_raster(path, variable, band, tgt)
    vals = src.values
    finite = np.isfinite(vals)
    ints = np.where(finite, np.round(np.where(finite, vals, -1)), -1).astype(np.int64)
    if codes == "nlcd":
        table = np.full(256, np.nan)
        for k, v in NLCD_TO_IGBP.items():
            table[k] = v
        ok = (ints >= 0) & (ints < 256)
        mapped = np.where(ok, table[np.clip(ints, 0, 255)], np.nan)
    elif codes == "igbp":
        is_igbp = np.isin(ints, list(IGBP_CLASSES))
        n_valid = int(finite.sum())
        if n_valid and (finite & ~is_igbp).sum() > 0.5 * n_valid:
            odd = sorted(set(np.unique(ints[finite & ~is_igbp]).tolist()))[:8]
            raise ReaderError(
                path, f"most pixels are not IGBP codes 1..17 (e.g. {odd}): NLCD? pass codes='nlcd'"
            )
        mapped = np.where(is_igbp, ints, np.nan).astype(np.float64)
    else:
        raise ValueError(f"codes must be 'igbp' or 'nlcd', not {codes!r}")
    src = src.copy(data=mapped).rio.write_crs(src.rio.crs).rio.write_nodata(np.nan, encoded=False)
    values = _regrid(src, tgt, method, "categorical")
    lc = np.where(np.isfinite(values), np.round(np.nan_to_num(values)), UNCLASSIFIED)
    lc = lc.astype(np.int16)
    present = sorted(int(c) for c in np.unique(lc))
    names = {**IGBP_CLASSES, UNCLASSIFIED: "unclassified"}
    attrs = {
        "long_name": "IGBP land cover (MODIS MCD12Q1 LC_Type1)",
        "flag_values": np.array(present, dtype=np.int16),
        "flag_meanings": " ".join(names[c] for c in present),
        "source": os.path.basename(path) + (" (NLCD mapped to IGBP)" if codes == "nlcd" else ""),
        "resampling": method,
    }
    return xr.DataArray(lc, dims=("y", "x"), coords=tgt.coords, name=LAND_COVER, attrs=attrs)


# --------------------------------------------------------------------------- terrain


def terrain_from_elevation(elev: xr.DataArray) -> xr.Dataset:
    """``elevation``, ``slope`` and ``aspect`` (degrees) from a gridded elevation ``(y, x)``.

    Steps come from the ``x``/``y`` coordinates. On EASE-Grid 2.0 (the default CRS; another one
    is named by an ``crs`` attribute) grid metres differ from ground metres away from 30 degrees
    latitude, so steps are divided by the projection's parallel and meridional scale factors at
    each cell; in any other CRS grid metres are used as they are.
    """
    elev = elev.transpose("y", "x")
    x = np.asarray(elev["x"].values, dtype=float)
    y = np.asarray(elev["y"].values, dtype=float)
    dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
    dy = float(y[1] - y[0]) if len(y) > 1 else -1.0
    crs = CRS.from_user_input(elev.attrs.get("crs", EASE2_CRS))
    if crs == CRS.from_user_input(EASE2_CRS):
        tgt = _target(elev.to_dataset(name="_elev"))
        factors = Proj(crs).get_factors(tgt.lon, tgt.lat)
        dx = dx / np.asarray(factors.parallel_scale)
        dy = dy / np.asarray(factors.meridional_scale)
    slope, aspect = slope_aspect(elev.values, dx, dy)
    ds = xr.Dataset(coords={k: v for k, v in elev.coords.items() if k in ("x", "y", "lat", "lon")})
    attrs = {"units": "m", "long_name": "elevation", **elev.attrs}
    ds["elevation"] = (("y", "x"), np.asarray(elev.values, dtype=float), attrs)
    for name, values in (("slope", slope), ("aspect", aspect)):
        units, long_name = _STATIC_ATTRS[name]
        ds[name] = (("y", "x"), values, {"units": units, "long_name": long_name})
    ds["slope"].attrs["derived"] = "from 1 km elevation (numpy gradient)"
    ds["aspect"].attrs["derived"] = "from 1 km elevation (numpy gradient)"
    return ds


# --------------------------------------------------------------------------- convenience


def read_static_covariates(
    files: Mapping[str, PathLike | tuple[PathLike, Mapping[str, Any]]],
    grid: xr.Dataset | GridBox,
    *,
    method: str = "average",
) -> xr.Dataset:
    """Static covariates ``(y, x)`` on the target grid from one raster per field.

    ``files`` maps a name (``elevation``, ``clay``, ``sand``, ``bulk_density``, ``soc``,
    ``slope``, ``aspect``, ``land_cover`` or any other) to a path, or to ``(path, options)`` with
    keyword options for :func:`read_static_raster` / :func:`land_cover_from_raster` (for example
    ``{"codes": "nlcd"}`` or ``{"variable": "clay"}``). Continuous fields use ``method``
    (default ``"average"``: the area mean is the natural 1 km value of a 30-250 m source);
    aspect is regridded as an angle. When elevation is given without slope/aspect, they are
    derived from the 1 km elevation (:func:`terrain_from_elevation`), like the synthetic scenario.
    Units are the file's ``units`` attribute, else m for elevation and degrees for slope/aspect.
    """
    tgt = _target(grid)
    fields: dict[str, xr.DataArray] = {}
    for name, spec in files.items():
        path, opts = (spec[0], dict(spec[1])) if isinstance(spec, tuple) else (spec, {})
        if name == LAND_COVER:
            fields[name] = land_cover_from_raster(path, tgt, **opts)
            continue
        opts.setdefault("method", method)
        if name == "aspect":
            opts.setdefault("circular", True)
        da = read_static_raster(path, tgt, **opts)
        units, long_name = _STATIC_ATTRS.get(name, (None, name))
        da.attrs.setdefault("long_name", long_name)
        if units is not None:
            da.attrs.setdefault("units", units)
        fields[name] = da.rename(name)
    if "elevation" in fields and not ("slope" in fields and "aspect" in fields):
        elev = fields["elevation"]
        if tgt.crs != CRS.from_user_input(EASE2_CRS):
            elev = elev.assign_attrs(crs=tgt.crs.to_string())
        terrain = terrain_from_elevation(elev)
        for name in ("slope", "aspect"):
            fields.setdefault(name, terrain[name])
    order = [n for n in STATIC_COVARIATES if n in fields]
    order += [n for n in fields if n not in order and n != LAND_COVER]
    order += [LAND_COVER] if LAND_COVER in fields else []
    return xr.Dataset({n: fields[n].variable for n in order}, coords=tgt.coords)
