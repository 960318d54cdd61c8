"""Training data from a store larger than memory: a sample of its tiles laid side by side.

A network such as the ST-Transformer learns from windows of a few patches; it does not need
the whole region at once, only enough of it. :func:`sample_tiles` draws ``count`` whole tiles
of a Zarr store (seeded; only tiles with observations, and only full-size ones so they fit
together) and lays them side by side in a mosaic that is an ordinary contract Dataset: memory
is ``count`` tiles, whatever the size of the region. The model is then fitted on the mosaic
and imputes the whole store tile by tile (:func:`~stimpute_core.tiles.impute_tiled`).

Why a mosaic is sound for the ST-Transformer: its value at a cell depends on that cell's
patch alone, and every input it computes in ``fit`` is per cell (the prior, the cell context,
the derived inputs) or a statistic over the observed values it is given. With tiles that are
whole patches (the tile a multiple of the patch), no patch straddles two tiles. The mosaic's
``x``/``y`` are relabelled as one regular grid of the store's spacing (the network sees
spacing, never absolute positions); ``lat``/``lon`` stay each cell's own; station series are
left out (a station belongs to its cell, not to the mosaic).
"""

from __future__ import annotations

import math
import os

import numpy as np
import xarray as xr

from .data.contract import TARGET
from .data.zarr_io import open_zarr
from .tiles import plan_tiles, store_tile


def sample_tiles(
    source: str | os.PathLike, count: int, *, seed: int = 0, tile: int | None = None
) -> xr.Dataset:
    """``count`` full-size tiles of the store ``source`` with observations, drawn with
    ``seed``, laid out in a near-square mosaic (module text). ValueError when the store has
    fewer such tiles."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r}: expected a whole number of tiles, 1 or more")
    ds = open_zarr(source)
    size = store_tile(ds) if tile is None else tile
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    seen = ds[TARGET].notnull().any("time").values  # one 2-D reduction, tile by tile
    full = [
        t
        for t in plan_tiles(ny, nx, size)
        if t.y1 - t.y0 == size and t.x1 - t.x0 == size and seen[t.y0 : t.y1, t.x0 : t.x1].any()
    ]
    if len(full) < count:
        raise ValueError(
            f"{source}: {len(full)} full tiles of {size} x {size} cells with observations, "
            f"fewer than the {count} asked for: ask for fewer or give a smaller tile"
        )
    rng = np.random.default_rng(seed)
    chosen = [full[i] for i in sorted(rng.choice(len(full), size=count, replace=False))]
    grid = ds.drop_dims([d for d in ds.dims if d not in ("time", "y", "x")])
    # As square as whole rows allow (no cell of the mosaic is left empty).
    nrows = max(d for d in range(1, math.isqrt(count) + 1) if count % d == 0)
    cols = count // nrows
    rows = [
        xr.concat([_positional(grid.isel(t.region).load()) for t in chosen[r : r + cols]], "x")
        for r in range(0, count, cols)
    ]
    mosaic = xr.concat(rows, "y")
    x0, y0 = float(ds["x"][0]), float(ds["y"][0])
    dx = float(ds["x"][1] - ds["x"][0]) if nx > 1 else 1000.0
    dy = float(ds["y"][1] - ds["y"][0]) if ny > 1 else -1000.0
    mosaic = mosaic.assign_coords(
        x=x0 + dx * np.arange(mosaic.sizes["x"]), y=y0 + dy * np.arange(mosaic.sizes["y"])
    )
    for name in ("x", "y"):
        mosaic[name].attrs = dict(ds[name].attrs)
    mosaic.attrs = {
        **ds.attrs,
        "tile_sample": f"{count} tiles of {size} x {size} cells drawn with seed {seed}: "
        + ", ".join(f"rows {t.y0}-{t.y1 - 1} cols {t.x0}-{t.x1 - 1}" for t in chosen),
    }
    return mosaic


def _positional(part: xr.Dataset) -> xr.Dataset:
    """A tile with positional ``x``/``y`` (the mosaic relabels them once laid out), so tiles
    are put side by side rather than aligned on their coordinates."""
    return part.assign_coords(x=np.arange(part.sizes["x"]), y=np.arange(part.sizes["y"]))


__all__ = ["sample_tiles"]
