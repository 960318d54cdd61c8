"""In-situ stations: ISMN downloads and a long CSV into the contract's ``insitu(station, time)``.

:func:`read_ismn` reads an ISMN download (the ``.zip`` as downloaded or its unpacked folder, in the
"header_values" or the "ceop_sep" layout) through the ``ismn`` package; :func:`read_insitu_csv`
reads a documented long CSV for TxSON's own files; :func:`attach_stations` puts either result onto
a contract cube.

Decisions, for both readers:

- Days are UTC days (ISMN and the CSV give UTC times, or times the CSV reader converts to UTC). A
  day's value is the mean of the valid values inside it, and any single valid value makes a valid
  day: hourly records with gaps would otherwise lose whole days, and the satellite overpass is a
  single instant anyway. How many hours a mean rests on is not kept.
- Several sensors of one station within the depth range (ISMN sensors, or CSV depths) are averaged
  per day: first each sensor's daily mean, then the mean over the sensors that have a value on that
  day, so each sensor weighs the same whatever its number of hours. ``station_depth`` is the
  largest ``depth_to`` of the sensors that contributed a value.
- Values outside the contract's plausible range 0..0.8 m³/m³ are dropped (they would break the
  contract) and listed in the :class:`LoadReport`. A station left without any valid value is
  dropped and listed too.
- The time axis holds every day from the first to the last day with a value, or from ``start`` to
  ``end`` when given (values outside the window are dropped).
- ``insitu`` is float32; ``station`` is the station's name (ISMN) or id (CSV);
  ``station_network`` is the ISMN network, or the CSV's optional ``network`` column ("unknown"
  when absent).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import INSITU, STATION_COORDS, VALID_RANGE
from ..selection import station_cells
from .report import LoadReport, ReaderError

__all__ = ["CSV_COLUMNS", "attach_stations", "read_insitu_csv", "read_ismn"]

log = logging.getLogger(__name__)

#: Required header of the long CSV read by :func:`read_insitu_csv` (an optional ``network``
#: column may follow; other columns are ignored).
CSV_COLUMNS = ("station", "time", "lat", "lon", "depth", "soil_moisture")
UNITS = "m3/m3"
#: Tolerance in metres when comparing sensor depths with the depth range (ISMN writes 0.050000).
_DEPTH_TOL = 1e-6
#: Row problems of a CSV listed one by one in the report; the rest are counted in one entry.
_MAX_ROW_ENTRIES = 20

DateLike = str | date | datetime | pd.Timestamp | None


@dataclass
class _Station:
    """One station's daily series, ready for :func:`_assemble`."""

    name: str
    lat: float
    lon: float
    depth: float
    network: str
    daily: pd.Series  # float64, index: midnights (naive UTC)


# --------------------------------------------------------------------------------------------
# Shared helpers


