"""A regional synthetic scenario larger than memory, generated tile by tile straight into Zarr.

The built-in scenario (:mod:`.scenario`) draws one 36 km box whole. This module runs the same
process (:mod:`.scenario_processes`, :mod:`.scenario_observations`) over a box of many 36 km
cells without ever holding the cube: everything that spans the region is drawn once, in
:func:`plan_region` (a few 2-D layers and the area-wide series: megabytes), and everything
per cell-day is computed one 36 km block at a time (:func:`region_block`) and written as tiles
of whole blocks finish (:func:`write_region_store`, on Dask when given a client).

Where it departs from the built-in scenario (a different generator, so the same seed gives other
values):

- storms fall anywhere in the region widened by half a block, as many per wet day as keep the
  built-in storm density (1.7 per 72 x 72 cells); every block sees the storms within six radii
  of it (beyond that a storm adds less than 1e-7 of its depth). Wet days, yearly factors and the
  monthly calibration to the climatology are region-wide; the calibration uses each storm's
  exact Gaussian mass inside the region rather than a rendered area mean;
- ``sm_36km`` is each 36 km block's own mean truth with the coarse product's bias and noise,
  as the real SPL3SMP is, rather than one value for the whole box;
- swaths cross the whole region (the pass days are region-wide) and there are no stations;
- the draws per cell-day (drop-outs, retrieval noise, the coarse noise) come from a generator
  seeded by the seed and the block's position, so the store does not depend on the tile size or
  on the order tiles are written in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from .atomic import check_creatable, replace_dir
from .contract import validate
from .grid import EASE2_CRS, TXSON_BOX, GridBox, grid_coords
from .scenario import GRID3, STATIC, VARIABLES, land_cover_variable
from .scenario_observations import (
    _coarse_available,
    _coarse_series,
    _drop_probability,
    _pass_plan,
    _render_passes,
    _retrieved,
)
from .scenario_processes import (
    _add_offset,
    _bucket,
    _monthly_factors,
    _render_storms,
    _smooth_field,
    _static_layers,
    _storms,
    _weather_fields,
    _weather_series,
)
from .tasks import run_tasks
from .zarr_io import SUFFIX, is_store

#: Cells along a side of one 36 km block (an EASE-Grid 2.0 M36 cell): the unit of generation.
BLOCK = 36
#: Storms per wet day per 72 x 72 cells (the built-in scenario's 1 + Poisson(0.7)).
STORM_DENSITY = 1.7 / (2 * BLOCK) ** 2
#: How far a storm reaches, in radii, beyond its streak.
STORM_REACH = 6.0
#: The default region: 4 x 4 blocks from the TxSON box's north-west corner.
DEFAULT_BOX = GridBox(TXSON_BOX.row0, TXSON_BOX.col0, 4 * BLOCK, 4 * BLOCK)
#: The grid variables that vary in time, in the order they are written.
FIELDS = ("soil_moisture", "soil_moisture_true", "prcp", "tmax", "tmin", "srad", "vp", "sm_36km")


@dataclass(frozen=True)
class RegionConfig:
    """A regional scenario: the seed, the period and the box (any size; the TxSON box's
    north-west corner and 144 x 144 cells by default)."""

    seed: int = 0
    start: str = "2019-01-01"
    end: str = "2020-12-31"
    box: GridBox = DEFAULT_BOX
    retrieval_noise: float = 0.035
    pass_availability: float = 0.55

    def key(self) -> str:
        """Short stable hash of the configuration."""
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]


@dataclass
class RegionPlan:
    """Every draw that spans the region (2-D layers, area-wide series, storms, pass days)."""

    cfg: RegionConfig
    times: pd.DatetimeIndex
    static: dict[str, np.ndarray]
    storms: np.ndarray
    rain_factors: np.ndarray
    weather: dict[str, np.ndarray]
    elevation_mean: float
    offset: np.ndarray
    passes: list
    cell_bias: np.ndarray
    coarse_available: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.times), self.cfg.box.nrows, self.cfg.box.ncols


def _storm_area_mean(storms: np.ndarray, nt: int, ny: int, nx: int) -> np.ndarray:
    """Each day's rain (before calibration) averaged over the region, from every storm's
    Gaussian mass inside the region (cells are unit squares around their centres)."""
    area = np.zeros(nt)
    if not len(storms):
        return area
    t, cy, cx, radius, heading, travel, depth = storms.T
    mass = np.zeros(len(storms))
    for s in np.linspace(-0.5, 0.5, 5):
        py = cy - s * travel * np.cos(heading)
        px = cx + s * travel * np.sin(heading)
        fy = ndtr((ny - 0.5 - py) / radius) - ndtr((-0.5 - py) / radius)
        fx = ndtr((nx - 0.5 - px) / radius) - ndtr((-0.5 - px) / radius)
        mass += 2 * np.pi * radius**2 * fy * fx
    np.add.at(area, t.astype(int), depth * mass / 5 / (ny * nx))
    return area


def plan_region(cfg: RegionConfig) -> RegionPlan:
    """Draw everything that spans the region, in a fixed order on one generator."""
    times = pd.date_range(cfg.start, cfg.end, freq="D")
    if len(times) == 0:
        raise ValueError(f"region period {cfg.start}..{cfg.end} is empty: end is before start")
    ny, nx, nt = cfg.box.nrows, cfg.box.ncols, len(times)
    if ny < 1 or nx < 1:
        raise ValueError(f"region box {ny} x {nx} cells: expected at least one cell")
    rng = np.random.default_rng(cfg.seed)
    static = _static_layers(rng, ny, nx)
    margin = BLOCK / 2
    expected = STORM_DENSITY * (ny + 2 * margin) * (nx + 2 * margin)
    storms = _storms(rng, times, ny, nx, max(expected - 1.0, 0.0), (margin, margin))
    factors = _monthly_factors(times, _storm_area_mean(storms, nt, ny, nx))
    area_rain = _storm_area_mean(storms, nt, ny, nx) * factors
    weather = _weather_series(rng, times, area_rain, (ny, nx))
    offset = 0.008 * _smooth_field(rng, (ny, nx), 1.5)
    passes = _pass_plan(rng, times, cfg.pass_availability)
    cell_bias = 0.01 * _smooth_field(rng, (ny, nx), 2)
    available = _coarse_available(rng, times)
    return RegionPlan(
        cfg, times, static, storms, factors, weather, float(static["elevation"].mean()),
        offset, passes, cell_bias, available,
    )  # fmt: skip


def _near(storms: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The storms (in their order) whose streak comes within :data:`STORM_REACH` radii of the
    cells in rows ``r0:r1`` and columns ``c0:c1``."""
    if not len(storms):
        return storms
    _, cy, cx, radius, _, travel, _ = storms.T
    dy = np.maximum.reduce([r0 - cy, np.zeros_like(cy), cy - (r1 - 1)])
    dx = np.maximum.reduce([c0 - cx, np.zeros_like(cx), cx - (c1 - 1)])
    return storms[np.hypot(dy, dx) <= 0.5 * travel + STORM_REACH * radius]


