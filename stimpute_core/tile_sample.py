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

Rounds, to learn from all of a region and not from one sample: :func:`tile_rounds` deals the
region's tiles (in an order drawn with the seed) into rounds of ``count``, and
:func:`fit_in_rounds` fits on the first round's mosaic, then goes on training the same network
on each next mosaic (:mod:`stimpute_core.models.st_transformer.rounds`), one in memory at a
time: a pass over every tile with observations, memory bounded by ``count`` tiles. Windows are
drawn from the mosaic in memory, so a round's steps cost what a small region's do; reading the
next mosaic is the only wait. Each tile is trained on once; its validation entries are its
round's, never trained on in an earlier round.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .data.contract import TARGET
from .data.zarr_io import open_zarr
from .tiles import Tile, plan_tiles, store_tile

if TYPE_CHECKING:
    from .models.st_transformer.model import STTransformerImputer


def tile_rounds(
    source: str | os.PathLike, count: int, *, seed: int = 0, tile: int | None = None
) -> list[list[Tile]]:
    """The full-size tiles of ``source`` with observations, in an order drawn with ``seed``,
    dealt ``count`` to a round: one pass over the region (a last round with fewer than
    ``count`` tiles is left out, so every mosaic has the same shape). ValueError when the store
    has fewer than ``count`` such tiles."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r}: expected a whole number of tiles, 1 or more")
    ds = open_zarr(source)
    size = store_tile(ds) if tile is None else tile
    seen = ds[TARGET].notnull().any("time").values  # one 2-D reduction, tile by tile
    full = [
        t
        for t in plan_tiles(ds.sizes["y"], ds.sizes["x"], size)
        if t.y1 - t.y0 == size and t.x1 - t.x0 == size and seen[t.y0 : t.y1, t.x0 : t.x1].any()
    ]
    if len(full) < count:
        raise ValueError(
            f"{source}: {len(full)} full tiles of {size} x {size} cells with observations, "
            f"fewer than the {count} asked for: ask for fewer or give a smaller tile"
        )
    order = np.random.default_rng(seed).permutation(len(full))
    return [
        sorted((full[i] for i in order[k : k + count]), key=lambda t: (t.y0, t.x0))
        for k in range(0, len(full) - count + 1, count)
    ]


def sample_tiles(
    source: str | os.PathLike, count: int, *, seed: int = 0, tile: int | None = None
) -> xr.Dataset:
    """``count`` full-size tiles of the store ``source`` with observations, drawn with
    ``seed`` (the first of :func:`tile_rounds`), laid out in a near-square mosaic (module
    text). ValueError when the store has fewer such tiles."""
    return mosaic(source, tile_rounds(source, count, seed=seed, tile=tile)[0], seed=seed)


def mosaic(source: str | os.PathLike, chosen: Sequence[Tile], *, seed: int = 0) -> xr.Dataset:
    """The tiles ``chosen`` (of one size) of ``source``, read and laid side by side."""
    ds = open_zarr(source)
    count, size = len(chosen), chosen[0].y1 - chosen[0].y0
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    grid = ds.drop_dims([d for d in ds.dims if d not in ("time", "y", "x")])
    # As square as whole rows allow (no cell of the mosaic is left empty).
    nrows = max(d for d in range(1, math.isqrt(count) + 1) if count % d == 0)
    cols = count // nrows
    rows = [
        xr.concat([_positional(grid.isel(t.region).load()) for t in chosen[r : r + cols]], "x")
        for r in range(0, count, cols)
    ]
    out = xr.concat(rows, "y")
    x0, y0 = float(ds["x"][0]), float(ds["y"][0])
    dx = float(ds["x"][1] - ds["x"][0]) if nx > 1 else 1000.0
    dy = float(ds["y"][1] - ds["y"][0]) if ny > 1 else -1000.0
    out = out.assign_coords(
        x=x0 + dx * np.arange(out.sizes["x"]), y=y0 + dy * np.arange(out.sizes["y"])
    )
    for name in ("x", "y"):
        out[name].attrs = dict(ds[name].attrs)
    out.attrs = {
        **ds.attrs,
        "tile_sample": f"{count} tiles of {size} x {size} cells drawn with seed {seed}: "
        + ", ".join(f"rows {t.y0}-{t.y1 - 1} cols {t.x0}-{t.x1 - 1}" for t in chosen),
    }
    return out


def fit_in_rounds(
    model: STTransformerImputer,
    source: str | os.PathLike,
    count: int,
    *,
    rounds: int | None = None,
    seed: int = 0,
    tile: int | None = None,
    callbacks: Sequence[Callable] = (),
    cancel=None,
    first_fit: Callable[[xr.Dataset], object] | None = None,
) -> STTransformerImputer:
    """Train ``model`` over the store ``source`` in rounds of ``count`` tiles (module text):
    ``fit`` on the first round's mosaic (or ``first_fit(mosaic)``, e.g. the evaluation
    protocol's), then :func:`~stimpute_core.models.st_transformer.rounds.train_round` on each
    next one, reading one mosaic at a time. ``rounds`` (default: all, one pass over the tiles
    with observations) may not exceed the rounds the store holds."""
    from .models.st_transformer.rounds import train_round

    plan = tile_rounds(source, count, seed=seed, tile=tile)
    if rounds is not None:
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds={rounds!r}: expected a whole number, 1 or more")
        if rounds > len(plan):
            raise ValueError(
                f"{source}: rounds={rounds} but the store holds {len(plan)} round(s) of {count} "
                "tiles with observations (each tile is trained on once): ask for fewer rounds"
            )
        plan = plan[:rounds]
    if len(plan) > 1 and not model.transferable:  # before any training
        raise ValueError(
            f"prior={model.prior!r} is a per-cell reference with no estimate for other cells: "
            "train in rounds with prior='boosting' or None, or on one round"
        )
    first = mosaic(source, plan[0], seed=seed)
    if first_fit is None:
        model.fit(first, callbacks=callbacks, cancel=cancel)
    else:
        first_fit(first)
    label = first.attrs["tile_sample"]
    model.training_ = {**model.training_, "rounds": [{"round": 0, "data": label}]}
    for k, chosen in enumerate(plan[1:], start=1):
        if cancel is not None and cancel.is_set():
            break
        part = mosaic(source, chosen, seed=seed)
        label = part.attrs["tile_sample"]
        train_round(model, part, k, label=label, callbacks=callbacks, cancel=cancel)
    return model


def _positional(part: xr.Dataset) -> xr.Dataset:
    """A tile with positional ``x``/``y`` (the mosaic relabels them once laid out), so tiles
    are put side by side rather than aligned on their coordinates."""
    return part.assign_coords(x=np.arange(part.sizes["x"]), y=np.arange(part.sizes["y"]))


__all__ = ["fit_in_rounds", "mosaic", "sample_tiles", "tile_rounds"]
