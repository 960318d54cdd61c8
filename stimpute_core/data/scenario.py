"""The built-in synthetic TxSON scenario: a realistic soil-moisture cube with known truth.

The real SMAP/Sentinel-1 granules and TxSON records cannot be downloaded everywhere, so the app,
notebooks and tests run by default on this scenario, generated from a process, not noise (see
:mod:`.scenario_processes`, observed as :mod:`.scenario_observations` describes) on the TxSON 36 km EASE-Grid 2.0 cell. This module holds its
configuration, :func:`make_scenario` and the NetCDF cache (:func:`load_scenario`, written
atomically). One seeded generator draws everything, so a configuration always yields the same
Dataset.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .cache import default_cache_dir  # also imported from here (app, benchmarks)
from .contract import IGBP_CLASSES, validate
from .grid import EASE2_CRS, TXSON_BOX, GridBox, grid_coords
from .io import open_dataset, write_netcdf
from .scenario_observations import (
    S1B_PERIOD,
    SMAP_OUTAGE,
    _observation_mask,
    _retrieve,
    _sm_36km,
    _stations,
)
from .scenario_processes import (
    LAND_COVER_CODES,
    MONTHLY_PRCP_MM,
    _precipitation,
    _static_layers,
    _water_balance,
    _weather,
)

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "GENERATOR_VERSION",
    "LAND_COVER_CODES",
    "MONTHLY_PRCP_MM",
    "S1B_PERIOD",
    "SMAP_OUTAGE",
    "ScenarioConfig",
    "default_cache_dir",
    "load_scenario",
    "make_scenario",
    "scenario_path",
]

#: Bump when the generator changes so stale caches are not reused.
GENERATOR_VERSION = 1

DEFAULT_START = "2016-01-01"
DEFAULT_END = "2022-12-31"


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything that defines a scenario. Defaults give the paper's 2016-2022 TxSON setting."""

    seed: int = 0
    start: str = DEFAULT_START
    end: str = DEFAULT_END
    box: GridBox = TXSON_BOX
    n_stations: int = 40
    retrieval_noise: float = 0.035
    #: Probability that a primary-track Sentinel-1 pass yields a SMAP/Sentinel-1 product.
    pass_availability: float = 0.55

    def key(self) -> str:
        """Short stable hash of the configuration, used in cache file names."""
        text = repr(sorted(asdict(self).items())) + f"v{GENERATOR_VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


GRID3 = ("time", "y", "x")
#: Units and long names of the scenario's grid variables (shared with the regional scenario).
VARIABLES = {
    name: {"units": units, "long_name": long_name}
    for name, units, long_name in (
        ("soil_moisture", "m3/m3", "retrieved 1 km soil moisture (0-5 cm)"),
        ("soil_moisture_true", "m3/m3", "true 0-5 cm soil moisture (synthetic)"),
        ("prcp", "mm/day", "daily total precipitation"),
        ("tmax", "degrees C", "daily maximum 2 m air temperature"),
        ("tmin", "degrees C", "daily minimum 2 m air temperature"),
        ("srad", "W/m2", "daylight-average shortwave radiation"),
        ("vp", "Pa", "daily average water vapour pressure"),
        ("sm_36km", "m3/m3", "SMAP L3 36 km soil moisture (coarse)"),
        ("elevation", "m", "elevation"),
        ("slope", "degrees", "terrain slope"),
        ("aspect", "degrees", "terrain aspect (clockwise from north)"),
        ("clay", "%", "clay fraction 0-5 cm"),
        ("sand", "%", "sand fraction 0-5 cm"),
        ("bulk_density", "g/cm3", "bulk density 0-5 cm"),
        ("soc", "g/kg", "soil organic carbon 0-5 cm"),
    )
}
#: The static float layers, in the order they are written.
STATIC = ("elevation", "slope", "aspect", "clay", "sand", "bulk_density", "soc")