def _window(start: DateLike, end: DateLike) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``start``/``end`` as UTC midnights (either may be None); ValueError when end < start."""

    def day(value: DateLike, name: str) -> pd.Timestamp | None:
        if value is None:
            return None
        try:
            t = pd.Timestamp(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}={value!r} is not a date: expected YYYY-MM-DD") from err
        if t.tz is not None:
            t = t.tz_convert("UTC").tz_localize(None)
        return t.normalize()

    t0, t1 = day(start, "start"), day(end, "end")
    if t0 is not None and t1 is not None and t1 < t0:
        raise ValueError(f"time window {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is empty: end is before start")
    return t0, t1


def _check_depths(min_depth: float, max_depth: float) -> None:
    if not (math.isfinite(min_depth) and math.isfinite(max_depth)) or max_depth < min_depth:
        raise ValueError(
            f"depth range {min_depth}..{max_depth} m: expected finite metres with min <= max"
        )


def _in_depth(d_from: float, d_to: float, min_depth: float, max_depth: float) -> bool:
    return d_from >= min_depth - _DEPTH_TOL and d_to <= max_depth + _DEPTH_TOL


def _fmt_depth(d_from: float, d_to: float) -> str:
    return f"{d_to:g} m" if abs(d_from - d_to) <= _DEPTH_TOL else f"{d_from:g}-{d_to:g} m"


def _in_window(day: pd.Timestamp, t0: pd.Timestamp | None, t1: pd.Timestamp | None) -> bool:
    return (t0 is None or day >= t0) and (t1 is None or day <= t1)


def _combine_sensors(parts: Sequence[pd.Series]) -> pd.Series:
    """Mean over sensors per day of their daily means (NaN-skipping)."""
    if len(parts) == 1:
        return parts[0].sort_index()
    return pd.concat(list(parts), axis=1).mean(axis=1).sort_index()


def _assemble(
    stations: list[_Station],
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
    attrs: dict[str, object],
) -> xr.Dataset:
    """The contract's station variables from per-station daily series."""
    stations = sorted(stations, key=lambda s: s.name)
    first = t0 if t0 is not None else min(s.daily.index[0] for s in stations)
    last = t1 if t1 is not None else max(s.daily.index[-1] for s in stations)
    times = pd.date_range(first, last, freq="D")
    data = np.full((len(stations), len(times)), np.nan, dtype=np.float32)
    for i, s in enumerate(stations):
        data[i] = s.daily.reindex(times).to_numpy(dtype=np.float32)
    return xr.Dataset(
        {INSITU: (("station", "time"), data, {"units": UNITS, **attrs})},
        coords={
            "time": times,
            "station": ("station", np.array([s.name for s in stations], dtype=str)),
            "station_lat": (
                "station",
                np.array([s.lat for s in stations], float),
                {"units": "degrees_north"},
            ),
            "station_lon": (
                "station",
                np.array([s.lon for s in stations], float),
                {"units": "degrees_east"},
            ),
            "station_depth": (
                "station",
                np.array([s.depth for s in stations], float),
                {"units": "m", "long_name": "deepest depth_to of the sensors averaged"},
            ),
            "station_network": ("station", np.array([s.network for s in stations], dtype=str)),
        },
    )


# --------------------------------------------------------------------------------------------
# ISMN


