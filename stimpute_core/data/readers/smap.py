"""SMAP readers: SPL2SMAP_S granules into the daily ``soil_moisture`` cube, SPL3SMP into ``sm_36km``.

Both products are HDF5 files read with h5py; every value ends up on the EASE-Grid 2.0 1 km (M01)
grid of the data contract.

Decisions, for both products:

- Units: the products store cm³/cm³, which equals m³/m³; values are taken as they are.
- A cell is valid when it is finite, differs from the field's ``_FillValue`` (-9999 when the
  attribute is absent) and lies within ``valid_min``..``valid_max`` (0..1 when absent). With
  ``quality="recommended"`` the cell's ``retrieval_qual_flag`` must also have bit 0 clear
  ("recommended quality"); a flag holding its own ``_FillValue`` counts as not recommended.
  ``quality="all"`` ignores the flag.
- The day of a file is the UTC date of the SMAP time in its name; a file without a parsable
  name falls back to ``Metadata/Extent`` ``rangeBeginningDateTime``.
- Several files on one day are averaged per cell over their valid values.
- A bad file raises :class:`ReaderError` from the single-file readers; the multi-file readers skip
  it, list it in the :class:`LoadReport` and keep everything already read.

SPL2SMAP_S cells are placed by their ``EASE_row_index_*``/``EASE_column_index_*`` fields (global
M01 indices for 1 km, M03 for 3 km). An index is fill when it equals the field's ``_FillValue``
(65534 in the product) or lies off the global grid; such cells, and all cells of a granule without
index fields, are placed by projecting their latitude/longitude instead. A 3 km value fills its
3 x 3 block of 1 km cells (M03 = 3 x M01 exactly).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from ..grid import EASE2_CRS, GRID_SHAPE, GridBox, box_for_region, grid_coords, lonlat_to_xy
from ..grid import xy_to_rowcol as _xy_to_rowcol
from ..selection import parse_region
from .report import LoadReport, ReaderError

__all__ = [
    "GranuleCells",
    "granule_date_from_name",
    "read_sm_36km",
    "read_smap_cube",
    "read_spl2smap_s",
    "read_spl3smp",
]

#: Resolution name -> (global EASE-Grid 2.0 grid of the indices, 1 km cells per cell side).
RESOLUTIONS = {"1km": ("M01", 1), "3km": ("M03", 3)}
QUALITIES = ("recommended", "all")
OVERPASSES = ("AM", "PM", "both")
DEFAULT_FILL = -9999.0
DEFAULT_VALID = (0.0, 1.0)
UNITS = "m3/m3"

_L2_NAME = re.compile(r"SMAP_L2_SM_SP_[A-Za-z0-9]+_(\d{8}T\d{6})_\d{8}T\d{6}_")
_L3_NAME = re.compile(r"SMAP_L3_SM_P_(?:E_)?(\d{8})_")

Progress = bool | Callable[[int, int, str], None] | None


@dataclass(frozen=True)
class GranuleCells:
    """The valid cells of one SPL2SMAP_S granule.

    ``rows``/``cols`` are global EASE-Grid 2.0 indices at ``resolution`` (M01 for "1km", M03 for
    "3km"); ``values`` are soil moisture in m³/m³; ``date`` is the UTC day at midnight.
    """

    path: str
    date: pd.Timestamp
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    resolution: str = "1km"


class _Skip(Exception):
    """Internal: a sound granule that falls outside the requested period or region."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


# --------------------------------------------------------------------------- dates


def granule_date_from_name(name: str | os.PathLike) -> pd.Timestamp | None:
    """UTC day (midnight) of an SMAP file from its name, or ``None`` when the name has none.

    Understands SPL2SMAP_S names ``SMAP_L2_SM_SP_<code>_<SMAP time>_<S1 time>_<tile>_<CRID>_<ver>.h5``
    (the first timestamp, the SMAP overpass, gives the day) and SPL3SMP(_E) names
    ``SMAP_L3_SM_P_[E_]<YYYYMMDD>_R<crid>_<ver>.h5``.
    """
    base = os.path.basename(os.fspath(name))
    for pattern, fmt in ((_L2_NAME, "%Y%m%dT%H%M%S"), (_L3_NAME, "%Y%m%d")):
        match = pattern.search(base)
        if match:
            try:
                return pd.to_datetime(match.group(1), format=fmt).normalize()
            except ValueError:
                return None
    return None