def land_cover_variable(land_cover: np.ndarray) -> tuple:
    """The ``land_cover`` variable (IGBP codes with their flag meanings) of a scenario."""
    classes = {c: IGBP_CLASSES[c] for c in LAND_COVER_CODES}
    return (
        ("y", "x"),
        land_cover.astype(np.int16),
        {
            "long_name": "IGBP land cover (MODIS MCD12Q1 LC_Type1)",
            "flag_values": np.array(list(classes), dtype=np.int16),
            "flag_meanings": " ".join(classes.values()),
        },
    )


def make_scenario(
    cfg: ScenarioConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> xr.Dataset:
    """Generate the synthetic TxSON scenario for ``cfg`` (defaults: seed 0, 2016-2022)."""
    cfg = cfg or ScenarioConfig()
    report = progress or (lambda _msg: None)
    times = pd.date_range(cfg.start, cfg.end, freq="D")
    if len(times) == 0:
        raise ValueError(f"scenario period {cfg.start}..{cfg.end} is empty: end is before start")
    rng = np.random.default_rng(cfg.seed)
    x, y = cfg.box.coords()
    ny, nx = len(y), len(x)
    report("static layers")
    static = _static_layers(rng, ny, nx)
    report("weather")
    prcp = _precipitation(rng, times, ny, nx)
    weather = _weather(rng, times, prcp, static)
    report("water balance")
    truth = _water_balance(rng, prcp, weather, static)
    report("observations")
    obs_mask = _observation_mask(rng, times, static, cfg.pass_availability)
    soil_moisture = _retrieve(rng, truth, obs_mask, cfg.retrieval_noise)
    sm36 = _sm_36km(rng, times, truth)
    report("stations")
    st = _stations(rng, times, truth, x, y, cfg.n_stations)

    fields = {
        "soil_moisture": soil_moisture, "soil_moisture_true": truth, "prcp": prcp,
        "tmax": weather["tmax"], "tmin": weather["tmin"], "srad": weather["srad"],
        "vp": weather["vp"], "sm_36km": sm36,
    }  # fmt: skip
    ds = xr.Dataset(
        {
            **{
                n: (GRID3, np.asarray(v, np.float32), dict(VARIABLES[n])) for n, v in fields.items()
            },
            **{
                n: (("y", "x"), np.asarray(static[n], np.float32), dict(VARIABLES[n]))
                for n in STATIC
            },
            "land_cover": land_cover_variable(static["land_cover"]),
            "insitu": (
                ("station", "time"),
                st["insitu"],
                {"units": "m3/m3", "long_name": "in-situ soil moisture at 5 cm, daily mean"},
            ),
        },
        coords={
            "time": times,
            **grid_coords(cfg.box),
            "station": ("station", st["station"]),
            "station_lat": ("station", st["station_lat"], {"units": "degrees_north"}),
            "station_lon": ("station", st["station_lon"], {"units": "degrees_east"}),
            "station_depth": ("station", np.full(cfg.n_stations, 0.05), {"units": "m"}),
            "station_nest": ("station", st["station_nest"], {"long_name": "TxSON nesting level"}),
        },
        attrs={
            "title": "stimpute built-in synthetic TxSON scenario",
            "crs": EASE2_CRS,
            "source": "synthetic (stimpute_core.data.scenario)",
            "scenario_seed": cfg.seed,
            "scenario_key": cfg.key(),
            "generator_version": GENERATOR_VERSION,
        },
    )
    validate(ds, source="built-in scenario")
    return ds


def scenario_path(cfg: ScenarioConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`load_scenario` caches ``cfg``."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"txson_{cfg.start}_{cfg.end}_seed{cfg.seed}_{cfg.key()}.nc"


def load_scenario(
    cfg: ScenarioConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> xr.Dataset:
    """The scenario for ``cfg``, from the cache when present, else generated and cached.

    The cache file is written atomically, so an interrupted run never leaves a half file. A cache
    file that cannot be read (truncated by a crash of another tool, say) is regenerated.
    """
    cfg = cfg or ScenarioConfig()
    path = scenario_path(cfg, cache_dir)
    if path.is_file():
        try:
            return open_dataset(path)
        except (OSError, ValueError):
            if progress:
                progress(f"cache file {path.name} unreadable; regenerating")
    ds = make_scenario(cfg, progress=progress)
    write_netcdf(ds, path)
    return ds