def _archive_files(path: Path) -> tuple[list[str], bool]:
    """Paths (POSIX, relative to the archive root) of every ``*.stm`` data file; whether a zip."""
    if path.is_dir():
        found = []
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                if name.endswith(".stm"):
                    found.append((Path(dirpath) / name).relative_to(path).as_posix())
        return sorted(found), False
    if not zipfile.is_zipfile(path):
        raise ReaderError(
            path,
            "is neither a folder nor a zip archive: expected an ISMN download "
            "(is the zip corrupt or incompletely downloaded?)",
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ReaderError(path, f"corrupt zip archive ({err})") from err
    return sorted(n for n in names if n.endswith(".stm")), True


def _layout_files(path: Path, files: list[str], is_zip: bool) -> list[str]:
    """Data files at ``NETWORK/STATION/file.stm``, the only place ``ismn`` looks for them."""
    usable = [f for f in files if len(PurePosixPath(f).parts) == 3]
    if usable:
        return usable
    if not files:
        raise ReaderError(
            path, "holds no ISMN data files (*.stm): not an ISMN download, or an empty one"
        )
    inner = "/".join(PurePosixPath(files[0]).parts[:-3])
    fix = (
        f"unzip it and pass its folder {inner!r}"
        if is_zip
        else f"pass the folder holding the network folders ({path / inner})"
    )
    raise ReaderError(
        path, f"its ISMN data files are not at NETWORK/STATION/file.stm (found {files[0]}): {fix}"
    )


def _default_meta_dir(path: Path, files: list[str], is_zip: bool) -> Path:
    """Cache folder for ``ismn``'s metadata, keyed by the archive's path and content.

    The key covers the resolved path and the size and modification time of the zip (or of every
    data file of a folder), so a new download at the same path gets fresh metadata.
    """
    from ..scenario import default_cache_dir

    h = hashlib.sha1(str(path.resolve()).encode())
    targets = [path] if is_zip else [path / f for f in files]
    for p in targets:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return default_cache_dir() / "ismn_metadata" / h.hexdigest()[:16]


@contextlib.contextmanager
def _quiet_ismn():
    """Silence the deprecation warnings ``ismn`` triggers in pandas: users cannot act on them, and
    under ``-W error`` they would make ``ismn`` skip every station."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _open_interface(path: Path, meta: Path, network: str):
    """``ismn.interface.ISMN_Interface`` for one network, its metadata written to ``meta``."""
    try:
        from ismn.interface import ISMN_Interface
    except ImportError as err:  # pragma: no cover - ismn is a declared dependency
        raise ImportError(
            "reading ISMN archives needs the 'ismn' package: pip install ismn"
        ) from err
    meta.mkdir(parents=True, exist_ok=True)
    chatter = io.StringIO()  # ismn prints progress to stdout; keep it for debugging only
    try:
        with contextlib.redirect_stdout(chatter), _quiet_ismn():
            return ISMN_Interface(path, meta_path=meta, network=[network])
    except Exception as err:
        raise ReaderError(
            path,
            f"the ismn package cannot index it ({type(err).__name__}: {err}); its metadata and "
            f"log are in {meta} (delete that folder to index again)",
        ) from err
    finally:
        if chatter.getvalue():
            log.debug("ismn: %s", chatter.getvalue())


def _sensor_daily(
    df: pd.DataFrame,
    variable: str,
    flags: tuple[str, ...],
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
    seen_flags: Counter,
) -> tuple[pd.Series, int, int]:
    """Daily means of one sensor's flagged-good values; (daily, n flagged good, n out of range)."""
    values = pd.to_numeric(df[variable], errors="coerce").to_numpy(dtype=float)
    flag = df[f"{variable}_flag"].astype(str).str.strip()
    seen_flags.update(flag[np.isfinite(values)].tolist())
    good = flag.isin(flags).to_numpy() & np.isfinite(values)
    in_range = (values >= VALID_RANGE[0]) & (values <= VALID_RANGE[1])
    n_bad = int((good & ~in_range).sum())
    keep = good & in_range
    times = pd.DatetimeIndex(df.index)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    days = times.floor("D")
    if t0 is not None:
        keep &= days >= t0
    if t1 is not None:
        keep &= days <= t1
    series = pd.Series(values[keep], index=days[keep])
    return series.groupby(level=0).mean(), int(good.sum()), n_bad


def read_ismn(
    path: str | os.PathLike,
    *,
    network: str = "TxSON",
    min_depth: float = 0.0,
    max_depth: float = 0.05,
    flags: Sequence[str] = ("G",),
    variable: str = "soil_moisture",
    start: DateLike = None,
    end: DateLike = None,
    meta_dir: str | os.PathLike | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Daily station soil moisture of one network of an ISMN download.

    ``path`` is the ``.zip`` as downloaded or its unpacked folder (the folder holding the network
    folders), in the "header_values" or the "ceop_sep" layout. Sensors of ``variable`` whose depth
    lies within the range (``depth_from >= min_depth`` and ``depth_to <= max_depth``, metres) are
    kept; values whose ISMN ``<variable>_flag`` is not in ``flags`` become NaN (``"G"`` = good;
    ISMN's C.. range and D.. dubious flags are dropped). See the module docstring for the daily
    rule and the output.

    The first open makes ``ismn`` index the archive into a ``python_metadata`` folder; since the
    archive may be read-only or a zip, that goes to ``meta_dir`` (used as given: delete it when the
    archive changes) or by default to the stimpute cache, keyed by the archive's path and content.
    Stations are read one file at a time so memory stays bounded by one sensor's record.

    A data file ``ismn`` cannot parse or read is skipped and listed in the report. Raises
    :class:`ReaderError` naming ``path`` when it does not exist, is not an ISMN archive (or a
    corrupt zip), lacks ``network`` (the message lists those present), has no sensor within the
    depth range (it lists the depths present), or has no value left after the flag filter or in
    the time window.
    """
    path = Path(path)
    if not path.exists():
        raise ReaderError(
            path, "no such file or folder: expected an ISMN download (the .zip or its folder)"
        )
    t0, t1 = _window(start, end)
    _check_depths(min_depth, max_depth)
    flags = (flags,) if isinstance(flags, str) else tuple(str(f) for f in flags)
    all_files, is_zip = _archive_files(path)
    files = _layout_files(path, all_files, is_zip)
    networks = sorted({PurePosixPath(f).parts[0] for f in files})
    if network not in networks:
        raise ReaderError(
            path,
            f"network {network!r} is not in this archive; networks present: {', '.join(networks)}",
        )
    net_files = [f for f in files if PurePosixPath(f).parts[0] == network]
    meta = Path(meta_dir) if meta_dir is not None else _default_meta_dir(path, files, is_zip)

    iface = _open_interface(path, meta, network)
    try:
        return _read_network(
            iface, path, net_files, meta, network, variable, flags, t0, t1, (min_depth, max_depth)
        )
    finally:
        with contextlib.suppress(Exception):
            iface.close_files()


def _read_network(
    iface,
    path: Path,
    net_files: list[str],
    meta: Path,
    network: str,
    variable: str,
    flags: tuple[str, ...],
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
    depth_range: tuple[float, float],
) -> tuple[xr.Dataset, LoadReport]:
    report = LoadReport()
    md = iface.metadata
    file_col = md[("file_path", "val")].astype(str) if len(md) else pd.Series(dtype=str)
    known = set(file_col)
    for f in net_files:
        if f not in known:
            report.add_skipped(
                path / f, f"the ismn package could not parse this data file (see the log in {meta})"
            )
    if not len(md):
        raise ReaderError(path, f"the ismn package could parse no data file of network {network!r}")

    variables = md[("variable", "val")].astype(str)
    rows = md[variables == variable]
    if rows.empty:
        present = ", ".join(sorted(set(variables)))
        raise ReaderError(
            path,
            f"network {network!r} has no {variable!r} data files; variables present: {present}",
        )
    d_from = rows[("instrument", "depth_from")].astype(float).to_numpy()
    d_to = rows[("instrument", "depth_to")].astype(float).to_numpy()
    lo, hi = depth_range
    inside = np.array([_in_depth(a, b, lo, hi) for a, b in zip(d_from, d_to, strict=True)])
    if not inside.any():
        depths = sorted(
            set(zip(d_from.tolist(), d_to.tolist(), strict=True)), key=lambda d: d[::-1]
        )
        raise ReaderError(
            path,
            f"no {variable} sensor of network {network!r} lies within {lo:g}..{hi:g} m; sensor "
            f"depths present: {', '.join(_fmt_depth(a, b) for a, b in depths)}",
        )
    rows = rows[inside]

    seen_flags: Counter = Counter()
    n_good = 0
    stations: list[_Station] = []
    names = rows[("station", "val")].astype(str)
    for name in sorted(set(names)):
        group = rows[names == name]
        parts, depths = [], []
        for idx in group.index:
            rel = str(md.at[idx, ("file_path", "val")])
            try:
                with _quiet_ismn():
                    df = iface.read_ts(int(idx))
                daily, good, n_bad = _sensor_daily(df, variable, flags, t0, t1, seen_flags)
            except Exception as err:  # one unreadable file never aborts the load
                report.add_skipped(path / rel, f"cannot be read: {type(err).__name__}: {err}")
                continue
            report.add_read(path / rel)
            n_good += good
            if n_bad:
                report.add_skipped(
                    path / rel,
                    f"{n_bad} value(s) outside {VALID_RANGE[0]}..{VALID_RANGE[1]} m³/m³ dropped",
                )
            if len(daily):
                parts.append(daily)
                depths.append(float(md.at[idx, ("instrument", "depth_to")]))
        if not parts:
            report.add_skipped(
                path / network / name,
                f"station {name}: no {variable} value flagged {'/'.join(flags)} within the depth "
                "range" + (" and the time window" if t0 is not None or t1 is not None else ""),
            )
            continue
        first = group.index[0]
        stations.append(
            _Station(
                name=name,
                lat=float(md.at[first, ("latitude", "val")]),
                lon=float(md.at[first, ("longitude", "val")]),
                depth=max(depths),
                network=network,
                daily=_combine_sensors(parts),
            )
        )

    if not stations:
        if not report.read:
            raise ReaderError(
                path, f"none of the {len(rows)} data file(s) in the depth range could be read"
            )
        if n_good == 0:
            found = ", ".join(f"{k} ({v})" for k, v in seen_flags.most_common()) or "none"
            raise ReaderError(
                path,
                f"no {variable} value of network {network!r} in the depth range is flagged "
                f"{'/'.join(flags)}; flags present: {found}",
            )
        raise ReaderError(
            path,
            f"no valid {variable} value of network {network!r} within "
            f"{_fmt_window(t0, t1)} (or all outside {VALID_RANGE[0]}..{VALID_RANGE[1]} m³/m³)",
        )
    attrs = {
        "long_name": f"in-situ {variable.replace('_', ' ')}, daily mean over UTC days",
        "source": f"ISMN {path.name}, network {network}",
        "flags_kept": ",".join(flags),
        "depth_range_m": f"{lo:g}..{hi:g}",
    }
    return _assemble(stations, t0, t1, attrs), report


def _fmt_window(t0: pd.Timestamp | None, t1: pd.Timestamp | None) -> str:
    a = f"{t0:%Y-%m-%d}" if t0 is not None else "the start"
    b = f"{t1:%Y-%m-%d}" if t1 is not None else "the end"
    return f"the time window {a}..{b}"


# --------------------------------------------------------------------------------------------
# Long CSV


class _RowLog:
    """Row problems of one CSV: the first few listed one by one, the rest counted."""

    def __init__(self, path: Path, report: LoadReport):
        self.path, self.report, self.extra = path, report, 0
        self.listed = 0

    def add(self, line: int, problem: str) -> None:
        if self.listed < _MAX_ROW_ENTRIES:
            self.report.add_skipped(self.path, f"line {line}: {problem}")
            self.listed += 1
        else:
            self.extra += 1

    def close(self) -> None:
        if self.extra:
            self.report.add_skipped(
                self.path, f"{self.extra} more row problem(s) like the above, not listed one by one"
            )


def _parse_row(
    row: list[str], index: dict[str, int]
) -> tuple[str, datetime, float, float, float, float] | str:
    """(station, UTC time, lat, lon, depth, value) of a CSV row, or why it is malformed."""
    width = max(index.values()) + 1
    if len(row) < width:
        return f"has {len(row)} field(s), expected at least {width}"
    raw = {c: row[i].strip() for c, i in index.items()}
    empty = [c for c in CSV_COLUMNS if not raw[c]]
    if empty:
        return f"missing value(s) for {', '.join(empty)}"
    try:
        t = datetime.fromisoformat(raw["time"])
    except ValueError:
        return f"time {raw['time']!r} is not an ISO 8601 date"
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    numbers = []
    for c in ("lat", "lon", "depth", "soil_moisture"):
        try:
            numbers.append(float(raw[c]))
        except ValueError:
            return f"{c} {raw[c]!r} is not a number"
    lat, lon, depth, value = numbers
    if not (abs(lat) <= 90 and abs(lon) <= 180):
        return f"lat/lon {raw['lat']},{raw['lon']} is not a position in degrees"
    if not math.isfinite(depth):
        return f"depth {raw['depth']!r} is not a number"
    return raw["station"], t, lat, lon, depth, value


def read_insitu_csv(
    path: str | os.PathLike,
    *,
    start: DateLike = None,
    end: DateLike = None,
    min_depth: float = 0.0,
    max_depth: float = 0.05,
) -> tuple[xr.Dataset, LoadReport]:
    """Daily station soil moisture from a long CSV, one row per station, depth and time.

    The format, for TxSON's own downloads (comma-separated, UTF-8, one header line)::

        station,time,lat,lon,depth,soil_moisture
        CR200-1,2020-01-01T22:00:00,30.31,-98.78,0.05,0.213

    ``time`` is ISO 8601: naive times are UTC, times with an offset (``+02:00``, ``Z``) are
    converted to UTC. ``lat``/``lon`` in degrees, ``depth`` in metres, ``soil_moisture`` in
    m³/m³ (``nan`` is a plain missing value, not a malformed row). An optional ``network``
    column fills ``station_network``; other columns are ignored. Rows whose depth lies outside
    ``min_depth..max_depth`` are not used.

    A malformed row (unparseable time, non-numeric field, missing value, too few fields) is
    skipped and listed in the report by line number (the first 20 one by one, the rest counted);
    so is a value outside 0..0.8 m³/m³, which would break the contract (percent? divide by 100).
    A station whose lat/lon vary across rows keeps the first row's and is listed. Raises
    :class:`ReaderError` when the file is missing or empty, lacks a required column (named in
    the message), has no row in the depth range (the depths present are listed), or has no valid
    value (in the time window). The file is streamed: memory grows with stations x days only.
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(path, "no such file: expected a CSV with " + ",".join(CSV_COLUMNS))
    t0, t1 = _window(start, end)
    _check_depths(min_depth, max_depth)
    report = LoadReport()
    rowlog = _RowLog(path, report)
    # (station, depth) -> day ordinal -> [sum, count]
    sums: dict[tuple[str, float], dict[int, list[float]]] = {}
    where: dict[str, tuple[float, float]] = {}
    moved: set[str] = set()
    nets: dict[str, str] = {}
    depths_seen: set[float] = set()
    n_parsed = n_in_depth = n_range = n_valid = 0
    span: list[int] = []
    lo_day = t0.toordinal() if t0 is not None else None
    hi_day = t1.toordinal() if t1 is not None else None

    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except csv.Error as err:
            raise ReaderError(path, f"is not a CSV file ({err})") from err
        if header is None:
            raise ReaderError(path, "is empty: expected the header " + ",".join(CSV_COLUMNS))
        names = [h.strip().lower() for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        if missing:
            raise ReaderError(
                path,
                f"missing required column(s) {', '.join(missing)}: the header is "
                f"{','.join(h.strip() for h in header)!r}, expected {','.join(CSV_COLUMNS)}",
            )
        index = {c: names.index(c) for c in CSV_COLUMNS}
        net_i = names.index("network") if "network" in names else None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                rowlog.add(reader.line_num, f"not a CSV row ({err})")
                continue
            if not any(c.strip() for c in row):
                continue
            line = reader.line_num
            parsed = _parse_row(row, index)
            if isinstance(parsed, str):
                rowlog.add(line, parsed)
                continue
            name, t, lat, lon, depth, value = parsed
            n_parsed += 1
            depths_seen.add(depth)
            if name not in where:
                where[name] = (lat, lon)
                if net_i is not None and len(row) > net_i and row[net_i].strip():
                    nets[name] = row[net_i].strip()
            elif name not in moved and (
                abs(where[name][0] - lat) > 1e-6 or abs(where[name][1] - lon) > 1e-6
            ):
                moved.add(name)
                report.add_skipped(
                    path,
                    f"line {line}: station {name} at {lat},{lon} differs from its first row's "
                    f"{where[name][0]},{where[name][1]}; the first is used",
                )
            if not _in_depth(depth, depth, min_depth, max_depth):
                continue
            n_in_depth += 1
            if not math.isfinite(value):
                continue
            if not VALID_RANGE[0] <= value <= VALID_RANGE[1]:
                n_range += 1
                rowlog.add(
                    line,
                    f"soil_moisture {value:g} outside {VALID_RANGE[0]}..{VALID_RANGE[1]} m³/m³ "
                    "dropped",
                )
                continue
            day = t.toordinal()
            span = [min(span[0], day), max(span[1], day)] if span else [day, day]
            if (lo_day is not None and day < lo_day) or (hi_day is not None and day > hi_day):
                continue
            n_valid += 1
            acc = sums.setdefault((name, depth), {}).setdefault(day, [0.0, 0])
            acc[0] += value
            acc[1] += 1
    rowlog.close()
    report.add_read(path)

    if n_parsed == 0:
        raise ReaderError(path, "has no valid row (see the report for the malformed ones)")
    if n_in_depth == 0:
        present = ", ".join(f"{d:g} m" for d in sorted(depths_seen))
        raise ReaderError(
            path,
            f"no row lies within the depth range {min_depth:g}..{max_depth:g} m; "
            f"depths present: {present}",
        )
    if n_valid == 0:
        if span:
            a, b = date.fromordinal(span[0]), date.fromordinal(span[1])
            raise ReaderError(
                path, f"no valid value within {_fmt_window(t0, t1)}; the data cover {a}..{b}"
            )
        hint = f" ({n_range} outside 0..0.8 m³/m³: percent? divide by 100)" if n_range else ""
        raise ReaderError(path, f"has no valid soil_moisture value in the depth range{hint}")

    stations: list[_Station] = []
    for name in sorted({s for s, _ in sums}):
        parts, depths = [], []
        for (s, depth), days in sorted(sums.items()):
            if s != name:
                continue
            idx = pd.DatetimeIndex([pd.Timestamp(date.fromordinal(d)) for d in days])
            parts.append(pd.Series([v[0] / v[1] for v in days.values()], index=idx))
            depths.append(depth)
        lat, lon = where[name]
        stations.append(
            _Station(
                name=name,
                lat=lat,
                lon=lon,
                depth=max(depths),
                network=nets.get(name, "unknown"),
                daily=_combine_sensors(parts),
            )
        )
    for name in sorted(set(where) - {s.name for s in stations}):
        report.add_skipped(path, f"station {name}: no valid value in the depth range and window")
    attrs = {
        "long_name": "in-situ soil moisture, daily mean over UTC days",
        "source": f"long CSV {path.name}",
        "depth_range_m": f"{min_depth:g}..{max_depth:g}",
    }
    return _assemble(stations, t0, t1, attrs), report


# --------------------------------------------------------------------------------------------
# Onto a cube


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
