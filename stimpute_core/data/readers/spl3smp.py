"""SPL3SMP (SMAP L3 radiometer, daily 36 km) files into the ``sm_36km`` covariate on the 1 km grid.

Validity, quality, dates and the handling of bad files follow :mod:`.smap_common`. Each 1 km cell
takes the value of the 36 km (M36) cell holding its centre.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..grid import EASE2_CRS, GRID_SHAPE, GridBox, grid_coords
from ..grid import xy_to_rowcol as _xy_to_rowcol
from .report import LoadReport, ReaderError
from .smap_common import (
    QUALITIES,
    UNITS,
    DayBatches,
    DaySink,
    Progress,
    check_choice,
    day_order,
    file_date,
    finish_mean,
    granule_date_from_name,
    hdf5_field,
    hdf5_group,
    list_files,
    open_hdf5,
    period_days,
    progress_iter,
    recommended,
    same_shape,
    valid_values,
)
from .smap_scenes import latest_versions

__all__ = ["OVERPASSES", "read_sm_36km", "read_spl3smp", "sm_36km_days"]

OVERPASSES = ("AM", "PM", "both")


def read_spl3smp(
    path: str | os.PathLike, *, quality: str = "recommended", overpass: str = "AM"
) -> tuple[pd.Timestamp, np.ndarray]:
    """Day and 406 x 964 float32 soil moisture (global M36 grid, NaN where invalid) of one SPL3SMP file.

    ``overpass`` "AM" (6 am descending, SMAP's baseline retrieval and the default), "PM" (6 pm
    ascending; fields with the ``_pm`` suffix) or "both" (per cell, the mean of the valid AM and
    PM values; the one valid value where only one is). The array index is the M36 row/column.
    """
    check_choice("quality", quality, QUALITIES)
    check_choice("overpass", overpass, OVERPASSES)
    path = os.fspath(path)
    passes = ("AM", "PM") if overpass == "both" else (overpass,)
    total = np.zeros(GRID_SHAPE["M36"], dtype=np.float32)
    count = np.zeros(GRID_SHAPE["M36"], dtype=np.uint8)
    f = open_hdf5(path)
    try:
        with f:
            date = file_date(f, path)
            for name in passes:
                sfx = "_pm" if name == "PM" else ""
                group = hdf5_group(f, f"Soil_Moisture_Retrieval_Data_{name}", path)
                sm_ds = hdf5_field(group, f"soil_moisture{sfx}", path)
                flag_ds = None
                if quality == "recommended":
                    flag_ds = hdf5_field(group, f"retrieval_qual_flag{sfx}", path)
                same_shape([sm_ds, flag_ds], path)
                if sm_ds.shape != GRID_SHAPE["M36"]:
                    raise ReaderError(
                        path,
                        f"field '{sm_ds.name.lstrip('/')}' has shape {sm_ds.shape}: expected "
                        f"{GRID_SHAPE['M36']} (the global 36 km EASE-Grid 2.0)",
                    )
                values = np.asarray(sm_ds[()], dtype=np.float32)
                valid = valid_values(sm_ds, values)
                if flag_ds is not None:
                    valid &= recommended(flag_ds)
                total[valid] += values[valid]
                count[valid] += 1
    except OSError as err:
        raise ReaderError(
            path, f"cannot read HDF5 data (corrupt or truncated file?): {err}"
        ) from err
    return date, finish_mean(total, count)


def _target_grid(grid: xr.Dataset | GridBox) -> tuple[dict, np.ndarray, np.ndarray]:
    """Coordinates of the target grid and the global M01 rows (per y) and columns (per x)."""
    if isinstance(grid, GridBox):
        coords = grid_coords(grid)
        rows = np.arange(grid.row0, grid.row0 + grid.nrows)
        cols = np.arange(grid.col0, grid.col0 + grid.ncols)
        return coords, rows, cols
    crs = grid.attrs.get("crs", EASE2_CRS)
    if str(crs).upper() != EASE2_CRS:
        raise ValueError(f"grid has crs {crs!r}: expected {EASE2_CRS} (EASE-Grid 2.0)")
    x, y = np.asarray(grid["x"].values, float), np.asarray(grid["y"].values, float)
    rows, _ = _xy_to_rowcol("M01", np.zeros_like(y), y)
    _, cols = _xy_to_rowcol("M01", x, np.zeros_like(x))
    coords = {name: grid[name] for name in ("y", "x", "lat", "lon") if name in grid.coords}
    return coords, rows, cols


def sm_36km_days(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    grid: xr.Dataset | GridBox,
    sink: DaySink,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    quality: str = "recommended",
    overpass: str = "AM",
    progress: Progress = None,
    batch: int | None = None,
) -> tuple[dict, dict, LoadReport]:
    """The file loop of :func:`read_sm_36km`: one pass over the files, each finished batch of
    ``batch`` days (default: the whole period) handed to ``sink(t0, values)``; with shorter
    batches the files are read in day order (:func:`.smap_common.day_order`). Returns the
    coordinates and attributes of ``sm_36km``, and the report."""
    check_choice("quality", quality, QUALITIES)
    check_choice("overpass", overpass, OVERPASSES)
    if start is None or end is None:
        if not isinstance(grid, xr.Dataset) or "time" not in grid.coords:
            raise ValueError("start and end are needed unless grid is a Dataset with a time axis")
        t = pd.DatetimeIndex(grid["time"].values)
        start = t[0] if start is None else start
        end = t[-1] if end is None else end
    days = period_days(start, end)
    coords, rows, cols = _target_grid(grid)
    r36, c36 = rows // 36, cols // 36
    n36r, n36c = GRID_SHAPE["M36"]
    if r36.min() < 0 or r36.max() >= n36r or c36.min() < 0 or c36.max() >= n36c:
        raise ValueError("grid lies partly outside the global EASE-Grid 2.0")

    batch = len(days) if batch is None else batch
    batches = DayBatches(len(days), (len(rows), len(cols)), batch, sink)
    report = LoadReport()
    files, superseded = latest_versions(list_files(source))
    if batch < len(days):
        files = day_order(files, days)
    for path, why in superseded:
        report.add_skipped(path, why)
    outside = 0
    for _, path in progress_iter(files, progress, "SPL3SMP"):
        name_date = granule_date_from_name(path)
        if name_date is not None and not (days[0] <= name_date <= days[-1]):
            outside += 1
            continue
        try:
            date, field = read_spl3smp(path, quality=quality, overpass=overpass)
            if not (days[0] <= date <= days[-1]):
                outside += 1
                continue
            values = field[r36[:, None], c36[None, :]]
            ok = np.isfinite(values)
            total, count = batches.day(days.get_loc(date))
            total[ok] += values[ok]
            count[ok] += 1
        except ReaderError as err:
            report.add_skipped(path, err.problem)
            continue
        except MemoryError:
            raise
        except Exception as err:
            raise ValueError(f"{path}: the load stopped at this file ({err})") from err
        report.add_read(path)
    batches.finish()
    attrs = {
        "units": UNITS,
        "long_name": f"SMAP L3 36 km soil moisture ({overpass}), on the 1 km grid",
        "source": "SPL3SMP",
        "overpass": overpass,
        "quality": quality,
        "files_read": len(report.read),
        "files_skipped": len(report.skipped) - len(superseded),
        "files_superseded": len(superseded),
        "files_outside_period": outside,
    }
    return {"time": ("time", days.values.astype("datetime64[ns]")), **coords}, attrs, report


def read_sm_36km(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    grid: xr.Dataset | GridBox,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    quality: str = "recommended",
    overpass: str = "AM",
    progress: Progress = None,
) -> tuple[xr.DataArray, LoadReport]:
    """The ``sm_36km(time, y, x)`` covariate on ``grid`` from SPL3SMP daily files.

    Each 1 km cell takes the value of the M36 cell holding its centre (M36 = 36 x M01 exactly:
    row // 36, col // 36 of its global M01 index). ``grid`` is a contract Dataset (its ``x``/``y``;
    ``start``/``end`` default to its ``time``) or a :class:`GridBox`. Days without a file are NaN;
    several files on one day are averaged, except versions of one file: only the latest CRID and
    counter of a day is read, the others are listed in the report (:mod:`.smap_scenes`). Bad
    files are skipped and listed in the report; files named outside the period are skipped
    unopened and counted in the attribute ``files_outside_period``. Memory: a running sum and
    count of the cube's size (:func:`sm_36km_days` streams the loop a batch of days at a time).
    """
    blocks: list[np.ndarray] = []
    coords, attrs, report = sm_36km_days(
        source,
        grid,
        lambda _t0, values: blocks.append(values),
        start,
        end,
        quality=quality,
        overpass=overpass,
        progress=progress,
    )
    out = xr.DataArray(
        blocks[0], dims=("time", "y", "x"), coords=coords, name="sm_36km", attrs=attrs
    )
    return out, report
