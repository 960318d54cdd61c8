"""The build recipe: its TOML format, the checks of every key and value, and the paths it names.

A recipe names the region, the period and where each piece comes from; paths are relative to the
recipe's folder and may be globs. Only ``[smap]`` is required::

    region = "txson"                 # a named region or [W, S, E, N] in degrees
    start = "2016-01-01"
    end = "2022-12-31"

    [smap]                           # SPL2SMAP_S granules -> soil_moisture
    granules = "granules/"           # a folder of granules (.formats), or a list of files/globs
    resolution = "1km"               # or "3km"
    quality = "recommended"          # or "all"

    [sm_36km]                        # SPL3SMP daily 36 km files -> sm_36km
    files = "spl3smp/"
    overpass = "AM"                  # "AM", "PM" or "both"

    [daymet]                         # Daymet daily NetCDF -> prcp, tmax, tmin, srad, vp
    files = ["daymet/*.nc"]

    [static]                         # rasters (GeoTIFF or NetCDF) -> static covariates
    elevation = "rasters/dem.tif"    # slope and aspect are derived when not given
    clay = { path = "rasters/clay.tif", scale = 0.1, units = "%" }   # SoilGrids g/kg -> %
    sand = "rasters/sand.tif"
    bulk_density = "rasters/bdod.tif"
    soc = "rasters/soc.tif"
    land_cover = "rasters/mcd12q1_lc_type1.tif"

    [insitu]                         # stations -> insitu(station, time)
    ismn = "Data_separate_files_header_20160101_20221231.zip"   # or: csv = "txson.csv"
    network = "TxSON"                # or: stations = "stations.nc" (from `stimpute data insitu`)
    max_depth = 0.05

Checks (every problem raises :class:`ReaderError` naming the recipe, the key and the value):

- Unknown keys are refused in every section, with the allowed ones listed, so a misspelt key
  (``qualty``) is never silently ignored; a value of the wrong type (``granules = 5``,
  ``max_depth = "deep"``) is refused with the type expected. Dates may be TOML dates or strings.
- ``[static]`` keys are covariate names: the contract's (``elevation``, ``clay``, ...,
  ``land_cover``) or any other name, taken as an extra covariate, unless it is close to a known
  one (``elevaton``: refused as a likely typo) or names another variable (``soil_moisture``). A
  value is a path, or a table ``{ path = ..., scale = ..., units = ... }``: ``scale`` (a positive
  factor) multiplies the raster's values and ``units`` names the result (SoilGrids stores clay in
  g/kg: ``scale = 0.1, units = "%"``). Land cover holds class codes: no scale nor units.
- Paths are relative to the recipe's folder. From the command line they may leave it (``..``,
  absolute paths): the recipe is the user's own, run with the user's rights. Read from the app's
  data folder (``root``), every path, after following links, must stay inside that folder, since
  the browser must reach no other file. A path or glob naming nothing is an error (a typo must not
  become an empty cube); a folder must hold files of its kind.

:func:`.build.build_from_recipe` reads what a checked recipe names.
"""

from __future__ import annotations

import datetime as dt
import difflib
import glob
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import (
    DYNAMIC_COVARIATES,
    INSITU,
    LAND_COVER,
    STATIC_COVARIATES,
    STATIC_RANGES,
    TARGET,
    TRUTH,
)
from ..selection import REGIONS, parse_region
from .formats import NETCDF_SUFFIXES, files_in, granule_files, no_granule_problem
from .report import ReaderError

_TOP = ("region", "start", "end")
#: Keys allowed in each section; :data:`_REQUIRED` names the one a section must give.
_KEYS = {
    "smap": ("granules", "resolution", "quality"),
    "sm_36km": ("files", "overpass", "quality"),
    "daymet": ("files",),
    "insitu": ("ismn", "csv", "stations", "network", "min_depth", "max_depth"),
}
_REQUIRED = {"smap": "granules", "sm_36km": "files", "daymet": "files"}
_STATIC_KEYS = ("path", "scale", "units")
_KNOWN_STATIC = (*dict.fromkeys((*STATIC_COVARIATES, *STATIC_RANGES)), LAND_COVER)
_TAKEN = {TARGET, TRUTH, INSITU, *DYNAMIC_COVARIATES, "time", "x", "y", "lat", "lon"}


def _show(value: Any) -> str:
    """A recipe value as the user wrote it (TOML-like: strings quoted)."""
    return json.dumps(value, default=str)


