"""The regridding engine of the covariate readers: the target grid and the ways values reach it.

The target is a contract-like Dataset (1-D ``x``/``y`` cell centres in metres of EASE-Grid 2.0,
EPSG:6933, unless its ``crs`` attribute says otherwise) or a
:class:`~stimpute_core.data.grid.GridBox`, normalised to a :class:`TargetGrid`. Two methods:

- point sampling (:class:`PointSampler`): bilinear interpolation at each target cell centre
  projected into a 1-D source grid; used for Daymet, whose 1 km cells are about as large as the
  target's, so point interpolation is natural and keeps linear fields exact;
- warping (:func:`regrid`): rasterio/GDAL ``rio.reproject`` onto the target transform, which
  handles any CRS, nodata and area averaging of fine rasters (30 m DEMs, POLARIS, NLCD).

Also the CRS helpers both readers use (CF grid mappings, cached transformers) and the openers
of source rasters (GeoTIFF through rioxarray, NetCDF through xarray), which raise
:class:`~.report.ReaderError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import rioxarray
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling

from ..grid import CELL_SIZE, EASE2_CRS, GridBox, grid_coords
from .report import ReaderError

__all__ = [
    "KM_UNITS",
    "LATLON_DIMS",
    "M_UNITS",
    "PointSampler",
    "TargetGrid",
    "cf_crs",
    "covering_slice",
    "open_geotiff",
    "open_netcdf_raster",
    "regrid",
    "resolve_method",
    "target_grid",
    "transformer",
]

#: Spellings of kilometre and metre axis units.
KM_UNITS = {"km", "kilometer", "kilometers", "kilometre", "kilometres"}
M_UNITS = {"m", "meter", "meters", "metre", "metres"}
#: Dimension names of regular lon/lat grids, as (y, x).
LATLON_DIMS = (("lat", "lon"), ("latitude", "longitude"))


# --------------------------------------------------------------------------- the target grid


@dataclass(frozen=True)
class TargetGrid:
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
        """The grid's lon/lat extent, for messages."""
        return (
            f"lon {np.nanmin(self.lon):.4f}..{np.nanmax(self.lon):.4f}, "
            f"lat {np.nanmin(self.lat):.4f}..{np.nanmax(self.lat):.4f}"
        )


def target_grid(grid: xr.Dataset | xr.DataArray | GridBox | TargetGrid) -> TargetGrid:
    """Normalise the target grid; lon/lat are taken from the grid or computed from x/y."""
    if isinstance(grid, TargetGrid):
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
        to_ll = transformer(crs, CRS.from_epsg(4326))
        lon, lat = (np.asarray(a) for a in to_ll.transform(xx, yy))
    coords: dict[str, Any] = {
        "y": ("y", y, dict(grid["y"].attrs) or {"units": "m"}),
        "x": ("x", x, dict(grid["x"].attrs) or {"units": "m"}),
        "lat": (("y", "x"), lat, {"units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east"}),
    }
    return TargetGrid(x=x, y=y, lon=lon, lat=lat, crs=crs, coords=coords)


# --------------------------------------------------------------------------- CRS helpers


def cf_crs(ds: xr.Dataset, da: xr.DataArray) -> CRS | None:
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
def transformer(src: CRS, dst: CRS) -> Transformer:
    """An ``always_xy`` transformer from ``src`` to ``dst``, cached (building one is slow)."""
    return Transformer.from_crs(src, dst, always_xy=True)


# --------------------------------------------------------------------------- source rasters


def open_netcdf_raster(path: str, variable: str | None, band: int) -> xr.DataArray:
    """One raster (y, x) of a NetCDF file with its CRS: CF grid mapping (x/y in m or km) or lon/lat."""
    try:
        ds = xr.open_dataset(path)
    except Exception as exc:
        raise ReaderError(path, f"not a raster: cannot be opened as NetCDF ({exc})") from exc

    def spatial(v: xr.DataArray) -> tuple[str, str] | None:
        for ydim, xdim in (("y", "x"), *LATLON_DIMS):
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
        crs = cf_crs(ds, da)
        if crs is None:
            try:
                crs = da.rio.crs or ds.rio.crs
            except Exception:
                crs = None
        if crs is None:
            raise ReaderError(path, f"variable '{variable}' on x/y has no CRS (grid_mapping)")
        unit = str(ds["x"].attrs.get("units", "m")).strip().lower()
        if crs.is_projected and unit in KM_UNITS:
            da = da.assign_coords(x=da["x"] * 1000.0, y=da["y"] * 1000.0)
    else:
        crs = CRS.from_epsg(4326)
    attrs = dict(da.attrs)
    da = da.reset_coords(drop=True).rename({ydim: "y", xdim: "x"}).transpose("y", "x")
    da = da.drop_vars([c for c in da.coords if c not in ("x", "y")])
    da.attrs = attrs
    return da.rio.write_crs(crs).rio.set_spatial_dims(x_dim="x", y_dim="y")