def _attr_text(value: object) -> str:
    """An HDF5 string attribute (bytes, str or a one-element array of either) as text."""
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", "replace")
    return str(value).strip().strip("\x00").strip()


def _file_date(f, path) -> pd.Timestamp:
    """The day of a file: from its name, else from its ``Metadata`` attributes."""
    date = granule_date_from_name(path)
    return date if date is not None else _metadata_date(f, path)


def _metadata_date(f: h5py.File, path: str) -> pd.Timestamp:
    """UTC day of ``Metadata/Extent`` attribute ``rangeBeginningDateTime``."""
    extent = f.get("Metadata/Extent")
    raw = None if extent is None else extent.attrs.get("rangeBeginningDateTime")
    if raw is None:
        raise ReaderError(
            path,
            "no date: the name does not follow the SMAP file naming and "
            "Metadata/Extent has no attribute rangeBeginningDateTime",
        )
    text = _attr_text(raw)
    try:
        stamp = pd.Timestamp(text)
    except ValueError as err:
        raise ReaderError(
            path, f"Metadata/Extent rangeBeginningDateTime {text!r} is not an ISO date-time"
        ) from err
    if stamp is pd.NaT:
        raise ReaderError(path, "Metadata/Extent rangeBeginningDateTime is empty")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


# --------------------------------------------------------------------------- HDF5 helpers


def _open(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError as err:
        raise ReaderError(path, "no such file") from err
    except OSError as err:
        raise ReaderError(
            path, f"not a readable HDF5 file (corrupt, truncated or another format): {err}"
        ) from err


def _group(f: h5py.File, name: str, path: str) -> h5py.Group:
    group = f.get(name)
    if not isinstance(group, h5py.Group):
        present = ", ".join(sorted(f.keys())) or "none"
        raise ReaderError(path, f"group '{name}' is missing (groups present: {present})")
    return group


def _field(group: h5py.Group, name: str, path: str, why: str = "") -> h5py.Dataset:
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise ReaderError(path, f"field '{group.name.lstrip('/')}/{name}' is missing{why}")
    return ds


def _same_shape(fields: Sequence[h5py.Dataset | None], path: str) -> None:
    present = [d for d in fields if d is not None]
    if len({d.shape for d in present}) > 1:
        shapes = ", ".join(f"{d.name.rsplit('/', 1)[-1]} {d.shape}" for d in present)
        raise ReaderError(path, f"fields of different shapes: {shapes}")


def _scalar_attr(ds: h5py.Dataset, name: str, default: float | None) -> float | None:
    if name not in ds.attrs:
        return default
    value = np.asarray(ds.attrs[name]).ravel()
    return float(value[0]) if value.size else default


def _valid_values(ds: h5py.Dataset, data: np.ndarray) -> np.ndarray:
    """Mask of valid soil moisture: finite, not fill, within the valid range."""
    fill = _scalar_attr(ds, "_FillValue", DEFAULT_FILL)
    lo = _scalar_attr(ds, "valid_min", DEFAULT_VALID[0])
    hi = _scalar_attr(ds, "valid_max", DEFAULT_VALID[1])
    with np.errstate(invalid="ignore"):
        return np.isfinite(data) & (data != fill) & (data >= lo) & (data <= hi)


def _recommended(ds: h5py.Dataset) -> np.ndarray:
    """Mask of cells whose retrieval quality flag has bit 0 clear (and is not its own fill)."""
    flag = ds[()]
    if not np.issubdtype(flag.dtype, np.integer):
        flag = np.where(np.isfinite(flag), flag, 1).astype(np.int64)
    ok = (flag & 1) == 0
    fill = _scalar_attr(ds, "_FillValue", None)
    if fill is not None:
        ok &= flag != fill
    return ok


def _valid_index(ds: h5py.Dataset, data: np.ndarray, size: int) -> np.ndarray:
    """Mask of EASE indices that hold a cell of the global grid (not fill, not off the grid)."""
    ok = (data >= 0) & (data < size)
    fill = _scalar_attr(ds, "_FillValue", None)
    if fill is not None:
        ok &= data != fill
    return ok


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


def _check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")


# --------------------------------------------------------------------------- SPL2SMAP_S


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
    f = _open(path)
    try:
        with f:
            date = _file_date(f, path)
            if period is not None and not (period[0] <= date <= period[1]):
                raise _Skip("period")

            group = _group(f, f"Soil_Moisture_Retrieval_Data{suffix}", path)
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
            _same_shape([row_ds, col_ds, lat_ds, lon_ds], path)

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
                placed = _valid_index(row_ds, rows, nrows) & _valid_index(col_ds, cols, ncols)
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

            sm_ds = _field(group, f"soil_moisture{suffix}", path)
            flag_ds = None
            if quality == "recommended":
                flag_ds = _field(
                    group,
                    f"retrieval_qual_flag{suffix}",
                    path,
                    " (needed for quality='recommended'; quality='all' reads without it)",
                )
            _same_shape([sm_ds, row_ds, col_ds, lat_ds, lon_ds, flag_ds], path)
            values = np.asarray(sm_ds[()], dtype=np.float64)
            valid = _valid_values(sm_ds, values)
            if flag_ds is not None:
                valid &= _recommended(flag_ds)
            if row_ds is not None:
                unplaced = valid & ~placed
                if unplaced.any():
                    r, c, ok = lonlat(unplaced)
                    rows, cols = np.where(ok, r, rows), np.where(ok, c, cols)
                    placed = placed | ok
            keep = valid & placed
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
    )


