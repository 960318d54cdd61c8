"""Static rasters (terrain, soils, land cover; GeoTIFF or NetCDF) onto the target 1 km grid.

Rasters are warped with rasterio/GDAL onto the target transform (:func:`.regrid.regrid`);
slope and aspect follow the synthetic scenario's conventions
(:func:`~stimpute_core.data.terrain.slope_aspect`). Every field comes back as ``(y, x)`` with
the grid's ``x``/``y``/``lat``/``lon`` coordinates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from pyproj import CRS, Proj

from ..contract import IGBP_CLASSES, LAND_COVER, STATIC_COVARIATES, STATIC_RANGES
from ..grid import EASE2_CRS, GridBox
from ..terrain import slope_aspect
from .formats import XARRAY_RASTER_SUFFIXES, PathLike, has_suffix
from .regrid import (
    TargetGrid,
    covering_slice,
    open_geotiff,
    open_netcdf_raster,
    regrid,
    resolve_method,
    target_grid,
    transformer,
)
from .report import ReaderError
from .soil_units import to_contract_units

__all__ = [
    "NLCD_TO_IGBP",
    "UNCLASSIFIED",
    "land_cover_from_raster",
    "read_static_covariates",
    "read_static_raster",
    "terrain_from_elevation",
]

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


def _source_raster(path: str, variable: str | None, band: int, tgt: TargetGrid) -> xr.DataArray:
    """The source raster, clipped to the region (plus margin), float64 with NaN as nodata."""
    if has_suffix(path, XARRAY_RASTER_SUFFIXES):
        da = open_netcdf_raster(path, variable, band)
    else:
        da = open_geotiff(path, variable, band)
    crs = da.rio.crs
    xs = np.asarray(da["x"].values, dtype=float)
    ys = np.asarray(da["y"].values, dtype=float)
    if xs.size < 2 or ys.size < 2:
        raise ReaderError(path, "raster has fewer than 2 pixels along an axis")
    left, bottom, right, top = da.rio.bounds()
    crs = CRS.from_user_input(crs)
    to_src = transformer(tgt.crs, crs)
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
    da = da.isel(x=covering_slice(xs, bx0, bx1, mx), y=covering_slice(ys, by0, by1, my))
    attrs = dict(da.attrs)
    da = da.reset_coords(drop=True).load().astype(np.float64)
    # A GeoTIFF band's scale/offset (GDAL metadata) is not applied by rioxarray: apply it here.
    # (NetCDF ``scale_factor``/``add_offset`` are decoded by xarray and never reach attrs.)
    scale, offset = float(attrs.pop("scale_factor", 1.0)), float(attrs.pop("add_offset", 0.0))
    if scale != 1.0 or offset != 0.0:
        da = da * scale + offset
        attrs["band_scale"] = f"x {scale:g} + {offset:g} (the raster's scale/offset)"
    # North-up, west to east: GDAL warps such rasters most reliably (lat/lon NetCDFs often ascend).
    if da["y"].values[0] < da["y"].values[-1]:
        da = da.isel(y=slice(None, None, -1))
    if da["x"].values[0] > da["x"].values[-1]:
        da = da.isel(x=slice(None, None, -1))
    da.attrs = {k: v for k, v in attrs.items() if k not in ("_FillValue", "missing_value")}
    da.encoding = {}
    return da.rio.write_crs(crs).rio.write_nodata(np.nan, encoded=False)


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
    method = resolve_method(kind, method)
    tgt = target_grid(grid)
    path = str(path)
    src = _source_raster(path, variable, band, tgt)
    if circular:
        rad = np.deg2rad(src.where(src >= 0))

        def part(values: xr.DataArray) -> np.ndarray:
            values = values.rio.write_crs(src.rio.crs).rio.write_nodata(np.nan, encoded=False)
            return regrid(values, tgt, method, kind)

        s, c = part(np.sin(rad)), part(np.cos(rad))
        values = np.where(np.hypot(s, c) > 1e-12, np.rad2deg(np.arctan2(s, c)) % 360.0, 0.0)
        values = np.where(np.isfinite(s) & np.isfinite(c), values, np.nan)
    else:
        values = regrid(src, tgt, method, kind)
    keep = ("units", "long_name", "standard_name", "band_scale")
    attrs = {k: v for k, v in src.attrs.items() if k in keep}
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
    tgt = target_grid(grid)
    path = str(path)
    method = resolve_method("categorical", method)
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
    values = regrid(src, tgt, method, "categorical")
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
        tgt = target_grid(elev.to_dataset(name="_elev"))
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
    scales: Mapping[str, Mapping[str, Any]] | None = None,
) -> xr.Dataset:
    """Static covariates ``(y, x)`` on the target grid from one raster per field.

    ``files`` maps a name (``elevation``, ``clay``, ``sand``, ``bulk_density``, ``soc``,
    ``slope``, ``aspect``, ``land_cover`` or any other) to a path, or to ``(path, options)`` with
    keyword options for :func:`read_static_raster` / :func:`land_cover_from_raster` (for example
    ``{"codes": "nlcd"}`` or ``{"variable": "clay"}``). Continuous fields use ``method``
    (default ``"average"``: the area mean is the natural 1 km value of a 30-250 m source);
    aspect is regridded as an angle. When elevation is given without slope/aspect, they are
    derived from the 1 km elevation (:func:`terrain_from_elevation`), like the synthetic scenario.

    Values end up in the contract's units (:data:`~stimpute_core.data.contract.STATIC_RANGES`),
    following :mod:`.soil_units`: ``scales`` maps a name to ``{"scale": float | None, "units":
    str | None}`` (the recipe's; it wins over any guess); otherwise the file's units, a SoilGrids
    file name or the value range decide (SoilGrids integers such as bulk density 145 cg/cm³ are
    converted, with a warning). Every field with a known range must then lie within it, or
    :class:`ReaderError` names the file, the values and the units expected.
    """
    tgt = target_grid(grid)
    scales = dict(scales or {})
    unknown = sorted(set(scales) - set(files))
    if unknown:
        raise ValueError(f"scales given for {', '.join(unknown)}, which no file is given for")
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
        if name in STATIC_RANGES or name in scales:
            da = to_contract_units(name, da, str(path), scales.get(name))
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
