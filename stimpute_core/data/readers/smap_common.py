"""What the SMAP readers share: file dates, HDF5 access, validity masks and the multi-file loop.

Both products (:mod:`.spl2smap_s`, :mod:`.spl3smp`) are HDF5 files read with h5py; every value
ends up on the EASE-Grid 2.0 1 km (M01) grid of the data contract.

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
- A folder is read as its granules (:func:`.formats.granule_files`: SMAP HDF5 files by name or
  by content), the same files the app's data folder and the recipe take; a folder holding none
  is an error that says what it holds.
- Memory: before a cube is allocated its size is estimated (:func:`check_cube_memory`) and a
  cube larger than the limit is refused with its size. The limit is half the machine's physical
  memory (the other half leaves room for the copies that merging and writing make and for
  everything else running), or ``STIMPUTE_MAX_MEMORY_GB`` gigabytes when that is set.
- A bad file raises :class:`ReaderError` from the single-file readers; the multi-file readers skip
  it, list it in the :class:`LoadReport` and keep everything already read. Any other error while
  a granule is read or placed stops the load with an error naming the granule.
- Batches: the multi-file readers accumulate days in :class:`DayBatches`. In memory the whole
  period is one batch; a streamed load (:mod:`.smap_stream`) reads the files in day order
  (:func:`day_order`, from names, else each file's metadata) and hands each finished batch of
  days to a sink, so memory is one batch, not the cube. Within a day the files keep their given
  order, so sums (and the cube) are the same to the last bit either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from ..grid import EASE2_CRS, box_for_region, grid_coords
from ..selection import parse_region
from .formats import granule_files, no_granule_problem
from .report import ReaderError

QUALITIES = ("recommended", "all")
DEFAULT_FILL = -9999.0
DEFAULT_VALID = (0.0, 1.0)
UNITS = "m3/m3"

_L2_NAME = re.compile(r"SMAP_L2_SM_SP_[A-Za-z0-9]+_(\d{8}T\d{6})_\d{8}T\d{6}_")
_L3_NAME = re.compile(r"SMAP_L3_SM_P_(?:E_)?(\d{8})_")

#: Environment variable: the most memory, in GB (10^9 bytes), that one cube may take.
MEMORY_ENV = "STIMPUTE_MAX_MEMORY_GB"

#: ``True`` for a tqdm bar, or a callable told ``(done, total, path)`` after each file.
Progress = bool | Callable[[int, int, str], None] | None
#: Told each finished batch of days: the index of its first day and its values (days, y, x).
DaySink = Callable[[int, np.ndarray], None]


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


def file_date(f: h5py.File, path: str) -> pd.Timestamp:
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


def open_hdf5(path: str) -> h5py.File:
    """``path`` opened read-only; :class:`ReaderError` when missing or not HDF5."""
    try:
        return h5py.File(path, "r")
    except FileNotFoundError as err:
        raise ReaderError(path, "no such file") from err
    except OSError as err:
        raise ReaderError(
            path, f"not a readable HDF5 file (corrupt, truncated or another format): {err}"
        ) from err


def hdf5_group(f: h5py.File, name: str, path: str) -> h5py.Group:
    """Group ``name`` of ``f``; :class:`ReaderError` listing the groups present when missing."""
    group = f.get(name)
    if not isinstance(group, h5py.Group):
        present = ", ".join(sorted(f.keys())) or "none"
        raise ReaderError(path, f"group '{name}' is missing (groups present: {present})")
    return group


def hdf5_field(group: h5py.Group, name: str, path: str, why: str = "") -> h5py.Dataset:
    """Field ``name`` of ``group``; :class:`ReaderError` (with ``why`` appended) when missing."""
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise ReaderError(path, f"field '{group.name.lstrip('/')}/{name}' is missing{why}")
    return ds


def same_shape(fields: Sequence[h5py.Dataset | None], path: str) -> None:
    """:class:`ReaderError` unless the given fields (``None`` ignored) share one shape."""
    present = [d for d in fields if d is not None]
    if len({d.shape for d in present}) > 1:
        shapes = ", ".join(f"{d.name.rsplit('/', 1)[-1]} {d.shape}" for d in present)
        raise ReaderError(path, f"fields of different shapes: {shapes}")


def scalar_attr(ds: h5py.Dataset, name: str, default: float | None) -> float | None:
    """A numeric attribute of ``ds`` as a float, ``default`` when absent or empty."""
    if name not in ds.attrs:
        return default
    value = np.asarray(ds.attrs[name]).ravel()
    return float(value[0]) if value.size else default


def valid_values(ds: h5py.Dataset, data: np.ndarray) -> np.ndarray:
    """Mask of valid soil moisture: finite, not fill, within the valid range."""
    fill = scalar_attr(ds, "_FillValue", DEFAULT_FILL)
    lo = scalar_attr(ds, "valid_min", DEFAULT_VALID[0])
    hi = scalar_attr(ds, "valid_max", DEFAULT_VALID[1])
    with np.errstate(invalid="ignore"):
        return np.isfinite(data) & (data != fill) & (data >= lo) & (data <= hi)


def recommended(ds: h5py.Dataset) -> np.ndarray:
    """Mask of cells whose retrieval quality flag has bit 0 clear (and is not its own fill)."""
    flag = ds[()]
    if not np.issubdtype(flag.dtype, np.integer):
        flag = np.where(np.isfinite(flag), flag, 1).astype(np.int64)
    ok = (flag & 1) == 0
    fill = scalar_attr(ds, "_FillValue", None)
    if fill is not None:
        ok &= flag != fill
    return ok


def check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    """``ValueError`` naming the allowed values unless ``value`` is one of them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")