def read_spl2smap_s(
    path: str | os.PathLike, *, resolution: str = "1km", quality: str = "recommended"
) -> GranuleCells:
    """The valid cells of one SPL2SMAP_S granule at ``resolution`` ("1km" or "3km").

    See the module docstring for validity, quality and placement. Raises :class:`ReaderError`
    naming the problem: not an HDF5 file or truncated, a missing group or field, fields of
    different shapes, or no date.
    """
    _check_choice("resolution", resolution, RESOLUTIONS)
    _check_choice("quality", quality, QUALITIES)
    return _read_granule(os.fspath(path), resolution=resolution, quality=quality)


# --------------------------------------------------------------------------- multi-file helpers


def _list_files(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """A folder's ``*.h5`` files (sorted), one file, or a given list of files (order kept)."""
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        if folder.is_dir():
            return [str(p) for p in sorted(folder.glob("*.h5")) if p.is_file()]
        if folder.is_file():
            return [str(folder)]
        raise FileNotFoundError(f"{folder}: no such file or folder")
    return [os.fspath(p) for p in source]


def _period(start: object, end: object) -> pd.DatetimeIndex:
    try:
        t0, t1 = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except ValueError as err:
        raise ValueError(f"period {start!r}..{end!r}: expected ISO dates YYYY-MM-DD") from err
    if t1 < t0:
        raise ValueError(f"period {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is empty: end is before start")
    return pd.date_range(t0, t1, freq="D")


def _progress(files: list[str], progress: Progress, desc: str) -> Iterable[tuple[int, str]]:
    """Yield (index, path); report progress with tqdm (``True``) or ``progress(i + 1, n, path)``.

    A callable is told after each file how many of the ``n`` files are done.
    """
    n = len(files)
    if progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=n, desc=desc, unit="file") as bar:
            for i, path in enumerate(files):
                yield i, path
                bar.update(1)
        return
    for i, path in enumerate(files):
        yield i, path
        if callable(progress):
            progress(i + 1, n, path)