def region_block(plan: RegionPlan, bi: int, bj: int) -> dict[str, np.ndarray]:
    """The time-varying fields (float32, time × rows × columns) of block row ``bi``, column
    ``bj`` of the region: rain, weather, truth, retrievals and the block's ``sm_36km``."""
    cfg = plan.cfg
    nt, ny, nx = plan.shape
    r0, c0 = bi * BLOCK, bj * BLOCK
    r1, c1 = min(r0 + BLOCK, ny), min(c0 + BLOCK, nx)
    if r0 >= ny or c0 >= nx or bi < 0 or bj < 0:
        raise ValueError(f"block ({bi}, {bj}) is outside the {ny} x {nx} region")
    cells = (slice(r0, r1), slice(c0, c1))
    jj, ii = np.mgrid[r0:r1, c0:c1].astype(float)
    static = {k: v[cells] for k, v in plan.static.items()}
    prcp = _render_storms(_near(plan.storms, r0, r1, c0, c1), nt, jj, ii)
    prcp *= plan.rain_factors[:, None, None]
    prcp[prcp < 0.1] = 0.0
    weather = _weather_fields(
        plan.weather, prcp, static["elevation"], plan.elevation_mean, plan.weather["local"][cells]
    )
    truth = _add_offset(_bucket(prcp, weather, static), plan.offset[cells])
    rng = np.random.default_rng([cfg.seed, bi, bj])
    covered = _render_passes(plan.passes, nt, jj, ii, ny, nx)
    covered &= rng.random(covered.shape) >= _drop_probability(static["land_cover"])
    noise = rng.normal(0.0, cfg.retrieval_noise, truth.shape)
    retrieved = _retrieved(truth, covered, plan.cell_bias[cells], noise)
    coarse = _coarse_series(
        truth.mean(axis=(1, 2)), plan.coarse_available, rng.normal(0.0, 0.02, nt)
    )
    fields = {
        "soil_moisture": retrieved, "soil_moisture_true": truth, "prcp": prcp,
        **weather, "sm_36km": np.broadcast_to(coarse[:, None, None], truth.shape),
    }  # fmt: skip
    return {k: np.asarray(fields[k], dtype=np.float32) for k in FIELDS}


