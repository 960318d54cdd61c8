"""What a data directory offers, and loading one entry of it into the current contract Dataset.

The web app lets a user pick data from one folder configured on the server, never from a path
typed in the browser. This module lists that folder's entries by kind and loads one by name,
refusing any name that does not resolve to an entry inside the folder:

- ``contract``: a contract NetCDF file (``*.nc``), opened and validated; it replaces the data;
- ``recipe``: a build recipe (``*.toml``, see :mod:`.readers.recipe`); the built Dataset replaces
  the data. Every file it names must lie inside the data folder, links followed;
- ``granules``: a folder holding SPL2SMAP_S granules (:func:`.readers.formats.granule_files`:
  ``.h5``/``.he5``/``.hdf5``, or HDF5 content such as Harmony's ``.nc4`` subsets); they
  replace the observations (``soil_moisture``) of the current Dataset on its grid and days,
  keeping its covariates, so the real overpasses can be studied with the scenario's (or a
  recipe's) covariates;
- ``ismn`` (a ``*.zip`` archive or a folder holding ``*.stm`` files) and ``csv`` (a TxSON-style
  in-situ CSV): stations, which replace the current Dataset's stations.

What kind an entry is, and so which reader reads it, is decided by
:func:`.readers.formats.path_kind`, the same rule the recipe and the CLI's readers follow. A
folder entry whose files (at any depth) link outside the data folder is refused: the browser
must reach no file outside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .contract import TARGET, validate
from .io import open_dataset
from .readers.formats import KINDS, granule_files, path_kind
from .readers.report import LoadReport, ReaderError
from .selection import data_extent


@dataclass(frozen=True)
class Source:
    """One loadable entry of a data directory: its name relative to the folder, and its kind."""

    name: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind})"


def list_sources(root: str | os.PathLike) -> list[Source]:
    """Loadable entries directly inside ``root``, sorted by name; an absent folder offers none."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.is_symlink():
            continue
        kind = path_kind(path)
        if kind:
            out.append(Source(path.name, kind))
    return out


def resolve_source(root: str | os.PathLike, name: str) -> tuple[Path, str]:
    """The path and kind of entry ``name`` of ``root``; refuses anything outside the folder."""
    root = Path(root).resolve()
    if not name or os.sep in name or (os.altsep and os.altsep in name) or name in (".", ".."):
        raise ValueError(f"data source {name!r}: expected the name of an entry of the data folder")
    path = (root / name).resolve()
    if path.parent != root:
        raise ValueError(f"data source {name!r} is not inside the data folder")
    kind = path_kind(path)
    if kind is None:
        known = ", ".join(s.name for s in list_sources(root)) or "none"
        raise ValueError(
            f"data source {name!r} is not a loadable entry of the data folder ({known})"
        )
    return path, kind


def _inside_folder(root: Path, path: Path, name: str) -> None:
    """Refuse entry ``name`` when ``path`` (a folder: anything in it) leads outside ``root``."""
    walk = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in walk:
        if not Path(os.path.realpath(item)).is_relative_to(root):
            raise ValueError(
                f"data source {name!r}: {item.relative_to(root)} links outside the data folder"
            )


def replace_observations(ds: xr.Dataset, cube: xr.Dataset) -> xr.Dataset:
    """``ds`` with ``soil_moisture`` taken from ``cube`` on ``ds``'s grid and days (NaN elsewhere).

    The two must share the grid: cell centres are matched exactly; raises ``ValueError`` when no
    cell or no day is shared.
    """
    obs = cube[TARGET]
    shared_x = np.intersect1d(ds["x"].values, obs["x"].values)
    shared_y = np.intersect1d(ds["y"].values, obs["y"].values)
    shared_t = np.intersect1d(ds["time"].values, obs["time"].values)
    if not (shared_x.size and shared_y.size):
        raise ValueError("the granules' cells share no cell centre with the current data's grid")
    if not shared_t.size:
        raise ValueError("the granules' days share no day with the current data's period")
    values = obs.reindex(time=ds["time"].values, y=ds["y"].values, x=ds["x"].values)
    out = ds.copy()
    out[TARGET] = ds[TARGET].copy(data=values.values.astype(ds[TARGET].dtype))
    return out


def _padded_extent(ds: xr.Dataset) -> list[float]:
    """The extent of ``ds``'s cell centres grown by a quarter cell, so edge cells stay inside."""
    west, south, east, north = data_extent(ds)
    lon, lat = ds["lon"].values, ds["lat"].values
    dlon = abs(float(lon[0, 1] - lon[0, 0])) / 4 if lon.shape[1] > 1 else 0.0025
    dlat = abs(float(lat[1, 0] - lat[0, 0])) / 4 if lat.shape[0] > 1 else 0.0025
    return [west - dlon, south - dlat, east + dlon, north + dlat]


def load_source(
    current: xr.Dataset,
    root: str | os.PathLike,
    name: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Load entry ``name`` of data folder ``root`` into a new contract Dataset (see module doc).

    ``current`` is left untouched; the result is validated against the contract.
    """
    from .readers.build import build_from_recipe
    from .readers.insitu_csv import read_insitu_csv
    from .readers.ismn import read_ismn
    from .readers.spl2smap_s import read_smap_cube
    from .readers.stations import attach_stations

    say = progress or (lambda _m: None)
    path, kind = resolve_source(root, name)
    root = Path(root).resolve()
    _inside_folder(root, path, name)
    report = LoadReport()
    t = pd.DatetimeIndex(current["time"].values)
    start, end = f"{t[0]:%Y-%m-%d}", f"{t[-1]:%Y-%m-%d}"
    if kind == "contract":
        say(f"opening {name}")
        ds = open_dataset(path)
        report.add_read(path.name)
    elif kind == "recipe":
        say(f"building from {name}")
        ds, report = build_from_recipe(path, progress=say, root=root)
    elif kind == "granules":
        say(f"reading granules in {name}")
        # The folder's granules, the same files the CLI's reader takes of it.
        files = granule_files(path)
        cube, report = read_smap_cube(files, region=_padded_extent(current), start=start, end=end)
        ds = replace_observations(current, cube)
        ds.attrs["observations"] = f"SPL2SMAP_S granules from {name}"
    else:
        say(f"reading stations in {name}")
        if kind == "ismn":
            stations, report = read_ismn(path, start=start, end=end)
        else:
            stations, report = read_insitu_csv(path, start=start, end=end)
        ds = attach_stations(current.drop_dims("station", errors="ignore"), stations)
    try:
        validate(ds, source=name)
    except ValueError as err:
        raise ReaderError(name, str(err)) from err
    return ds, report


__all__ = [
    "KINDS",
    "Source",
    "list_sources",
    "load_source",
    "replace_observations",
    "resolve_source",
]
