"""ISMN downloads (the ``.zip`` or its folder) into the contract's ``insitu(station, time)``.

Read through the ``ismn`` package, in the "header_values" or the "ceop_sep" layout; the daily
rule and the output follow :mod:`.insitu_common`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import xarray as xr

from ..cache import default_cache_dir
from ..contract import VALID_RANGE
from .formats import ISMN_SUFFIX
from .insitu_common import (
    DateLike,
    Station,
    assemble,
    check_depths,
    combine_sensors,
    fmt_depth,
    fmt_window,
    in_depth,
    time_window,
)
from .report import LoadReport, ReaderError

__all__ = ["read_ismn"]

log = logging.getLogger(__name__)


def _archive_files(path: Path) -> tuple[list[str], bool]:
    """Paths (POSIX, relative to the archive root) of every ``*.stm`` data file; whether a zip."""
    if path.is_dir():
        found = []
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                if name.endswith(ISMN_SUFFIX):
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
    return sorted(n for n in names if n.endswith(ISMN_SUFFIX)), True


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
    ISMN's C.. range and D.. dubious flags are dropped). The daily rule and the output are
    described in :mod:`.insitu_common`.

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
    t0, t1 = time_window(start, end)
    check_depths(min_depth, max_depth)
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
    inside = np.array([in_depth(a, b, lo, hi) for a, b in zip(d_from, d_to, strict=True)])
    if not inside.any():
        depths = sorted(
            set(zip(d_from.tolist(), d_to.tolist(), strict=True)), key=lambda d: d[::-1]
        )
        raise ReaderError(
            path,
            f"no {variable} sensor of network {network!r} lies within {lo:g}..{hi:g} m; sensor "
            f"depths present: {', '.join(fmt_depth(a, b) for a, b in depths)}",
        )
    rows = rows[inside]

    seen_flags: Counter = Counter()
    n_good = 0
    stations: list[Station] = []
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
            Station(
                name=name,
                lat=float(md.at[first, ("latitude", "val")]),
                lon=float(md.at[first, ("longitude", "val")]),
                depth=max(depths),
                network=network,
                daily=combine_sensors(parts),
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
            f"{fmt_window(t0, t1)} (or all outside {VALID_RANGE[0]}..{VALID_RANGE[1]} m³/m³)",
        )
    attrs = {
        "long_name": f"in-situ {variable.replace('_', ' ')}, daily mean over UTC days",
        "source": f"ISMN {path.name}, network {network}",
        "flags_kept": ",".join(flags),
        "depth_range_m": f"{lo:g}..{hi:g}",
    }
    return assemble(stations, t0, t1, attrs), report