def _template(plan: RegionPlan, tile: int) -> xr.Dataset:
    """The store's layout: static layers and coordinates in full, the time-varying fields as
    lazy zeros in tiles of ``tile`` cells (``compute=False`` writes only their metadata)."""
    import dask.array as da

    nt, ny, nx = plan.shape
    chunks = (nt, tile, tile)
    data = {
        name: (GRID3, da.zeros((nt, ny, nx), dtype=np.float32, chunks=chunks), dict(VARIABLES[name]))
        for name in FIELDS
    }  # fmt: skip
    for name in STATIC:
        data[name] = (("y", "x"), plan.static[name].astype(np.float32), dict(VARIABLES[name]))
    data["land_cover"] = land_cover_variable(plan.static["land_cover"])
    cfg = plan.cfg
    ds = xr.Dataset(
        data,
        coords={"time": plan.times, **grid_coords(cfg.box)},
        attrs={
            "title": "stimpute synthetic regional scenario",
            "crs": EASE2_CRS,
            "source": "synthetic (stimpute_core.data.scenario_region)",
            "scenario_seed": cfg.seed,
            "scenario_key": cfg.key(),
            "region_blocks": f"{-(-ny // BLOCK)} x {-(-nx // BLOCK)} blocks of {BLOCK} cells",
        },
    )
    # The static layers and coordinates are numpy-backed: written with the metadata, in tiles.
    for name in (*STATIC, "land_cover", "lat", "lon"):
        ds[name].encoding = {"chunks": (min(tile, ny), min(tile, nx))}
    return ds


def write_region_tile(plan: RegionPlan, store: str, tile: int, ty: int, tx: int) -> float:
    """Generate tile row ``ty``, column ``tx`` (whole blocks) and write it into ``store``.
    Returns the seconds it took."""
    t0 = time.perf_counter()
    nt, ny, nx = plan.shape
    y0, x0 = ty * tile, tx * tile
    y1, x1 = min(y0 + tile, ny), min(x0 + tile, nx)
    out = {name: np.empty((nt, y1 - y0, x1 - x0), np.float32) for name in FIELDS}
    per = tile // BLOCK
    for bi in range(ty * per, -(-y1 // BLOCK)):
        for bj in range(tx * per, -(-x1 // BLOCK)):
            block = region_block(plan, bi, bj)
            rows = slice(bi * BLOCK - y0, min((bi + 1) * BLOCK, ny) - y0)
            cols = slice(bj * BLOCK - x0, min((bj + 1) * BLOCK, nx) - x0)
            for name in FIELDS:
                out[name][:, rows, cols] = block[name]
    piece = xr.Dataset({name: (GRID3, values) for name, values in out.items()})
    region = {"time": slice(None), "y": slice(y0, y1), "x": slice(x0, x1)}
    piece.to_zarr(store, region=region, zarr_format=2)
    return time.perf_counter() - t0


def write_region_store(
    cfg: RegionConfig,
    path: str | os.PathLike,
    *,
    tile: int = 2 * BLOCK,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate the regional scenario ``cfg`` into the contract store ``path`` tile by tile
    (``tile`` cells a side, a multiple of :data:`BLOCK`), on the Dask ``distributed.Client``
    ``client`` or, when None, in this process. Memory is bounded by one tile per task and the
    plan (module text). The store appears at ``path`` only when complete; an existing store
    there is replaced. Returns the run's summary (tiles, cube size, seconds)."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise ValueError(f"{path}: a regional scenario is written as a Zarr store (.zarr)")
    if path.exists() and not is_store(path):
        raise ValueError(f"{path} exists and is not a Zarr store: refusing to replace it")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < BLOCK or tile % BLOCK:
        raise ValueError(f"tile={tile!r}: expected a multiple of {BLOCK} cells (whole blocks)")
    check_creatable(path, str(path))
    t0 = time.perf_counter()
    plan = plan_region(cfg)
    nt, ny, nx = plan.shape
    partial = path.with_name(f".{path.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    _template(plan, tile).to_zarr(
        partial, mode="w", zarr_format=2, consolidated=True, compute=False
    )
    jobs = [(ty, tx) for ty in range(-(-ny // tile)) for tx in range(-(-nx // tile))]
    run_tasks(
        write_region_tile,
        [(str(partial), tile, ty, tx) for ty, tx in jobs],
        shared=plan,
        client=client,
        progress=progress,
    )
    validate(xr.open_zarr(partial, chunks={}), source=str(path))
    replace_dir(partial, path)
    return {
        "tiles": len(jobs),
        "shape": [nt, ny, nx],
        "cube_gb": round(nt * ny * nx * 4 * len(FIELDS) / 1e9, 2),
        "seconds": time.perf_counter() - t0,
    }


__all__ = [
    "BLOCK",
    "FIELDS",
    "RegionConfig",
    "RegionPlan",
    "plan_region",
    "region_block",
    "write_region_store",
    "write_region_tile",
]