def _finish_mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``total / count`` in place, NaN where ``count`` is 0."""
    np.divide(total, count, out=total, where=count > 0)
    total[count == 0] = np.nan
    return total


# --------------------------------------------------------------------------- SPL2SMAP_S cube


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

    ``source`` is a folder (its ``*.h5`` files) or a list of files; ``region`` a named region or
    W,S,E,N degrees. ``time`` holds every day ``start..end``; a day without a granule is NaN.
    Several granules on one day are averaged per cell. With ``resolution="3km"`` each value fills
    its 3 x 3 block of 1 km cells.

    Memory stays bounded: one granule is read at a time into a running sum (float32, becomes the
    result) and count (uint16) of the cube's size. Cheap skips, counted in the Dataset attributes
    ``granules_outside_period``/``granules_outside_region`` and not in the report (they are not
    bad files): a name dated outside the period is skipped unopened; a granule whose extent (its
    index fields, see ``_index_extent``, or lat/lon box) misses the region is skipped before its
    soil moisture is read. A bad granule is skipped and listed in the report with its problem;
    the report's ``read`` lists the granules whose cells entered the cube.

    ``progress``: ``True`` shows a tqdm bar; a callable gets ``(done, total, path)`` after each
    file.
    """
    _check_choice("resolution", resolution, RESOLUTIONS)
    _check_choice("quality", quality, QUALITIES)
    west, south, east, north = parse_region(region)
    box = box_for_region(west, south, east, north)
    days = _period(start, end)
    files = _list_files(source)
    per_cell = RESOLUTIONS[resolution][1]

    shape = (len(days), box.nrows, box.ncols)
    total = np.zeros(shape, dtype=np.float32)
    count = np.zeros(shape, dtype=np.uint16)
    report = LoadReport()
    outside = {"period": 0, "region": 0}
    offsets = np.arange(per_cell)
    for _, path in _progress(files, progress, "SPL2SMAP_S"):
        name_date = granule_date_from_name(path)
        if name_date is not None and not (days[0] <= name_date <= days[-1]):
            outside["period"] += 1
            continue
        try:
            cells = _read_granule(
                path, resolution=resolution, quality=quality, box=box, period=(days[0], days[-1])
            )
        except _Skip as skip:
            outside[skip.why] += 1
            continue
        except ReaderError as err:
            report.add_skipped(path, err.problem)
            continue
        rows, cols, values = cells.rows, cells.cols, cells.values
        if per_cell > 1:  # every 1 km cell of each coarse cell's block
            rows = (rows[:, None, None] * per_cell + offsets[None, :, None]).repeat(per_cell, 2)
            cols = (cols[:, None, None] * per_cell + offsets[None, None, :]).repeat(per_cell, 1)
            values = np.repeat(values, per_cell * per_cell)
            rows, cols = rows.ravel(), cols.ravel()
        r, c = rows - box.row0, cols - box.col0
        inside = (r >= 0) & (r < box.nrows) & (c >= 0) & (c < box.ncols)
        t = days.get_loc(cells.date)
        np.add.at(total[t], (r[inside], c[inside]), values[inside].astype(np.float32))
        np.add.at(count[t], (r[inside], c[inside]), 1)
        report.add_read(path)

    sm = _finish_mean(total, count)
    del count
    ds = xr.Dataset(
        {
            "soil_moisture": (
                ("time", "y", "x"),
                sm,
                {
                    "units": UNITS,
                    "long_name": f"SMAP/Sentinel-1 soil moisture ({resolution}, daily mean)",
                },
            )
        },
        coords={"time": ("time", days.values.astype("datetime64[ns]")), **grid_coords(box)},
        attrs={
            "source": "SPL2SMAP_S",
            "crs": EASE2_CRS,
            "region": f"{west},{south},{east},{north}",
            "resolution": resolution,
            "quality": quality,
            "granules_read": len(report.read),
            "granules_skipped": len(report.skipped),
            "granules_outside_period": outside["period"],
            "granules_outside_region": outside["region"],
        },
    )
    return ds, report


# --------------------------------------------------------------------------- SPL3SMP