class _Checker:
    """Type checks of recipe values; each failure is a :class:`ReaderError` on the recipe."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, value: Any, expected: str) -> None:
        raise ReaderError(self.path, f"{where} = {_show(value)}: expected {expected}")

    def keys(self, where: str, table: Any, allowed: tuple[str, ...]) -> dict:
        if not isinstance(table, dict):
            self.fail(where, table, f"a table (a [{where}] section) with keys {', '.join(allowed)}")
        unknown = [k for k in table if k not in allowed]
        if unknown:
            raise ReaderError(
                self.path,
                f"[{where}]: unknown key(s) {', '.join(unknown)}: allowed are {', '.join(allowed)}",
            )
        return table

    def text(self, where: str, value: Any) -> str:
        if not (isinstance(value, str) and value.strip()):
            self.fail(where, value, "a non-empty string")
        return value

    def paths(self, where: str, value: Any) -> list[str]:
        if isinstance(value, str) and value.strip():
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return list(value)
        return self.fail(where, value, "a path (a string) or a list of paths")

    def number(self, where: str, value: Any, *, positive: bool = False) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
        if not ok:
            self.fail(where, value, "a positive number" if positive else "a number >= 0")
        return float(value)

    def choice(self, where: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.fail(where, value, "one of " + ", ".join(_show(a) for a in allowed))
        return value

    def date(self, where: str, value: Any) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()[:10]
        try:
            return f"{pd.Timestamp(self.text(where, value)):%Y-%m-%d}"
        except ValueError:
            return self.fail(where, value, "an ISO date YYYY-MM-DD")

    def region(self, value: Any) -> str | list[float]:
        expected = f"a named region ({', '.join(REGIONS)}) or [W, S, E, N] in degrees"
        if isinstance(value, list):
            if len(value) != 4 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            ):
                self.fail("region", value, expected)
            value = [float(v) for v in value]
        elif not isinstance(value, str):
            self.fail("region", value, expected)
        try:
            parse_region(value)
        except ValueError as err:
            raise ReaderError(self.path, f"region = {_show(value)}: {err}") from err
        return value

    def static(self, name: str, value: Any) -> dict[str, Any]:
        """One ``[static]`` entry as ``{"path", "scale", "units"}`` (module docstring)."""
        where = f"[static] {name}"
        if name in _TAKEN:
            raise ReaderError(self.path, f"{where}: '{name}' is not a static covariate name")
        if name not in _KNOWN_STATIC:
            close = difflib.get_close_matches(name, _KNOWN_STATIC, n=1, cutoff=0.75)
            if close:
                raise ReaderError(
                    self.path,
                    f"{where}: unknown covariate name; did you mean {close[0]}? "
                    f"(known: {', '.join(_KNOWN_STATIC)}; other names are extra covariates)",
                )
        if isinstance(value, str):
            return {"path": self.text(where, value), "scale": None, "units": None}
        table = self.keys(f"static.{name}", value, _STATIC_KEYS)
        if "path" not in table:
            self.fail(where, value, '{ path = "...", scale = <number>, units = "..." }')
        out = {"path": self.text(f"{where}.path", table["path"]), "scale": None, "units": None}
        if "scale" in table:
            out["scale"] = self.number(f"{where}.scale", table["scale"], positive=True)
        if "units" in table:
            out["units"] = self.text(f"{where}.units", table["units"])
        if name == LAND_COVER and (out["scale"] is not None or out["units"] is not None):
            raise ReaderError(self.path, f"{where}: land cover holds class codes: no scale/units")
        return out


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a recipe file (module docstring); raise :class:`ReaderError` naming the
    problem. Returns the recipe with checked values: dates as ``YYYY-MM-DD``, path entries as
    lists, ``[static]`` entries as ``{"path", "scale", "units"}`` and defaults filled in."""
    from .smap_common import QUALITIES
    from .spl2smap_s import RESOLUTIONS
    from .spl3smp import OVERPASSES

    path = Path(path)
    try:
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ReaderError(path, "no such recipe file") from err
    except IsADirectoryError as err:
        raise ReaderError(path, "is a folder: expected a TOML recipe file") from err
    except UnicodeDecodeError as err:
        raise ReaderError(path, "is not a text file: expected a TOML recipe") from err
    except tomllib.TOMLDecodeError as err:
        raise ReaderError(path, f"not valid TOML ({err})") from err
    check = _Checker(path)
    allowed = (*_TOP, *_KEYS, "static")
    unknown = [k for k in recipe if k not in allowed]
    if unknown:
        raise ReaderError(
            path, f"unknown key(s) {', '.join(unknown)}: expected {', '.join(sorted(allowed))}"
        )
    for key in ("start", "end"):
        if key not in recipe:
            raise ReaderError(path, f"'{key}' is missing: give the period as ISO dates")
        recipe[key] = check.date(key, recipe[key])
    if recipe["end"] < recipe["start"]:
        raise ReaderError(path, f"end = {recipe['end']} is before start = {recipe['start']}")
    recipe["region"] = check.region(recipe.get("region", "txson"))
    if "smap" not in recipe:
        raise ReaderError(path, "section [smap] with 'granules' is missing")
    choices = {"resolution": tuple(RESOLUTIONS), "quality": QUALITIES, "overpass": OVERPASSES}
    for name, keys in _KEYS.items():
        if name not in recipe:
            continue
        sec = check.keys(name, recipe[name], keys)
        if name in _REQUIRED and _REQUIRED[name] not in sec:
            raise ReaderError(path, f"[{name}]: '{_REQUIRED[name]}' is missing")
        for key, value in sec.items():
            where = f"[{name}] {key}"
            if key in ("granules", "files"):
                sec[key] = check.paths(where, value)
            elif key in choices:
                sec[key] = check.choice(where, value, choices[key])
            elif key.endswith("_depth"):
                sec[key] = check.number(where, value)
            else:
                sec[key] = check.text(where, value)
    if "insitu" in recipe:
        _check_insitu(path, recipe["insitu"])
    if "static" in recipe:
        table = recipe["static"]
        if not isinstance(table, dict):
            check.fail("static", table, 'a table ([static] with name = "path" entries)')
        recipe["static"] = {name: check.static(name, v) for name, v in table.items()}
    return recipe


