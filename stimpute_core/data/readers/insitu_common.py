"""What the in-situ readers share: the daily rule and the contract's station variables.

The readers: :func:`.ismn.read_ismn` (ISMN downloads) and :func:`.insitu_csv.read_insitu_csv`
(a long CSV); :func:`.stations.attach_stations` puts either result onto a contract cube.

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
- CSV dates must lie within :func:`plausible_days` (1950-01-01 to one year after today): satellite
  soil moisture starts in 1978 and no in-situ record older than 1950 can meet it, while a date
  more than a year ahead is a typo or a placeholder (9999-01-01 would make an 8,000-year daily
  axis). A row dated outside is malformed and listed. (ISMN dates come from ISMN's own archive.)
- ``insitu`` is float32; ``station`` is the station's name (ISMN) or id (CSV);
  ``station_network`` is the ISMN network, or the CSV's optional ``network`` column ("unknown"
  when absent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import INSITU

UNITS = "m3/m3"
#: Tolerance in metres when comparing sensor depths with the depth range (ISMN writes 0.050000).
_DEPTH_TOL = 1e-6

DateLike = str | date | datetime | pd.Timestamp | None


@dataclass
class Station:
    """One station's daily series, ready for :func:`assemble`."""

    name: str
    lat: float
    lon: float
    depth: float
    network: str
    daily: pd.Series  # float64, index: midnights (naive UTC)


#: The first plausible day of an in-situ record (see the module docstring).
FIRST_PLAUSIBLE_DAY = date(1950, 1, 1)


def plausible_days() -> tuple[date, date]:
    """First and last plausible day of an in-situ record: 1950-01-01 and a year after today."""
    return FIRST_PLAUSIBLE_DAY, date.today() + timedelta(days=366)


def time_window(start: DateLike, end: DateLike) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
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


def check_depths(min_depth: float, max_depth: float) -> None:
    """``ValueError`` unless ``min_depth..max_depth`` is a finite range in metres."""
    if not (math.isfinite(min_depth) and math.isfinite(max_depth)) or max_depth < min_depth:
        raise ValueError(
            f"depth range {min_depth}..{max_depth} m: expected finite metres with min <= max"
        )


def in_depth(d_from: float, d_to: float, min_depth: float, max_depth: float) -> bool:
    """Whether a sensor spanning ``d_from..d_to`` m lies within the depth range."""
    return d_from >= min_depth - _DEPTH_TOL and d_to <= max_depth + _DEPTH_TOL


def fmt_depth(d_from: float, d_to: float) -> str:
    """A sensor depth for messages: ``0.05 m`` or ``0-0.05 m``."""
    return f"{d_to:g} m" if abs(d_from - d_to) <= _DEPTH_TOL else f"{d_from:g}-{d_to:g} m"


def combine_sensors(parts: Sequence[pd.Series]) -> pd.Series:
    """Mean over sensors per day of their daily means (NaN-skipping)."""
    if len(parts) == 1:
        return parts[0].sort_index()
    return pd.concat(list(parts), axis=1).mean(axis=1).sort_index()


def assemble(
    stations: list[Station],
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


def fmt_window(t0: pd.Timestamp | None, t1: pd.Timestamp | None) -> str:
    """The time window for messages (an open end is named as such)."""
    a = f"{t0:%Y-%m-%d}" if t0 is not None else "the start"
    b = f"{t1:%Y-%m-%d}" if t1 is not None else "the end"
    return f"the time window {a}..{b}"
