"""SPL2SMAP_S granules streamed into a Zarr store a batch of days at a time (``stimpute data smap
--out X.zarr``), memory bounded by one batch instead of the cube.

The granule loop is :func:`.spl2smap_s.smap_days`, the one :func:`.spl2smap_s.read_smap_cube`
runs: one pass over the data of the files, in day order (a listing pass first dates the files,
from their names, else their ``Metadata``, opening nothing else). Each finished batch of days
goes into the temporary store of a :class:`~..zarr_stream.DayStream`, which is rechunked to the
contract's space tiles at the end (:mod:`..zarr_stream`). The store equals, to the last bit,
what writing :func:`.spl2smap_s.read_smap_cube`'s cube to Zarr gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pandas as pd
import xarray as xr

from ..zarr_io import open_zarr
from ..zarr_stream import DayStream, batch_days
from .report import LoadReport
from .smap_common import Progress, check_cube_memory, region_grid
from .spl2smap_s import smap_days

__all__ = ["SMAP_BYTES_PER_CELL_DAY", "stream_smap_cube"]

#: What the granule loop holds per cell and day of a batch: the float32 sum, the uint16 count.
SMAP_BYTES_PER_CELL_DAY = 6


def stream_smap_cube(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    region: str | Sequence[float] = "txson",
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    resolution: str = "1km",
    quality: str = "recommended",
    progress: Progress = None,
    batch: int | None = None,
    check: Callable[[xr.Dataset, LoadReport], None] | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Read the cube :func:`.spl2smap_s.read_smap_cube` reads, writing it into the Zarr store
    ``out`` a batch of days at a time; return the store opened lazily, and the report.

    ``batch``: most days per batch (default :data:`~..zarr_stream.BATCH_DAYS`, fewer on a grid
    too large for :data:`~..zarr_stream.BATCH_BYTES`); one batch must fit the memory limit
    (:func:`.smap_common.check_cube_memory`). ``check(ds, report)`` is called on the finished
    cube (lazy) before it is written: raising there, like any error, leaves nothing at ``out``.
    """
    grid = region_grid(region, start, end)
    ndays, ny, nx = grid.sizes["time"], grid.sizes["y"], grid.sizes["x"]
    days = batch_days(ndays, ny * nx, SMAP_BYTES_PER_CELL_DAY, most=batch)
    check_cube_memory(
        days,
        ny,
        nx,
        SMAP_BYTES_PER_CELL_DAY,
        what=f"one batch of the soil-moisture cube of region {region}",
        advice="give a smaller region",
    )
    with DayStream(out, grid, ["soil_moisture"], batch=days) as stream:
        var_attrs, attrs, report = smap_days(
            source,
            lambda t0, values: stream.write("soil_moisture", t0, values),
            region=region,
            start=start,
            end=end,
            resolution=resolution,
            quality=quality,
            progress=progress,
            batch=days,
        )
        ds = stream.dataset()
        ds["soil_moisture"].attrs = var_attrs
        ds.attrs = attrs
        if check is not None:
            check(ds, report)
        stream.commit(ds)
    return open_zarr(out, check=False), report