def _check_insitu(path: Path, sec: dict[str, Any]) -> None:
    """Exactly one station source; depth and network only where they apply."""
    given = [k for k in ("ismn", "csv", "stations") if k in sec]
    if len(given) != 1:
        raise ReaderError(path, "section [insitu] needs one of 'ismn', 'csv' or 'stations'")
    if given == ["stations"] and (extra := [k for k in sec if k != "stations"]):
        raise ReaderError(
            path,
            f"[insitu] {', '.join(extra)}: apply to ismn/csv only (a station file's stations "
            "and depths were chosen when it was written)",
        )
    if sec.get("min_depth", 0.0) > sec.get("max_depth", 0.05):
        raise ReaderError(path, "[insitu] min_depth is above max_depth")


def inside(root: Path, target: Path) -> bool:
    """Whether ``target``, links followed, lies in the (resolved) folder ``root``."""
    return Path(os.path.realpath(target)).is_relative_to(root)


def expand_paths(
    recipe: Path, where: str, specs: list[str], kind: str, root: Path | None = None
) -> list[Path]:
    """Files named by ``specs`` (paths, folders or globs, relative to the recipe's folder).

    ``kind``: ``granules`` (a folder gives its granules), ``netcdf`` (its NetCDF files),
    ``file`` (one file, no folder) or ``any`` (a file or a folder, as it is). Raises :class:`ReaderError` when a path names
    nothing, a folder holds nothing of its kind, or (with ``root``) a file lies outside ``root``.
    """
    base = recipe.parent
    out: list[Path] = []
    for item in specs:
        full = base / item
        if any(ch in item for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(str(full)))
            if not found:
                raise ReaderError(recipe, f"{where} = {_show(item)} matches no file")
        elif not full.exists():
            raise ReaderError(recipe, f"{where} = {_show(item)}: no such file or folder")
        elif full.is_dir() and kind == "granules":
            found = granule_files(full)
            if not found:
                raise ReaderError(recipe, f"{where} = {_show(item)}: {no_granule_problem(full)}")
        elif full.is_dir() and kind == "netcdf":
            found = files_in(full, NETCDF_SUFFIXES)
            if not found:
                raise ReaderError(recipe, f"{where} = {_show(item)}: the folder holds no NetCDF")
        elif full.is_dir() and kind == "file":
            raise ReaderError(recipe, f"{where} = {_show(item)} is a folder: expected a file")
        else:
            found = [full]
        if root is not None:
            walk = [full, *found] + [p for f in found if f.is_dir() for p in f.rglob("*")]
            if not all(inside(root, p) for p in walk):
                raise ReaderError(
                    recipe,
                    f"{where} = {_show(item)} leads outside the data folder: a recipe read from "
                    "the data folder may only name files inside it",
                )
        out += found
    return out


__all__ = ["expand_paths", "inside", "load_recipe"]
