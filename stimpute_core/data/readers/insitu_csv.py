"""A long in-situ CSV (TxSON's own files) into the contract's ``insitu(station, time)``.

The format is described at :func:`read_insitu_csv`; the daily rule and the output follow
:mod:`.insitu_common`.
"""

from __future__ import annotations

import codecs
import csv
import math
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import xarray as xr

from ..contract import VALID_RANGE
from .insitu_common import (
    DateLike,
    Station,
    assemble,
    check_depths,
    combine_sensors,
    fmt_window,
    in_depth,
    plausible_days,
    time_window,
)
from .report import LoadReport, ReaderError

__all__ = ["CSV_COLUMNS", "read_insitu_csv"]

#: Required header of the long CSV read by :func:`read_insitu_csv` (an optional ``network``
#: column may follow; other columns are ignored).
CSV_COLUMNS = ("station", "time", "lat", "lon", "depth", "soil_moisture")
#: Row problems of a CSV listed one by one in the report; the rest are counted in one entry.
_MAX_ROW_ENTRIES = 20
#: Row problems quoted in an error message (the report may not be shown with it).
_MAX_IN_MESSAGE = 3
#: Bytes looked at to tell a binary file from a text CSV.
_SNIFF_BYTES = 65536


class _RowLog:
    """Row problems of one CSV: the first few listed one by one, the rest counted."""

    def __init__(self, path: Path, report: LoadReport):
        self.path, self.report, self.extra = path, report, 0
        self.listed = 0
        self.first: list[str] = []

    def add(self, line: int, problem: str) -> None:
        if len(self.first) < _MAX_IN_MESSAGE:
            self.first.append(f"line {line}: {problem}")
        if self.listed < _MAX_ROW_ENTRIES:
            self.report.add_skipped(self.path, f"line {line}: {problem}")
            self.listed += 1
        else:
            self.extra += 1

    def quoted(self) -> str:
        """The first row problems, for an error message; empty when there were none."""
        n = self.listed + self.extra
        if not n:
            return ""
        more = f"; {n - len(self.first)} more" if n > len(self.first) else ""
        return f" ({n} malformed row(s): {'; '.join(self.first)}{more})"

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
    first, last = plausible_days()
    try:
        t = datetime.fromisoformat(raw["time"])
    except ValueError:
        return f"time {raw['time']!r} is not an ISO 8601 date"
    try:
        t = t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t
    except OverflowError:  # 9999-12-31T23:00-05:00 lies beyond year 9999 in UTC
        t = datetime.max
    if not first <= t.date() <= last:
        return f"time {raw['time']!r} lies outside the plausible span {first}..{last}"
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
    if math.isinf(value):
        return f"soil_moisture {raw['soil_moisture']!r} is infinite (nan marks a missing value)"
    return raw["station"], t, lat, lon, depth, value


def _encoding(path: Path) -> str:
    """``utf-8-sig``, or ``latin-1`` for a text file that is not UTF-8; ReaderError if binary.

    Latin-1 (ISO 8859-1, a superset of ASCII that decodes every byte) is the documented fallback
    for CSVs saved by older spreadsheets: numbers and ISO dates are ASCII and read the same, only
    non-ASCII station names may come out differently. A NUL byte in the first 64 KiB marks a
    binary file (or UTF-16 text), which is refused without quoting any of its content.
    """
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise ReaderError(
                path,
                "is a binary file (or UTF-16 text), not a CSV: expected UTF-8 text with the "
                "header " + ",".join(CSV_COLUMNS),
            )
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8-sig"


def _header_text(header: list[str]) -> str:
    """The header for a message when it looks like one (short names), else nothing of it.

    A file that is not a CSV (a system file, say) must not have its content echoed.
    """
    names = [h.strip() for h in header]
    plausible = 2 <= len(names) <= 50 and all(
        len(n) <= 40 and n.isprintable() and ":" not in n for n in names
    )
    if not plausible:
        return f"its first line is not a CSV header ({len(names)} field(s))"
    text = ",".join(names)
    return f"the header is {text[:200]!r}"


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

    The file is read as UTF-8, or as Latin-1 when it is not valid UTF-8 (said in the report); a
    binary file is refused. A malformed row (unparseable time or one outside the plausible span
    1950..next year, non-numeric or infinite field, missing value, too few fields) is skipped and
    listed in the report by line number (the first 20 one by one, the rest counted); so is a
    value outside 0..0.8 m³/m³, which would break the contract (percent? divide by 100). Errors
    quote the first few malformed rows themselves, since the report may not be shown with them.
    A station whose lat/lon vary across rows keeps the first row's and is listed. Raises
    :class:`ReaderError` when the file is missing or empty, lacks a required column (named in
    the message), has no row in the depth range (the depths present are listed), or has no valid
    value (in the time window). The file is streamed: memory grows with stations x days only.
    """
    path = Path(path)
    if not path.is_file():
        raise ReaderError(path, "no such file: expected a CSV with " + ",".join(CSV_COLUMNS))
    t0, t1 = time_window(start, end)
    check_depths(min_depth, max_depth)
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

    try:
        encoding = _encoding(path)
    except OSError as err:  # unreadable (permissions, a device): say so, never a traceback
        raise ReaderError(path, f"cannot be read ({err.strerror or err})") from err
    if encoding != "utf-8-sig":
        report.add_skipped(path, "not UTF-8: read as Latin-1 (check non-ASCII station names)")
    with path.open(newline="", encoding=encoding) as fh:
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
                f"missing required column(s) {', '.join(missing)}: {_header_text(header)}, "
                f"expected {','.join(CSV_COLUMNS)}",
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
            if not in_depth(depth, depth, min_depth, max_depth):
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
        what = rowlog.quoted() or " (it has a header but no data row)"
        raise ReaderError(path, f"has no valid row{what}")
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
                path, f"no valid value within {fmt_window(t0, t1)}; the data cover {a}..{b}"
            )
        hint = f" ({n_range} outside 0..0.8 m³/m³: percent? divide by 100)" if n_range else ""
        raise ReaderError(
            path, f"has no valid soil_moisture value in the depth range{hint}{rowlog.quoted()}"
        )

    stations: list[Station] = []
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
            Station(
                name=name,
                lat=lat,
                lon=lon,
                depth=max(depths),
                network=nets.get(name, "unknown"),
                daily=combine_sensors(parts),
            )
        )
    for name in sorted(set(where) - {s.name for s in stations}):
        report.add_skipped(path, f"station {name}: no valid value in the depth range and window")
    attrs = {
        "long_name": "in-situ soil moisture, daily mean over UTC days",
        "source": f"long CSV {path.name}",
        "depth_range_m": f"{min_depth:g}..{max_depth:g}",
    }
    return assemble(stations, t0, t1, attrs), report
