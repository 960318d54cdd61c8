"""SPL2SMAP_S (SMAP/Sentinel-1 1 km and 3 km) granules into the daily ``soil_moisture`` cube.

Validity, quality, dates and the handling of bad files follow :mod:`.smap_common`.

Cells are placed by their ``EASE_row_index_*``/``EASE_column_index_*`` fields (global M01 indices
for 1 km, M03 for 3 km). An index is fill when it equals the field's ``_FillValue`` (65534 in the
product) or lies off the global grid; such cells, and all cells of a granule without index
fields, are placed by projecting their latitude/longitude instead. A 3 km value fills its 3 x 3
block of 1 km cells (M03 = 3 x M01 exactly).

The day of a granule is the UTC date of the SMAP radiometer time, the first of the two
timestamps in ``SMAP_L2_SM_SP_<S1 code>_<SMAP time>_<Sentinel-1 time>_<tile>_<CRID>_<counter>.h5``:
the field order in the project's domain notes on SPL2SMAP_S and in the V003 user guide's naming
table as quoted in public code ("first date is first SMAP, second date is first Sentinel");
NSIDC's date folders agree
(``SPL2SMAP_S.003/2024.08.24/SMAP_L2_SM_SP_1AIWDV_20240824T002743_20240823T235036_...``). The
soil moisture is the SMAP retrieval disaggregated with the radar, so the SMAP pass dates it.

Only the latest version of a scene is read, and a granule without its own quality flag falls
back to the 3 km flag or to none (:mod:`.smap_scenes`); a load says so once.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from ..grid import EASE2_CRS, GRID_SHAPE, GridBox, box_for_region, lonlat_to_xy
from ..grid import xy_to_rowcol as _xy_to_rowcol
from ..selection import parse_region
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
    granule_date_from_name,
    hdf5_field,
    hdf5_group,
    list_files,
    open_hdf5,
    period_days,
    progress_iter,
    recommended,
    region_grid,
    same_shape,
    valid_values,
)
from .smap_scenes import FALLBACKS, coarse_recommended, latest_versions, valid_index

__all__ = [
    "FALLBACKS",
    "RESOLUTIONS",
    "GranuleCells",
    "read_smap_cube",
    "read_spl2smap_s",
    "smap_days",
]

#: Resolution name -> (global EASE-Grid 2.0 grid of the indices, 1 km cells per cell side).
RESOLUTIONS = {"1km": ("M01", 1), "3km": ("M03", 3)}


@dataclass(frozen=True)
class GranuleCells:
    """The valid cells of one SPL2SMAP_S granule.

    ``rows``/``cols`` are global EASE-Grid 2.0 indices at ``resolution`` (M01 for "1km", M03 for
    "3km"); ``values`` are soil moisture in m³/m³; ``date`` is the UTC day at midnight;
    ``quality_flag`` the flag field that judged the cells (:data:`FALLBACKS` when the granule
    lacks its own; ``""`` with ``quality="all"``).
    """

    path: str
    date: pd.Timestamp
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    resolution: str = "1km"
    quality_flag: str = ""


class _Skip(Exception):
    """Internal: a sound granule that falls outside the requested period or region."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


# --------------------------------------------------------------------------- placement