# --------------------------------------------------------------------------- multi-file helpers


def memory_limit() -> tuple[int, str]:
    """The most bytes one cube may take, and where that limit comes from (for messages):
    ``$STIMPUTE_MAX_MEMORY_GB`` or half the physical memory.

    ``ValueError`` when the variable is set but is not a positive number.
    """
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        try:
            gb = float(text)
        except ValueError:
            gb = float("nan")
        if not gb > 0:
            raise ValueError(f"{MEMORY_ENV}={text!r}: expected a positive number of gigabytes")
        return int(gb * 1e9), f"set by {MEMORY_ENV}"
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no sysconf: assume 16 GB of memory
        physical = 16 * 10**9
    return int(physical // 2), f"half the physical memory; {MEMORY_ENV} raises it"


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"


def check_cube_memory(
    days: int, nrows: int, ncols: int, bytes_per_value: int, *, what: str, advice: str
) -> int:
    """Refuse a cube of ``days x nrows x ncols`` values of ``bytes_per_value`` bytes (all the
    arrays it holds together) when it exceeds :func:`memory_limit`; return its size in bytes.

    ``what`` names the cube in the message, ``advice`` says what to change (a smaller region or
    period). Nothing is allocated: the check runs before the cube is.
    """
    size = int(days) * int(nrows) * int(ncols) * int(bytes_per_value)
    limit, source = memory_limit()
    if size > limit:
        raise ValueError(
            f"{what} of {days} days x {nrows} x {ncols} cells would need about {_size(size)} "
            f"of memory ({bytes_per_value} bytes per cell-day), more than the limit of "
            f"{_size(limit)} ({source}): {advice}; nothing was read"
        )
    return size


def list_files(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """A folder's granules (sorted), one file, or a given list of files (order kept).

    A folder without any granule raises :class:`ReaderError` saying what it holds; a missing
    path ``FileNotFoundError``.
    """
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        if folder.is_dir():
            files = [str(p) for p in granule_files(folder)]
            if not files:
                raise ReaderError(folder, no_granule_problem(folder))
            return files
        if folder.is_file():
            return [str(folder)]
        raise FileNotFoundError(f"{folder}: no such file or folder")
    return [os.fspath(p) for p in source]


def period_days(start: object, end: object) -> pd.DatetimeIndex:
    """Every day ``start..end``; ``ValueError`` for unparsable dates or an empty period."""
    try:
        t0, t1 = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except ValueError as err:
        raise ValueError(f"period {start!r}..{end!r}: expected ISO dates YYYY-MM-DD") from err
    if t1 < t0:
        raise ValueError(f"period {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is empty: end is before start")
    return pd.date_range(t0, t1, freq="D")


def region_grid(region: str | Sequence[float], start: object, end: object) -> xr.Dataset:
    """The coordinates (``time`` every day ``start..end``, ``y``, ``x``, ``lat``, ``lon``) and
    ``crs`` of the 1 km cube of ``region`` (a name or W,S,E,N degrees), known before any file."""
    box = box_for_region(*parse_region(region))
    days = period_days(start, end)
    coords = {"time": ("time", days.values.astype("datetime64[ns]")), **grid_coords(box)}
    return xr.Dataset(coords=coords, attrs={"crs": EASE2_CRS})


def progress_iter(files: list[str], progress: Progress, desc: str) -> Iterable[tuple[int, str]]:
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


def finish_mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``total / count`` in place, NaN where ``count`` is 0."""
    np.divide(total, count, out=total, where=count > 0)
    total[count == 0] = np.nan
    return total


class DayBatches:
    """Running float32 sum and uint16 count of ``batch`` days at a time of a ``ndays`` period.

    :meth:`day` gives day ``t``'s sum and count (handing every earlier batch, finished, to
    ``sink``); :meth:`finish` hands the rest. Days must come in order of their batches.
    """

    def __init__(self, ndays: int, shape: tuple[int, int], batch: int, sink: DaySink):
        self.ndays, self.shape, self.batch, self.sink = ndays, shape, batch, sink
        self.t0 = 0
        self._new()

    def _new(self) -> None:
        n = min(self.batch, self.ndays - self.t0)
        self.total = np.zeros((n, *self.shape), dtype=np.float32)
        self.count = np.zeros((n, *self.shape), dtype=np.uint16)

    def _flush(self) -> None:
        self.sink(self.t0, finish_mean(self.total, self.count))
        self.total = self.count = None
        self.t0 += self.batch
        if self.t0 < self.ndays:
            self._new()

    def day(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count (views) of day ``t`` of the period."""
        if t < self.t0:
            raise ValueError(
                f"day {t} of the period belongs to a batch already written: a streamed load "
                "reads the files in day order (did a file change during the load?)"
            )
        while t >= self.t0 + self.batch:
            self._flush()
        return self.total[t - self.t0], self.count[t - self.t0]

    def finish(self) -> None:
        """Hand every batch not handed yet to the sink (days without data are NaN)."""
        while self.t0 < self.ndays:
            self._flush()


def day_order(files: list[str], days: pd.DatetimeIndex) -> list[str]:
    """``files`` in the order a streamed load reads them: by day, the given order within a day.

    The day comes from the name, else from the file's ``Metadata`` (the file is opened for that
    only). Files outside the period, and those whose day cannot be told (they are read first
    and fail, so they are reported like any bad file), come first: they touch no batch.
    """

    def key(path: str) -> int:
        date = granule_date_from_name(path)
        if date is None:
            try:
                with open_hdf5(path) as f:
                    date = _metadata_date(f, path)
            except (ReaderError, OSError):
                return -1
        return int(days.get_loc(date)) if days[0] <= date <= days[-1] else -1

    return sorted(files, key=key)
