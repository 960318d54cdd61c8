"""Choosing part of a contract Dataset: a region (lat/lon box or named), a time window, station cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from .contract import INSITU

#: Named regions as (west, south, east, north) in degrees.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    # The TxSON 36 km EASE-Grid 2.0 cell (M36 row 100, column 217).
    "txson": (-98.9627, 30.1489, -98.5892, 30.4750),
}

Box = tuple[float, float, float, float]


def parse_region(region: str | Sequence[float]) -> Box:
    """A named region or ``W,S,E,N`` (string or sequence) as a (west, south, east, north) tuple."""
    if isinstance(region, str):
        key = region.strip().lower()
        if key in REGIONS:
            return REGIONS[key]
        parts = key.split(",")
        if len(parts) != 4:
            raise ValueError(
                f"region {region!r} is neither a named region ({', '.join(REGIONS)}) nor 'W,S,E,N' degrees"
            )
        try:
            region = [float(p) for p in parts]
        except ValueError as err:
            raise ValueError(f"region {region!r}: W,S,E,N must be numbers in degrees") from err
    west, south, east, north = (float(v) for v in region)
    if not (west < east and south < north):
        raise ValueError(
            f"region box W={west}, S={south}, E={east}, N={north}: expected W < E and S < N"
        )
    if not (
        -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90
    ):
        raise ValueError(
            f"region box {(west, south, east, north)} is outside valid lon/lat degrees"
        )
    return west, south, east, north


def data_extent(ds: xr.Dataset) -> Box:
    """(west, south, east, north) in degrees of the cell centres of ``ds``."""
    lon, lat = ds["lon"].values, ds["lat"].values
    return (
        float(np.nanmin(lon)),
        float(np.nanmin(lat)),
        float(np.nanmax(lon)),
        float(np.nanmax(lat)),
    )


def select_region(ds: xr.Dataset, region: str | Sequence[float]) -> xr.Dataset:
    """Cells whose centres lie in ``region`` (named or a W,S,E,N box), and the stations inside it.

    The result is the smallest rectangle of rows and columns holding those cells, so it stays a
    regular grid. Raises ``ValueError`` naming the data extent when the box holds no cell.
    """
    west, south, east, north = parse_region(region)
    lon, lat = ds["lon"].values, ds["lat"].values
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    if not inside.any():
        w, s, e, n = data_extent(ds)
        raise ValueError(
            f"region W={west}, S={south}, E={east}, N={north} holds no cell centre of the data, "
            f"whose extent is W={w:.4f}, S={s:.4f}, E={e:.4f}, N={n:.4f}"
        )
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    out = ds.isel(y=slice(rows[0], rows[-1] + 1), x=slice(cols[0], cols[-1] + 1))
    if "station" in out.dims:
        slon, slat = out["station_lon"].values, out["station_lat"].values
        keep = (slon >= west) & (slon <= east) & (slat >= south) & (slat <= north)
        out = out.isel(station=np.flatnonzero(keep))
    out.attrs["region"] = f"{west},{south},{east},{north}"
    return out


def select_time(ds: xr.Dataset, start: str | None = None, end: str | None = None) -> xr.Dataset:
    """Days from ``start`` to ``end`` inclusive (ISO dates; ``None`` keeps that end open)."""
    t = pd.DatetimeIndex(ds["time"].values)
    try:
        t0 = pd.Timestamp(start) if start is not None else t[0]
        t1 = pd.Timestamp(end) if end is not None else t[-1]
    except ValueError as err:
        raise ValueError(f"time window {start!r}..{end!r}: expected ISO dates YYYY-MM-DD") from err
    if t1 < t0:
        raise ValueError(f"time window {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is empty: end is before start")
    out = ds.sel(time=slice(t0, t1))
    if out.sizes["time"] == 0:
        raise ValueError(
            f"time window {t0:%Y-%m-%d}..{t1:%Y-%m-%d} holds no day of the data, "
            f"which covers {t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}"
        )
    return out


def station_cells(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Row (``y`` index) and column (``x`` index) of the grid cell holding each station.

    Stations are projected into the Dataset's CRS (attr ``crs``, EASE-Grid 2.0 by default) and
    matched to the nearest cell centre; a station more than one cell outside the grid gets -1.
    """
    if INSITU not in ds.data_vars:
        return np.zeros(0, int), np.zeros(0, int)
    crs = ds.attrs.get("crs", "EPSG:6933")
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    sx, sy = to_grid.transform(ds["station_lon"].values, ds["station_lat"].values)
    x, y = ds["x"].values, ds["y"].values
    ix = np.abs(np.subtract.outer(np.asarray(sx), x)).argmin(axis=1)
    iy = np.abs(np.subtract.outer(np.asarray(sy), y)).argmin(axis=1)
    dx = abs(x[1] - x[0]) if len(x) > 1 else np.inf
    dy = abs(y[1] - y[0]) if len(y) > 1 else np.inf
    outside = (np.abs(np.asarray(sx) - x[ix]) > dx) | (np.abs(np.asarray(sy) - y[iy]) > dy)
    ix[outside] = -1
    iy[outside] = -1
    return iy, ix
