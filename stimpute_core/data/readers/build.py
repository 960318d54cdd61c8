"""Build one contract Dataset from real files, following a small TOML recipe.

The recipe's format, and the checks of its keys, values and paths, are in :mod:`.recipe`: the
region, the period, and where each piece comes from (``[smap]`` granules, required; ``[sm_36km]``,
``[daymet]``, ``[static]`` rasters and ``[insitu]`` stations, optional). Every bad file is
skipped and listed in the returned :class:`LoadReport`; the finished Dataset is checked against
the contract before it is returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from ..contract import validate
from ..grid import box_for_region
from ..selection import parse_region
from .recipe import expand_paths, inside, load_recipe
from .report import LoadReport, ReaderError


def _read_stations(path: Path, start: str, end: str) -> tuple[xr.Dataset, LoadReport]:
    """A station file as ``stimpute data insitu`` writes it, cut to ``start..end``."""
    try:
        with xr.open_dataset(path, engine="h5netcdf") as handle:
            stations = handle.sel(time=slice(start, end)).load()
    except (OSError, ValueError, KeyError) as err:
        raise ReaderError(
            path, "cannot be read as a station NetCDF (`stimpute data insitu`)"
        ) from err
    report = LoadReport()
    report.add_read(path)
    return stations, report


def build_from_recipe(
    path: str | os.PathLike,
    *,
    progress: Callable[[str], None] | None = None,
    root: str | os.PathLike | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Read every piece a recipe names and merge it into one contract Dataset.

    ``root``: the data folder the recipe was taken from; every file it names must lie inside
    (module docstring). The cube's memory is checked before anything is read
    (:func:`.smap_common.check_cube_memory`).
    """
    from .daymet import read_daymet
    from .insitu_csv import read_insitu_csv
    from .ismn import read_ismn
    from .rasters import read_static_covariates
    from .smap_common import check_cube_memory, period_days
    from .spl2smap_s import read_smap_cube
    from .spl3smp import read_sm_36km
    from .stations import attach_stations

    path = Path(path)
    root = Path(os.path.realpath(root)) if root is not None else None
    if root is not None and not inside(root, path):
        raise ReaderError(path, "the recipe lies outside the data folder")
    recipe = load_recipe(path)
    report_msg = progress or (lambda _msg: None)
    report = LoadReport()
    region = recipe["region"]
    box = box_for_region(*parse_region(region))
    start, end = recipe["start"], recipe["end"]
    arrays = 1 + ("sm_36km" in recipe) + 5 * ("daymet" in recipe)  # float32 (time, y, x) each
    check_cube_memory(
        len(period_days(start, end)),
        box.nrows,
        box.ncols,
        4 * arrays + 2,  # and the uint16 count while the granules are read
        what=f"the Dataset of {path.name}",
        advice="give the recipe a smaller region or a shorter period (several Datasets can be "
        "built one after the other)",
    )

    def files(where: str, specs: list[str], kind: str) -> list[Path]:
        return expand_paths(path, where, specs, kind, root)

    def merge(part: LoadReport) -> None:
        report.read += part.read
        report.skipped += part.skipped

    smap = recipe["smap"]
    report_msg("SMAP/Sentinel-1 granules")
    ds, part = read_smap_cube(
        files("[smap] granules", smap["granules"], "granules"),
        region=region,
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
            files("[sm_36km] files", sec["files"], "granules"),
            ds,
            start,
            end,
            quality=sec.get("quality", "recommended"),
            overpass=sec.get("overpass", "AM"),
        )
        merge(part)
        ds["sm_36km"] = sm36

    if "daymet" in recipe:
        report_msg("Daymet weather")
        sec = recipe["daymet"]
        weather, part = read_daymet(
            files("[daymet] files", sec["files"], "netcdf"), ds, start=start, end=end
        )
        merge(part)
        for name in weather.data_vars:
            ds[name] = weather[name]

    if "static" in recipe:
        report_msg("static rasters")
        spec = recipe["static"]
        rasters = {n: files(f"[static] {n}", [s["path"]], "file")[0] for n, s in spec.items()}
        scales = {
            n: {"scale": s["scale"], "units": s["units"]}
            for n, s in spec.items()
            if s["scale"] is not None or s["units"] is not None
        }
        static = read_static_covariates(rasters, ds, **({"scales": scales} if scales else {}))
        for name in static.data_vars:
            ds[name] = static[name]

    if "insitu" in recipe:
        report_msg("in-situ stations")
        sec = recipe["insitu"]
        depth = {"min_depth": sec.get("min_depth", 0.0), "max_depth": sec.get("max_depth", 0.05)}
        key = next(k for k in ("ismn", "csv", "stations") if k in sec)
        source = files(f"[insitu] {key}", [sec[key]], "any" if key == "ismn" else "file")[0]
        if key == "ismn":
            stations, part = read_ismn(
                source, network=sec.get("network", "TxSON"), start=start, end=end, **depth
            )
        elif key == "csv":
            stations, part = read_insitu_csv(source, start=start, end=end, **depth)
        else:
            stations, part = _read_stations(source, start, end)
        merge(part)
        try:
            ds = attach_stations(ds, stations)
        except ValueError as err:
            raise ReaderError(source, str(err)) from err

    ds.attrs.update(source=f"built from {path.name}", crs="EPSG:6933")
    validate(ds, source=str(path))
    return ds, report


__all__ = ["build_from_recipe", "load_recipe"]
