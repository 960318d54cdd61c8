"""The data contract: one ``xarray.Dataset`` per study area that every reader, model and view speaks.

See the README section "The data contract" for the full description. In short:

- dims ``time`` (daily, midnight UTC), ``y``, ``x``; coords ``x``/``y`` are cell centres in metres of
  EASE-Grid 2.0 (EPSG:6933) unless the attribute ``crs`` says otherwise; ``lat(y, x)``/``lon(y, x)``.
- ``soil_moisture(time, y, x)`` in m³/m³, NaN where not observed: the target.
- ``soil_moisture_true(time, y, x)``: optional complete truth (synthetic data only), never a model input.
- time-varying covariates ``(time, y, x)`` and static covariates ``(y, x)``; ``land_cover(y, x)``
  holds integer IGBP codes with CF ``flag_values``/``flag_meanings``.
- optional stations: ``insitu(station, time)`` with coords ``station``, ``station_lat``,
  ``station_lon`` and ``station_depth``.
- static covariates with a known name lie within :data:`STATIC_RANGES` (contract units).
- never a variable the tool wrote as an output (:func:`is_output`): an imputation fed back as a
  covariate would show the held-out values to the models being scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

TARGET = "soil_moisture"
TRUTH = "soil_moisture_true"
INSITU = "insitu"
LAND_COVER = "land_cover"
#: Default time-varying covariates, named like the paper's sources (Daymet, SMAP L3 36 km).
DYNAMIC_COVARIATES = ("prcp", "tmax", "tmin", "srad", "vp", "sm_36km")
#: Default static covariates (land cover is separate: it is categorical).
STATIC_COVARIATES = ("elevation", "slope", "aspect", "clay", "sand", "bulk_density", "soc")
STATION_COORDS = ("station_lat", "station_lon", "station_depth")
#: Physically plausible range of volumetric soil moisture, m³/m³.
VALID_RANGE = (0.0, 0.8)
SOIL_MOISTURE_UNITS = ("m3/m3", "m3 m-3", "m^3/m^3", "cm3/cm3", "cm3 cm-3", "m³/m³")
#: Contract units and physically plausible range of the static covariates. Soil properties are
#: those of the 0-5 cm layer: bulk density of organic soils goes down to about 0.1 g/cm³ and of
#: mineral soils up to about 2 (2.65 is the density of quartz, the solid itself); organic carbon
#: cannot exceed about 600 g/kg (organic matter is about 58 % carbon); elevation spans the Dead
#: Sea shore (-430 m) to Everest (8849 m).
STATIC_RANGES: dict[str, tuple[str, float, float]] = {
    "elevation": ("m", -500.0, 9000.0),
    "slope": ("degrees", 0.0, 90.0),
    "aspect": ("degrees", 0.0, 360.0),
    "clay": ("%", 0.0, 100.0),
    "sand": ("%", 0.0, 100.0),
    "silt": ("%", 0.0, 100.0),
    "bulk_density": ("g/cm3", 0.1, 2.65),
    "soc": ("g/kg", 0.0, 600.0),
}
#: Name of the imputation the tool writes (``stimpute impute``); the app's export writes
#: ``soil_moisture_imputed_<method>``. Every name starting with it is an output.
OUTPUT_PREFIX = "soil_moisture_imputed"
#: Attribute written on every imputation (:func:`stimpute_core.models.base.as_output`): marks an
#: output whatever its variable was renamed to.
OUTPUT_ATTR = "model_settings"
#: IGBP land-cover classes (MODIS MCD12Q1 LC_Type1).
IGBP_CLASSES = {
    1: "evergreen_needleleaf_forests",
    2: "evergreen_broadleaf_forests",
    3: "deciduous_needleleaf_forests",
    4: "deciduous_broadleaf_forests",
    5: "mixed_forests",
    6: "closed_shrublands",
    7: "open_shrublands",
    8: "woody_savannas",
    9: "savannas",
    10: "grasslands",
    11: "permanent_wetlands",
    12: "croplands",
    13: "urban_and_built_up_lands",
    14: "cropland_natural_vegetation_mosaics",
    15: "permanent_snow_and_ice",
    16: "barren",
    17: "water_bodies",
}

_GRID_DIMS = {("time", "y", "x"), ("y", "x")}
_STATION_DIMS = {("station", "time"), ("station",)}
_MOISTURE_VARS = (TARGET, TRUTH, INSITU)


class ContractError(ValueError):
    """A Dataset does not follow the data contract. ``problems`` lists each problem found."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) with the data contract{where}:\n{lines}")


def is_output(name: str, var: xr.DataArray | None = None) -> bool:
    """Whether a variable is one the tool writes as an output (an imputation), never an input.

    By name (:data:`OUTPUT_PREFIX`) or by the :data:`OUTPUT_ATTR` attribute of an imputation.
    """
    return str(name).startswith(OUTPUT_PREFIX) or (var is not None and OUTPUT_ATTR in var.attrs)