def open_geotiff(path: str, variable: str | None, band: int) -> xr.DataArray:
    """One band of a GeoTIFF (or any raster GDAL reads) through rioxarray, nodata masked."""
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


# --------------------------------------------------------------------------- point sampling


@dataclass
class PointSampler:
    """Where the target cell centres fall on a 1-D source grid, ready for ``DataArray.interp``."""

    xdim: str
    ydim: str
    px: np.ndarray  # target centres in source units, (ny, nx), clipped to the outermost centres
    py: np.ndarray
    xsel: slice
    ysel: slice

    def sample(self, da: xr.DataArray) -> xr.DataArray:
        """``da`` (time, source y, source x) interpolated bilinearly at the target centres."""
        sub = da.isel({self.xdim: self.xsel, self.ydim: self.ysel}).load()
        pts = {
            self.xdim: xr.DataArray(self.px, dims=("_y", "_x")),
            self.ydim: xr.DataArray(self.py, dims=("_y", "_x")),
        }
        out = sub.astype(np.float64).interp(pts, method="linear")
        out = out.drop_vars([self.xdim, self.ydim], errors="ignore")
        out.attrs = dict(da.attrs)
        return out.rename({"_y": "y", "_x": "x"}).transpose("time", "y", "x")


def covering_slice(axis: np.ndarray, lo: float, hi: float, margin: float) -> slice:
    """The index slice of ``axis`` values within ``lo - margin .. hi + margin``."""
    idx = np.nonzero((axis >= lo - margin) & (axis <= hi + margin))[0]
    return slice(int(idx.min()), int(idx.max()) + 1)


# --------------------------------------------------------------------------- warping


def _centre_counts(src: xr.DataArray, tgt: TargetGrid) -> np.ndarray | None:
    """Source pixel centres per target cell (north-up), or None when every cell surely has one.

    A lattice of pixel spacing a x b puts a centre in every square whose side exceeds
    sqrt(a^2 + b^2); pixels that fine (with a 10 % margin for projection distortion) skip the
    count.
    """
    to_tgt = transformer(CRS.from_user_input(src.rio.crs), tgt.crs)
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


def _warp(src: xr.DataArray, tgt: TargetGrid, resampling: Resampling) -> np.ndarray:
    out = src.rio.reproject(
        tgt.crs, shape=tgt.shape, transform=tgt.transform(), resampling=resampling, nodata=np.nan
    )
    return np.asarray(out.values, dtype=np.float64)


_METHODS = {
    "continuous": {"bilinear": Resampling.bilinear, "average": Resampling.average},
    "categorical": {"mode": Resampling.mode, "nearest": Resampling.nearest},
}
_FALLBACK = {"average": Resampling.bilinear, "mode": Resampling.nearest}


def regrid(src: xr.DataArray, tgt: TargetGrid, method: str, kind: str) -> np.ndarray:
    """Warp ``src`` onto the target grid; returns values in the target's axis order.

    ``method`` is one of ``_METHODS[kind]``; with ``average``/``mode``, a cell holding no source
    pixel centre (a source coarser than the target) takes the bilinear/nearest value instead.
    """
    values = _warp(src, tgt, _METHODS[kind][method])
    if method in _FALLBACK:
        counts = _centre_counts(src, tgt)
        if counts is not None and (counts == 0).any():
            fallback = _warp(src, tgt, _FALLBACK[method])
            values = np.where(counts == 0, fallback, values)
    return tgt.from_north_up(values)


def resolve_method(kind: str, method: str | None) -> str:
    """The resampling method for ``kind`` (default bilinear / mode); ``ValueError`` if unknown."""
    if kind not in _METHODS:
        raise ValueError(f"kind must be 'continuous' or 'categorical', not {kind!r}")
    method = method or ("bilinear" if kind == "continuous" else "mode")
    if method not in _METHODS[kind]:
        raise ValueError(f"method for {kind} fields must be one of {sorted(_METHODS[kind])}")
    return method
