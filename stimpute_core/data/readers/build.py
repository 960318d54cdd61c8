"""Build one contract Dataset from real files, following a small TOML recipe.

A recipe names the region, the period and where each piece comes from; paths are relative to the
recipe's folder and may be globs. Only ``[smap]`` is required::

    region = "txson"                 # a named region or [W, S, E, N] in degrees
    start = "2016-01-01"
    end = "2022-12-31"

    [smap]                           # SPL2SMAP_S granules -> soil_moisture
    granules = "granules/"           # a folder of .h5/.he5/.hdf5 files, or a list of files/globs
    resolution = "1km"               # or "3km"
    quality = "recommended"          # or "all"

    [sm_36km]                        # SPL3SMP daily 36 km files -> sm_36km
    files = "spl3smp/"
    overpass = "AM"                  # "AM", "PM" or "both"

    [daymet]                         # Daymet daily NetCDF -> prcp, tmax, tmin, srad, vp
    files = ["daymet/*.nc"]

    [static]                         # rasters (GeoTIFF or NetCDF) -> static covariates
    elevation = "rasters/dem.tif"    # slope and aspect are derived when not given
    clay = "rasters/clay.tif"
    sand = "rasters/sand.tif"
    bulk_density = "rasters/bdod.tif"
    soc = "rasters/soc.tif"
    land_cover = "rasters/mcd12q1_lc_type1.tif"

    [insitu]                         # stations -> insitu(station, time)
    ismn = "Data_separate_files_header_20160101_20221231.zip"   # or: csv = "txson.csv"
    network = "TxSON"
    max_depth = 0.05

Every bad file is skipped and listed in the returned :class:`LoadReport`; the finished Dataset is
checked against the contract before it is returned.
"""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xarray as xr

from ..contract import validate
from ..grid import box_for_region
from ..selection import parse_region
from .formats import GRANULE_SUFFIXES, NETCDF_SUFFIXES, files_in
from .report import LoadReport, ReaderError

_SECTIONS = {"region", "start", "end", "smap", "sm_36km", "daymet", "static", "insitu"}


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a recipe file; raise :class:`ReaderError` naming the problem."""
    path = Path(path)
    try:
        recipe = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise ReaderError(path, "no such recipe file") from err
    except tomllib.TOMLDecodeError as err:
        raise ReaderError(path, f"not valid TOML ({err})") from err
    unknown = sorted(set(recipe) - _SECTIONS)
    if unknown:
        raise ReaderError(
            path, f"unknown key(s) {', '.join(unknown)}: expected {', '.join(sorted(_SECTIONS))}"
        )
    for key in ("start", "end"):
        if key not in recipe:
            raise ReaderError(path, f"'{key}' is missing: give the period as ISO dates")
    if "smap" not in recipe or "granules" not in recipe["smap"]:
        raise ReaderError(path, "section [smap] with 'granules' is missing")
    recipe.setdefault("region", "txson")
    return recipe


def _expand(base: Path, spec: str | list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files named by a path, folder or glob (or a list of them), relative to ``base``.

    From a folder only files with one of ``suffixes`` are taken (:func:`.formats.files_in`).
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    out: list[Path] = []
    for item in specs:
        full = base / item
        if full.is_dir():
            out += files_in(full, suffixes)
        elif any(ch in item for ch in "*?["):
            out += sorted(Path(p) for p in glob.glob(str(full)))
        else:
            out.append(full)
    return out


def build_from_recipe(
    path: str | os.PathLike, *, progress: Callable[[str], None] | None = None
) -> tuple[xr.Dataset, LoadReport]:
    """Read every piece a recipe names and merge it into one contract Dataset."""
    from .daymet import read_daymet
    from .insitu_csv import read_insitu_csv
    from .ismn import read_ismn
    from .rasters import read_static_covariates
    from .spl2smap_s import read_smap_cube
    from .spl3smp import read_sm_36km
    from .stations import attach_stations

    path = Path(path)
    recipe = load_recipe(path)
    base = path.parent
    report_msg = progress or (lambda _msg: None)
    report = LoadReport()
    region = recipe["region"]
    box = box_for_region(*parse_region(region if isinstance(region, str) else list(region)))
    start, end = str(recipe["start"]), str(recipe["end"])

    def merge(part: LoadReport) -> None:
        report.read += part.read
        report.skipped += part.skipped

    smap = recipe["smap"]
    report_msg("SMAP/Sentinel-1 granules")
    ds, part = read_smap_cube(
        _expand(base, smap["granules"], GRANULE_SUFFIXES),
        region=region if isinstance(region, str) else list(region),
        start=start,
        end=end,
        resolution=smap.get("resolution", "1km"),
        quality=smap.get("quality", "recommended"),
    )
    merge(part)
    if (ds.sizes["y"], ds.sizes["x"]) != (box.nrows, box.ncols):
        raise ReaderError(path, f"SMAP cube grid {dict(ds.sizes)} differs from the region's grid")

    if "sm_36km" in recipe:
        report_msg("SMAP L3 36 km")
        sec = recipe["sm_36km"]
        sm36, part = read_sm_36km(
            _expand(base, sec["files"], GRANULE_SUFFIXES),
            ds,
            start,
            end,
            overpass=sec.get("overpass", "AM"),
        )
        merge(part)
        ds["sm_36km"] = sm36

    if "daymet" in recipe:
        report_msg("Daymet weather")
        sec = recipe["daymet"]
        weather, part = read_daymet(
            _expand(base, sec["files"], NETCDF_SUFFIXES), ds, start=start, end=end
        )
        merge(part)
        for name in weather.data_vars:
            ds[name] = weather[name]

    if "static" in recipe:
        report_msg("static rasters")
        files = {name: base / spec for name, spec in recipe["static"].items()}
        static = read_static_covariates(files, ds)
        for name in static.data_vars:
            ds[name] = static[name]

    if "insitu" in recipe:
        report_msg("in-situ stations")
        sec = recipe["insitu"]
        depth = {"min_depth": sec.get("min_depth", 0.0), "max_depth": sec.get("max_depth", 0.05)}
        if "ismn" in sec:
            stations, part = read_ismn(
                base / sec["ismn"],
                network=sec.get("network", "TxSON"),
                start=start,
                end=end,
                **depth,
            )
        elif "csv" in sec:
            stations, part = read_insitu_csv(base / sec["csv"], start=start, end=end, **depth)
        else:
            raise ReaderError(path, "section [insitu] needs 'ismn' or 'csv'")
        merge(part)
        ds = attach_stations(ds, stations)

    ds.attrs.update(source=f"built from {path.name}", crs="EPSG:6933")
    validate(ds, source=str(path))
    return ds, report
