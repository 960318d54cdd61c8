"""Station matching: attaching in-situ stations to the grid cells of a contract cube."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import INSITU, STATION_COORDS
from ..selection import station_cells

__all__ = ["attach_stations"]


def attach_stations(
    cube: xr.Dataset, stations: xr.Dataset, *, keep_outside: bool = False
) -> xr.Dataset:
    """``cube`` with the station variables of ``stations`` on its time axis.

    ``insitu`` is reindexed onto the cube's days (NaN where the stations have none). Stations
    whose cell (:func:`~stimpute_core.data.selection.station_cells`) is off the cube's grid are
    dropped unless ``keep_outside``; either way their ids are recorded, comma-separated, in the
    attribute ``stations_outside_grid`` ("" when none). Station variables already in ``cube``
    are replaced.
    """
    for name in ("time", "x", "y"):
        if name not in cube.coords:
            raise ValueError(f"cube lacks coordinate {name!r}: expected a contract Dataset")
    if INSITU not in stations.data_vars or "station" not in stations.dims:
        raise ValueError(f"stations lack the variable {INSITU!r}(station, time)")
    missing = [c for c in ("station", *STATION_COORDS) if c not in stations.coords]
    if missing:
        raise ValueError(f"stations lack the coordinate(s) {', '.join(missing)}")

    st = stations.reindex(time=pd.DatetimeIndex(cube["time"].values))
    probe = xr.Dataset(
        {INSITU: st[INSITU]},
        coords={
            "x": cube["x"].values,
            "y": cube["y"].values,
            "station_lat": st["station_lat"],
            "station_lon": st["station_lon"],
        },
        attrs={"crs": cube.attrs["crs"]} if "crs" in cube.attrs else {},
    )
    iy, _ix = station_cells(probe)
    outside = iy < 0
    ids = [str(s) for s in st["station"].values[outside]]
    if not keep_outside:
        st = st.isel(station=np.flatnonzero(~outside))

    out = cube.drop_dims("station") if "station" in cube.dims else cube.copy()
    coords = {k: v for k, v in st.coords.items() if v.dims == ("station",)}
    out = out.assign_coords(coords)
    for name, var in st.data_vars.items():
        if "station" in var.dims:
            out[name] = var
    out.attrs["stations_outside_grid"] = ",".join(ids)
    return out