def covariate_names(ds: xr.Dataset) -> tuple[list[str], list[str]]:
    """Names of the time-varying and static covariates in ``ds``, in Dataset order.

    A covariate is every grid variable other than the target, the truth, land cover and the
    tool's own outputs (:func:`is_output`: an imputation is never a covariate).
    """
    dynamic, static = [], []
    for name, var in ds.data_vars.items():
        if name in (TARGET, TRUTH, LAND_COVER) or is_output(str(name), var):
            continue
        if var.dims == ("time", "y", "x"):
            dynamic.append(str(name))
        elif var.dims == ("y", "x"):
            static.append(str(name))
    return dynamic, static


def land_cover_classes(ds: xr.Dataset) -> dict[int, str]:
    """Map of land-cover code to name from the CF ``flag_values``/``flag_meanings`` attributes."""
    lc = ds[LAND_COVER]
    values = np.atleast_1d(lc.attrs.get("flag_values", []))
    meanings = str(lc.attrs.get("flag_meanings", "")).split()
    return {int(v): m for v, m in zip(values, meanings, strict=False)}


def _check_time(ds: xr.Dataset, problems: list[str]) -> None:
    if "time" not in ds.coords:
        problems.append("coordinate 'time' is missing: expected daily datetimes at midnight UTC")
        return
    try:
        t = pd.DatetimeIndex(ds["time"].values)
    except (TypeError, ValueError):
        problems.append(f"coordinate 'time' has dtype {ds['time'].dtype}: expected datetime64")
        return
    if t.tz is not None:
        problems.append("coordinate 'time' carries a time zone: expected naive UTC datetimes")
    if t.has_duplicates:
        dups = t[t.duplicated()].unique()[:3]
        problems.append(
            "coordinate 'time' has duplicated days: "
            + ", ".join(d.strftime("%Y-%m-%d") for d in dups)
        )
    if (t != t.normalize()).any():
        bad = t[t != t.normalize()][0]
        problems.append(
            f"coordinate 'time' has {bad} which is not at midnight: expected daily values"
        )
    if len(t) > 1 and not t.has_duplicates:
        steps = np.diff(t.values).astype("timedelta64[s]").astype(np.int64)
        if (steps != 86400).any():
            i = int(np.argmax(steps != 86400))
            problems.append(
                f"coordinate 'time' is not daily and increasing: step from {t[i]:%Y-%m-%d} to "
                f"{t[i + 1]:%Y-%m-%d} (expected one day; reindex to every day with NaN for gaps)"
            )


def _check_axis(ds: xr.Dataset, name: str, problems: list[str]) -> None:
    if name not in ds.coords:
        problems.append(f"coordinate '{name}' is missing: expected cell centres in metres")
        return
    v = np.asarray(ds[name].values, dtype=float)
    if v.ndim != 1:
        problems.append(f"coordinate '{name}' has dims {ds[name].dims}: expected ('{name}',)")
        return
    if len(v) > 1:
        d = np.diff(v)
        if not (np.all(d > 0) or np.all(d < 0)):
            problems.append(f"coordinate '{name}' is not strictly monotonic")
        elif not np.allclose(d, d[0], rtol=1e-6, atol=1e-3):
            problems.append(
                f"coordinate '{name}' is not evenly spaced (steps {d.min():g}..{d.max():g})"
            )


def _check_range(name: str, var: xr.DataArray, problems: list[str]) -> None:
    if var.size == 0:
        return
    # Reductions, not .values: a Dask-backed cube (a Zarr store) is checked tile by tile.
    bounds = xr.Dataset({"lo": var.min(skipna=True), "hi": var.max(skipna=True)}).compute()
    lo, hi = float(bounds["lo"]), float(bounds["hi"])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return
    if lo < VALID_RANGE[0] or hi > VALID_RANGE[1]:
        problems.append(
            f"variable '{name}' has values {lo:.3g}..{hi:.3g}: expected volumetric soil moisture "
            f"within {VALID_RANGE[0]}..{VALID_RANGE[1]} m³/m³ (percent? divide by 100)"
        )
    units = var.attrs.get("units")
    if units is not None and str(units).strip() not in SOIL_MOISTURE_UNITS:
        problems.append(f"variable '{name}' has units '{units}': expected m3/m3")


def static_range_problem(name: str, values: np.ndarray) -> str | None:
    """Why the static covariate ``name`` is implausible (values outside :data:`STATIC_RANGES`).

    ``None`` when the values are plausible, all NaN, or ``name`` has no known range.
    """
    if name not in STATIC_RANGES:
        return None
    units, lo, hi = STATIC_RANGES[name]
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0 or (finite.min() >= lo and finite.max() <= hi):
        return None
    return (
        f"'{name}' has values {finite.min():.4g}..{finite.max():.4g}: expected {units} within "
        f"{lo:g}..{hi:g}"
    )