def read_spl3smp(
    path: str | os.PathLike, *, quality: str = "recommended", overpass: str = "AM"
) -> tuple[pd.Timestamp, np.ndarray]:
    """Day and 406 x 964 float32 soil moisture (global M36 grid, NaN where invalid) of one SPL3SMP file.

    ``overpass`` "AM" (6 am descending, SMAP's baseline retrieval and the default), "PM" (6 pm
    ascending; fields with the ``_pm`` suffix) or "both" (per cell, the mean of the valid AM and
    PM values; the one valid value where only one is). The array index is the M36 row/column.
    """
    _check_choice("quality", quality, QUALITIES)
    _check_choice("overpass", overpass, OVERPASSES)
    path = os.fspath(path)
    passes = ("AM", "PM") if overpass == "both" else (overpass,)
    total = np.zeros(GRID_SHAPE["M36"], dtype=np.float32)
    count = np.zeros(GRID_SHAPE["M36"], dtype=np.uint8)
    f = _open(path)
    try:
        with f:
            date = _file_date(f, path)
            for name in passes:
                sfx = "_pm" if name == "PM" else ""
                group = _group(f, f"Soil_Moisture_Retrieval_Data_{name}", path)
                sm_ds = _field(group, f"soil_moisture{sfx}", path)
                flag_ds = None
                if quality == "recommended":
                    flag_ds = _field(group, f"retrieval_qual_flag{sfx}", path)
                _same_shape([sm_ds, flag_ds], path)
                if sm_ds.shape != GRID_SHAPE["M36"]:
                    raise ReaderError(
                        path,
                        f"field '{sm_ds.name.lstrip('/')}' has shape {sm_ds.shape}: expected "
                        f"{GRID_SHAPE['M36']} (the global 36 km EASE-Grid 2.0)",
                    )
                values = np.asarray(sm_ds[()], dtype=np.float32)
                valid = _valid_values(sm_ds, values)
                if flag_ds is not None:
                    valid &= _recommended(flag_ds)
                total[valid] += values[valid]
                count[valid] += 1
    except OSError as err:
        raise ReaderError(
            path, f"cannot read HDF5 data (corrupt or truncated file?): {err}"
        ) from err
    return date, _finish_mean(total, count)


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
    several files on one day are averaged. Bad files are skipped and listed in the report; files
    named outside the period are skipped unopened and counted in the attribute
    ``files_outside_period``.
    """
    _check_choice("quality", quality, QUALITIES)
    _check_choice("overpass", overpass, OVERPASSES)
    if start is None or end is None:
        if not isinstance(grid, xr.Dataset) or "time" not in grid.coords:
            raise ValueError("start and end are needed unless grid is a Dataset with a time axis")
        t = pd.DatetimeIndex(grid["time"].values)
        start = t[0] if start is None else start
        end = t[-1] if end is None else end
    days = _period(start, end)
    coords, rows, cols = _target_grid(grid)
    r36, c36 = rows // 36, cols // 36
    n36r, n36c = GRID_SHAPE["M36"]
    if r36.min() < 0 or r36.max() >= n36r or c36.min() < 0 or c36.max() >= n36c:
        raise ValueError("grid lies partly outside the global EASE-Grid 2.0")

    shape = (len(days), len(rows), len(cols))
    total = np.zeros(shape, dtype=np.float32)
    count = np.zeros(shape, dtype=np.uint16)
    report = LoadReport()
    outside = 0
    for _, path in _progress(_list_files(source), progress, "SPL3SMP"):
        name_date = granule_date_from_name(path)
        if name_date is not None and not (days[0] <= name_date <= days[-1]):
            outside += 1
            continue
        try:
            date, field = read_spl3smp(path, quality=quality, overpass=overpass)
        except ReaderError as err:
            report.add_skipped(path, err.problem)
            continue
        if not (days[0] <= date <= days[-1]):
            outside += 1
            continue
        values = field[r36[:, None], c36[None, :]]
        ok = np.isfinite(values)
        t = days.get_loc(date)
        total[t][ok] += values[ok]
        count[t][ok] += 1
        report.add_read(path)

    out = xr.DataArray(
        _finish_mean(total, count),
        dims=("time", "y", "x"),
        coords={"time": ("time", days.values.astype("datetime64[ns]")), **coords},
        name="sm_36km",
        attrs={
            "units": UNITS,
            "long_name": f"SMAP L3 36 km soil moisture ({overpass}), on the 1 km grid",
            "source": "SPL3SMP",
            "overpass": overpass,
            "quality": quality,
            "files_read": len(report.read),
            "files_skipped": len(report.skipped),
            "files_outside_period": outside,
        },
    )
    return out, report
