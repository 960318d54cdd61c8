"""Build one contract Dataset from real files, following a small TOML recipe.

The recipe's format, and the checks of its keys, values and paths, are in :mod:`.recipe`: the
region, the period, and where each piece comes from (``[smap]`` granules, required; ``[sm_36km]``,
``[daymet]``, ``[static]`` rasters and ``[insitu]`` stations, optional). Every bad file is
skipped and listed in the returned :class:`LoadReport`; the finished Dataset is checked against
the contract before it is returned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from ..contract import TARGET, validate
from ..grid import box_for_region
from ..selection import parse_region
from ..zarr_io import open_zarr
from ..zarr_stream import DayStream, batch_days
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


#: What a streamed build holds per cell and day of a batch at most: a Daymet piece sampled in
#: float64 with its float32 block, more than the granule loops' float32 sum and uint16 count.
STREAM_BYTES_PER_CELL_DAY = 16


def build_from_recipe(
    path: str | os.PathLike,
    *,
    progress: Callable[[str], None] | None = None,
    root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    batch: int | None = None,
) -> tuple[xr.Dataset, LoadReport]:
    """Read every piece a recipe names and merge it into one contract Dataset.

    ``root``: the data folder the recipe was taken from; every file it names must lie inside
    (module docstring). The cube's memory is checked before anything is read
    (:func:`.smap_common.check_cube_memory`).

    ``out`` (a Zarr store, name ending ``.zarr``): a streamed build. ``soil_moisture``,
    ``sm_36km`` and the Daymet variables are written into a :class:`~..zarr_stream.DayStream`
    a batch of ``batch`` days at a time (default :data:`~..zarr_stream.BATCH_DAYS`, fewer on a
    large grid) and never held whole; only the static covariates ``(y, x)`` and the stations
    ``(station, time)`` are held, both small. The store equals, to the last bit, the in-memory
    build written to Zarr, and is returned opened lazily; nothing is at ``out`` unless the
    build succeeded (the memory check is then on one batch).
    """
    from .daymet import DAYMET_VARIABLES, read_daymet, stream_daymet
    from .insitu_csv import read_insitu_csv
    from .ismn import read_ismn
    from .rasters import read_static_covariates
    from .smap_common import check_cube_memory, period_days, region_grid
    from .spl2smap_s import read_smap_cube, smap_days
    from .spl3smp import read_sm_36km, sm_36km_days
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
    ndays = len(period_days(start, end))
    names = ["soil_moisture"] + ["sm_36km"] * ("sm_36km" in recipe)
    names += list(DAYMET_VARIABLES) * ("daymet" in recipe)
    if out is None:
        days, per_cell_day, what = ndays, 4 * len(names) + 2, f"the Dataset of {path.name}"
    else:
        per_cell_day = STREAM_BYTES_PER_CELL_DAY
        days = batch_days(ndays, box.nrows * box.ncols, per_cell_day, most=batch)
        what = f"one batch of the Dataset of {path.name}"
    check_cube_memory(
        days,
        box.nrows,
        box.ncols,
        per_cell_day,  # float32 (time, y, x) each and the uint16 count while granules are read
        what=what,
        advice="give the recipe a smaller region or a shorter period (several Datasets can be "
        "built one after the other)"
        + (
            ", or write a Zarr store (a name ending .zarr), built a batch of days at a time"
            if out is None
            else ""
        ),
    )

    def files(where: str, specs: list[str], kind: str) -> list[Path]:
        return expand_paths(path, where, specs, kind, root)

    def merge(part: LoadReport) -> None:
        report.read += part.read
        report.skipped += part.skipped

    with contextlib.ExitStack() as stack:
        stream = None
        if out is not None:
            grid = region_grid(region, start, end)
            stream = stack.enter_context(DayStream(out, grid, names, batch=days))

        def sink(name: str) -> Callable[[int, np.ndarray], None]:
            return lambda t0, values: stream.write(name, t0, values)

        smap = recipe["smap"]
        report_msg("SMAP/Sentinel-1 granules")
        smap_args = {
            "region": region,
            "start": start,
            "end": end,
            "resolution": smap.get("resolution", "1km"),
            "quality": smap.get("quality", "recommended"),
        }
        granules = files("[smap] granules", smap["granules"], "granules")
        if stream is None:
            ds, part = read_smap_cube(granules, **smap_args)
        else:
            sm_attrs, attrs, part = smap_days(granules, sink(TARGET), batch=days, **smap_args)
            ds = stream.dataset()[[TARGET]]
            ds[TARGET].attrs, ds.attrs = sm_attrs, attrs
        merge(part)
        if (ds.sizes["y"], ds.sizes["x"]) != (box.nrows, box.ncols):
            raise ReaderError(
                path, f"SMAP cube grid {dict(ds.sizes)} differs from the region's grid"
            )

        if "sm_36km" in recipe:
            report_msg("SMAP L3 36 km")
            sec = recipe["sm_36km"]
            l3_files = files("[sm_36km] files", sec["files"], "granules")
            l3_args = {
                "quality": sec.get("quality", "recommended"),
                "overpass": sec.get("overpass", "AM"),
            }
            if stream is None:
                sm36, part = read_sm_36km(l3_files, ds, start, end, **l3_args)
            else:
                _, sm36_attrs, part = sm_36km_days(
                    l3_files, grid, sink("sm_36km"), start, end, batch=days, **l3_args
                )
                sm36 = stream.dataset()["sm_36km"].assign_attrs(sm36_attrs)
            merge(part)
            ds["sm_36km"] = sm36

        if "daymet" in recipe:
            report_msg("Daymet weather")
            daymet_files = files("[daymet] files", recipe["daymet"]["files"], "netcdf")
            if stream is None:
                weather, part = read_daymet(daymet_files, ds, start=start, end=end)
            else:
                weather_attrs, part = stream_daymet(daymet_files, stream)
                weather = stream.dataset()[list(weather_attrs)]
                for name, var_attrs in weather_attrs.items():
                    weather[name].attrs = var_attrs
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
            depth = {
                "min_depth": sec.get("min_depth", 0.0),
                "max_depth": sec.get("max_depth", 0.05),
            }
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
        validate(ds, source=str(path))  # lazily, tile by tile, on a streamed build
        if stream is None:
            return ds, report
        report_msg("rechunking into space tiles")
        stream.commit(ds)
    return open_zarr(out, check=False), report


__all__ = ["STREAM_BYTES_PER_CELL_DAY", "build_from_recipe", "load_recipe"]