def _check_outputs(ds: xr.Dataset, problems: list[str]) -> None:
    for name, var in ds.data_vars.items():
        if is_output(str(name), var):
            problems.append(
                f"variable '{name}' is an imputation this tool wrote (an output, never an input: "
                "as a covariate it would leak the held-out values into the models): use the "
                f"original input file, or drop '{name}' from this one"
            )


def validate(
    ds: xr.Dataset,
    *,
    source: str | None = None,
    require_observed: bool = True,
    allow_outputs: bool = False,
) -> None:
    """Check ``ds`` against the data contract; raise :class:`ContractError` listing every problem.

    ``source`` (a file name, say) is named in the message. ``require_observed=False`` accepts a
    selection without any observed target value (useful for pure truth or covariate cubes).
    A variable the tool wrote as an output (:func:`is_output`) is refused rather than dropped,
    so a file given back as input never silently loses or reuses anything;
    ``allow_outputs=True`` accepts it, for checking a file the tool has just written.
    """
    problems: list[str] = []
    if not isinstance(ds, xr.Dataset):
        raise ContractError([f"expected an xarray.Dataset, got {type(ds).__name__}"], source)
    if not allow_outputs:
        _check_outputs(ds, problems)

    if TARGET not in ds.data_vars:
        problems.append(f"target variable '{TARGET}' is missing: expected {TARGET}(time, y, x)")
    elif ds[TARGET].dims != ("time", "y", "x"):
        problems.append(
            f"variable '{TARGET}' has dims {ds[TARGET].dims}: expected ('time', 'y', 'x')"
        )

    _check_time(ds, problems)
    _check_axis(ds, "x", problems)
    _check_axis(ds, "y", problems)
    for name in ("lat", "lon"):
        if name not in ds.coords:
            problems.append(f"coordinate '{name}' is missing: expected {name}(y, x) in degrees")
        elif ds[name].dims != ("y", "x"):
            problems.append(f"coordinate '{name}' has dims {ds[name].dims}: expected ('y', 'x')")
    if "lat" in ds.coords and np.nanmax(np.abs(ds["lat"].values)) > 90:
        problems.append("coordinate 'lat' has values beyond ±90 degrees")
    if "lon" in ds.coords and np.nanmax(np.abs(ds["lon"].values)) > 180:
        problems.append("coordinate 'lon' has values beyond ±180 degrees")

    for name, var in ds.data_vars.items():
        if var.dims in _GRID_DIMS or var.dims in _STATION_DIMS:
            continue
        problems.append(
            f"variable '{name}' has dims {var.dims}: expected (time, y, x) or (y, x) on the "
            "target grid, or (station, time); regrid covariates onto the target grid first"
        )
    for name in _MOISTURE_VARS:
        if name in ds.data_vars:
            _check_range(name, ds[name], problems)
    for name, var in ds.data_vars.items():
        if var.dims == ("y", "x") and (problem := static_range_problem(str(name), var.values)):
            problems.append(f"variable {problem} (scaled integers or other units? convert first)")

    if LAND_COVER in ds.data_vars:
        lc = ds[LAND_COVER]
        if lc.dims != ("y", "x"):
            problems.append(f"variable '{LAND_COVER}' has dims {lc.dims}: expected ('y', 'x')")
        vals = np.asarray(lc.values)
        if not np.issubdtype(vals.dtype, np.integer):
            problems.append(
                f"variable '{LAND_COVER}' has dtype {vals.dtype}: expected integer IGBP codes"
            )
        if "flag_values" not in lc.attrs or "flag_meanings" not in lc.attrs:
            problems.append(
                f"variable '{LAND_COVER}' lacks CF attributes 'flag_values'/'flag_meanings'"
            )
        else:
            known = set(np.atleast_1d(lc.attrs["flag_values"]).astype(int).tolist())
            finite = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
            present = set(np.unique(finite).astype(int).tolist()) if finite.size else set()
            unknown = sorted(present - known)
            if unknown:
                problems.append(
                    f"variable '{LAND_COVER}' has codes {unknown} not in its flag_values"
                )

    if INSITU in ds.data_vars or "station" in ds.dims:
        if INSITU not in ds.data_vars:
            problems.append(f"dimension 'station' present but variable '{INSITU}' is missing")
        elif ds[INSITU].dims != ("station", "time"):
            problems.append(
                f"variable '{INSITU}' has dims {ds[INSITU].dims}: expected ('station', 'time')"
            )
        for name in ("station", *STATION_COORDS):
            if name not in ds.coords:
                problems.append(f"station coordinate '{name}' is missing")

    if (
        require_observed
        and TARGET in ds.data_vars
        and ds[TARGET].size
        and not bool(ds[TARGET].notnull().any())
    ):
        problems.append(f"variable '{TARGET}' has no observed (non-NaN) value in this selection")
    if TARGET in ds.data_vars and ds[TARGET].size == 0:
        problems.append(f"variable '{TARGET}' is empty (a dimension has length 0)")

    if problems:
        raise ContractError(problems, source)