def _lonlat_rowcol(
    lat_ds: h5py.Dataset, lon_ds: h5py.Dataset, grid: str, where: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global rows/cols of ``grid`` from projected lat/lon, and the mask of usable positions."""
    lat = np.asarray(lat_ds[()], dtype=np.float64)
    lon = np.asarray(lon_ds[()], dtype=np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if where is not None:
        ok &= where
    rows = np.full(lat.shape, -1, dtype=np.int64)
    cols = np.full(lat.shape, -1, dtype=np.int64)
    if ok.any():
        x, y = lonlat_to_xy(lon[ok], lat[ok])
        r, c = _xy_to_rowcol(grid, x, y)
        rows[ok], cols[ok] = r, c
        nrows, ncols = GRID_SHAPE[grid]
        ok &= (rows >= 0) & (rows < nrows) & (cols >= 0) & (cols < ncols)
    return rows, cols, ok


def _index_extent(rows: np.ndarray, cols: np.ndarray, ok: np.ndarray) -> tuple[int, ...] | None:
    """(row_min, row_max, col_min, col_max) on the global grid spanned by a granule's arrays.

    The arrays of a granule are an EASE sub-grid (axis 0 rows, axis 1 columns), so the offset
    ``index - array position`` of any valid entry locates the whole array, fill entries included:
    the extent covers every cell that the lat/lon fallback could place too.
    """
    if not ok.any():
        return None
    if rows.ndim != 2:
        return int(rows[ok].min()), int(rows[ok].max()), int(cols[ok].min()), int(cols[ok].max())
    i = np.arange(rows.shape[0])[:, None]
    j = np.arange(rows.shape[1])[None, :]
    r_off = (rows.astype(np.int64) - i)[ok]
    c_off = (cols.astype(np.int64) - j)[ok]
    return (
        int(r_off.min()),
        int(r_off.max()) + rows.shape[0] - 1,
        int(c_off.min()),
        int(c_off.max()) + rows.shape[1] - 1,
    )


def _box_extent(box: GridBox, per_cell: int) -> tuple[int, int, int, int]:
    """Rows/cols of the cells of the coarser grid (``per_cell`` km) overlapping the 1 km box."""
    return (
        box.row0 // per_cell,
        (box.row0 + box.nrows - 1) // per_cell,
        box.col0 // per_cell,
        (box.col0 + box.ncols - 1) // per_cell,
    )


def _overlaps(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


# --------------------------------------------------------------------------- one granule


def _read_granule(
    path: str,
    *,
    resolution: str,
    quality: str,
    box: GridBox | None = None,
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> GranuleCells:
    """Read one granule; with ``box``/``period``, raise :class:`_Skip` as early as possible.

    The cheap checks come first: the date (from the name, else Metadata), then the extent from
    the index fields (or the lat/lon bounding box when they are absent). The soil moisture and
    flag fields are looked up and read only for a granule that touches ``box`` within
    ``period``, so a granule elsewhere is never judged on them.
    """
    grid, per_cell = RESOLUTIONS[resolution]
    nrows, ncols = GRID_SHAPE[grid]
    suffix = f"_{resolution}"
    f = open_hdf5(path)
    try:
        with f:
            date = file_date(f, path)
            if period is not None and not (period[0] <= date <= period[1]):
                raise _Skip("period")

            group = hdf5_group(f, f"Soil_Moisture_Retrieval_Data{suffix}", path)
            row_ds = group.get(f"EASE_row_index{suffix}")
            col_ds = group.get(f"EASE_column_index{suffix}")
            if not (isinstance(row_ds, h5py.Dataset) and isinstance(col_ds, h5py.Dataset)):
                row_ds = col_ds = None
            lat_ds = group.get(f"latitude{suffix}")
            lon_ds = group.get(f"longitude{suffix}")
            no_latlon = [
                name
                for name, d in ((f"latitude{suffix}", lat_ds), (f"longitude{suffix}", lon_ds))
                if not isinstance(d, h5py.Dataset)
            ]
            if no_latlon:
                lat_ds = lon_ds = None
            same_shape([row_ds, col_ds, lat_ds, lon_ds], path)

            def lonlat(where: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                """Rows/cols from lat/lon (of the cells in ``where``), or a clear error."""
                if lat_ds is None:
                    what = (
                        "the cells: there are no EASE row/column index fields"
                        if where is None
                        else f"{int(where.sum())} cell(s) without a valid EASE row/column index"
                    )
                    raise ReaderError(
                        path,
                        f"field '{group.name.lstrip('/')}/{no_latlon[0]}' is missing "
                        f"(needed to place {what})",
                    )
                return _lonlat_rowcol(lat_ds, lon_ds, grid, where)

            if row_ds is not None:
                rows = np.asarray(row_ds[()], dtype=np.int64)
                cols = np.asarray(col_ds[()], dtype=np.int64)
                placed = valid_index(row_ds, rows, nrows) & valid_index(col_ds, cols, ncols)
                extent = _index_extent(rows, cols, placed)
                if extent is None and lat_ds is not None:  # index all fill: try lat/lon
                    extent = _index_extent(*_lonlat_rowcol(lat_ds, lon_ds, grid))
            else:
                rows, cols, placed = lonlat(None)
                extent = _index_extent(rows, cols, placed)
            if box is not None and (
                extent is None or not _overlaps(extent, _box_extent(box, per_cell))
            ):
                raise _Skip("region")

            sm_ds = hdf5_field(group, f"soil_moisture{suffix}", path)
            flag_name = f"retrieval_qual_flag{suffix}" if quality == "recommended" else ""
            flag_ds = group.get(flag_name) if flag_name else None
            if not isinstance(flag_ds, h5py.Dataset):
                flag_ds = None
            same_shape([sm_ds, row_ds, col_ds, lat_ds, lon_ds, flag_ds], path)
            values = np.asarray(sm_ds[()], dtype=np.float64)
            valid = valid_values(sm_ds, values)
            if flag_ds is not None:
                valid &= recommended(flag_ds)
            if row_ds is not None:
                unplaced = valid & ~placed
                if unplaced.any():
                    r, c, ok = lonlat(unplaced)
                    rows, cols = np.where(ok, r, rows), np.where(ok, c, cols)
                    placed = placed | ok
            keep = valid & placed
            if flag_name and flag_ds is None:  # no own flag: see .smap_scenes
                coarse = None
                if resolution == "1km":
                    coarse = coarse_recommended(f, np.where(keep, rows, 0), np.where(keep, cols, 0))
                flag_name = FALLBACKS[coarse is None]
                if coarse is not None:
                    keep &= coarse
    except OSError as err:
        raise ReaderError(
            path, f"cannot read HDF5 data (corrupt or truncated file?): {err}"
        ) from err
    return GranuleCells(
        path=path,
        date=date,
        rows=rows[keep],
        cols=cols[keep],
        values=values[keep],
        resolution=resolution,
        quality_flag=flag_name,
    )


def read_spl2smap_s(
    path: str | os.PathLike, *, resolution: str = "1km", quality: str = "recommended"
) -> GranuleCells:
    """The valid cells of one SPL2SMAP_S granule at ``resolution`` ("1km" or "3km").

    Validity and quality follow :mod:`.smap_common`, placement and the quality fallback the
    module docstring (``quality_flag`` of the result names what judged the cells). Raises
    :class:`ReaderError` naming the problem: not an HDF5 file or truncated, a missing group or
    field, fields of different shapes, or no date.
    """
    check_choice("resolution", resolution, RESOLUTIONS)
    check_choice("quality", quality, QUALITIES)
    return _read_granule(os.fspath(path), resolution=resolution, quality=quality)


# --------------------------------------------------------------------------- the cube


def _add_cells(
    batches: DayBatches, t: int, cells: GranuleCells, box: GridBox, per_cell: int
) -> None:
    """Add a granule's cells that lie in ``box`` to day ``t``'s running sum and count."""
    rows, cols, values = cells.rows, cells.cols, cells.values
    if per_cell > 1:  # every 1 km cell of each coarse cell's block
        offsets = np.arange(per_cell)
        rows = (rows[:, None, None] * per_cell + offsets[None, :, None]).repeat(per_cell, 2)
        cols = (cols[:, None, None] * per_cell + offsets[None, None, :]).repeat(per_cell, 1)
        values = np.repeat(values, per_cell * per_cell)
        rows, cols = rows.ravel(), cols.ravel()
    r, c = rows - box.row0, cols - box.col0
    inside = (r >= 0) & (r < box.nrows) & (c >= 0) & (c < box.ncols)
    total, count = batches.day(t)
    np.add.at(total, (r[inside], c[inside]), values[inside].astype(np.float32))
    np.add.at(count, (r[inside], c[inside]), 1)


def smap_days(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    sink: DaySink,
    *,
    region: str | Sequence[float] = "txson",
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    resolution: str = "1km",
    quality: str = "recommended",
    progress: Progress = None,
    batch: int | None = None,
) -> tuple[dict, dict, LoadReport]:
    """The granule loop of :func:`read_smap_cube`: one pass over the files, each finished batch
    of ``batch`` days (default: the whole period) handed to ``sink(t0, values)``.

    With batches shorter than the period the files are read in day order
    (:func:`.smap_common.day_order`). Returns the attributes of ``soil_moisture`` and of the
    Dataset, and the report. An error other than a bad file's stops the loop naming the granule.
    """
    check_choice("resolution", resolution, RESOLUTIONS)
    check_choice("quality", quality, QUALITIES)
    west, south, east, north = parse_region(region)
    box = box_for_region(west, south, east, north)
    days = period_days(start, end)
    files, superseded = latest_versions(list_files(source))
    per_cell = RESOLUTIONS[resolution][1]
    batch = len(days) if batch is None else batch
    if batch < len(days):
        files = day_order(files, days)

    batches = DayBatches(len(days), (box.nrows, box.ncols), batch, sink)
    report = LoadReport()
    for path, why in superseded:
        report.add_skipped(path, why)
    fallbacks: Counter[str] = Counter()
    outside = {"period": 0, "region": 0}
    for _, path in progress_iter(files, progress, "SPL2SMAP_S"):
        name_date = granule_date_from_name(path)
        if name_date is not None and not (days[0] <= name_date <= days[-1]):
            outside["period"] += 1
            continue
        try:
            cells = _read_granule(
                path, resolution=resolution, quality=quality, box=box, period=(days[0], days[-1])
            )
            _add_cells(batches, days.get_loc(cells.date), cells, box, per_cell)
        except _Skip as skip:
            outside[skip.why] += 1
            continue
        except ReaderError as err:
            report.add_skipped(path, err.problem)
            continue
        except MemoryError:
            raise
        except Exception as err:
            raise ValueError(f"{path}: the load stopped at this granule ({err})") from err
        if cells.quality_flag in FALLBACKS:
            fallbacks[cells.quality_flag] += 1
        report.add_read(path)
    batches.finish()

    note = "; ".join(f"{n} granule(s): {what}" for what, n in fallbacks.items())
    if note:
        warnings.warn(
            f"SPL2SMAP_S granules without retrieval_qual_flag_{resolution}, quality judged by "
            f"{note} (see stimpute_core.data.readers.smap_scenes)",
            stacklevel=3,
        )
    var_attrs = {
        "units": UNITS,
        "long_name": f"SMAP/Sentinel-1 soil moisture ({resolution}, daily mean)",
    }
    attrs = {
        "source": "SPL2SMAP_S",
        "crs": EASE2_CRS,
        "region": f"{west},{south},{east},{north}",
        "resolution": resolution,
        "quality": quality,
        "granules_read": len(report.read),
        "granules_skipped": len(report.skipped) - len(superseded),
        "granules_superseded": len(superseded),
        "quality_fallback": note or "none",
        "granules_outside_period": outside["period"],
        "granules_outside_region": outside["region"],
    }
    return var_attrs, attrs, report


def read_smap_cube(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    region: str | Sequence[float] = "txson",
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    resolution: str = "1km",
    quality: str = "recommended",
    progress: Progress = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Daily ``soil_moisture(time, y, x)`` on the 1 km grid of ``region`` from SPL2SMAP_S granules.

    ``source`` is a folder (its SMAP HDF5 files, see :func:`.formats.granule_files`) or a list of
    files; ``region`` a named region or W,S,E,N degrees. ``time`` holds every day ``start..end``; a day without a granule is NaN.
    Several granules on one day are averaged per cell; several versions of one scene are not
    (only the latest is read, the others are listed in the report, see :mod:`.smap_scenes`).
    With ``resolution="3km"`` each value fills its 3 x 3 block of 1 km cells. Granules without
    their own quality flag fall back (:mod:`.smap_scenes`), said in one warning per load and in
    the attribute ``quality_fallback``.

    Memory: one granule at a time into a running sum (float32, becomes the result) and count
    (uint16) of the cube's size (:func:`.smap_stream.stream_smap_cube` streams the same loop
    into a Zarr store a batch of days at a time). Cheap skips, counted in the attributes
    ``granules_outside_period``/``granules_outside_region``, not in the report: a name dated
    outside the period is skipped unopened; a granule whose extent (index fields, see
    ``_index_extent``, or lat/lon box) misses the region before its soil moisture is read. A
    bad granule is skipped and listed in the report; ``report.read`` lists the granules whose
    cells entered the cube. ``progress``: ``True`` shows a tqdm bar; a callable gets ``(done,
    total, path)`` after each file.
    """
    grid = region_grid(region, start, end)
    blocks: list[np.ndarray] = []
    var_attrs, attrs, report = smap_days(
        source,
        lambda _t0, values: blocks.append(values),
        region=region,
        start=start,
        end=end,
        resolution=resolution,
        quality=quality,
        progress=progress,
    )
    ds = grid.assign(soil_moisture=(("time", "y", "x"), blocks[0], var_attrs))
    ds.attrs = attrs
    return ds, report
