"""Tiled imputation of a Zarr store: one task per space tile, run on Dask, written as tiles
finish, restartable.

A model whose value at a cell depends on that cell's own series alone (:data:`TILED_MODELS`)
gives the same field fitted on a tile as on the whole region, so a region larger than memory is
imputed tile by tile: each task reads one tile of the input store (the whole time axis of
``tile`` × ``tile`` cells), fits the model there, imputes it and writes its
``soil_moisture_imputed`` into the output store's matching chunk. Memory per worker is bounded
by one tile; tasks share nothing but the two stores. (``climatology`` pools its seasonal cycle
over the region and ``regression`` standardises its inputs over it, so they are not tiled.)

The differences from an untiled run: a cell never observed gets the model's fallback (the mean
of the observed cells) of its tile rather than of the whole region, and a tile with no
observation at all (open water, outside every swath) is left NaN rather than filled with the
region's mean.

A fitted ST-Transformer (a ``stimpute train`` checkpoint of a model that works from each cell's
own inputs, ``transferable``) is imputed tile by tile too: it is fitted once, elsewhere, and
each task only applies it. Its value at a cell depends on the inputs of that cell's patch alone
(patches of ``P`` × ``P`` cells on a grid anchored at the region's corner; attention never
crosses a patch), so each task reads its tile widened to whole patches (a halo of up to
``P - 1`` cells on the far sides, none when the tile is a multiple of ``P``) and keeps its own
cells: the field equals an untiled imputation's. Memory per task is that of the widened tile's
encoded inputs (about ``4 * days * cells * channels`` bytes, some 40 channels).

Nothing half written is ever read: the output is built in ``.<name>.partial`` beside the target
and takes the target's place only when every tile is done. Each finished tile leaves a marker
(written after its chunk), so a run that is killed and started again with the same input, model
and tile skips the finished tiles; a partial store of other settings is started afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .data.atomic import atomic_write, check_creatable, replace_dir
from .data.contract import TARGET
from .data.tasks import run_tasks
from .data.zarr_io import DEFAULT_TILE, KEPT_ENCODING, SUFFIX, is_store, load_here, open_zarr
from .models import make_imputer
from .models.base import OUTPUT_NAME

#: Registered models that impute each cell from its own series, checked against an untiled run
#: by the tests.
TILED_MODELS = ("mean", "linear", "kalman", "coarse")
#: The folder of a partial output that holds the run's settings and the finished-tile markers.
RUN_DIR = "_tiled_run"


@dataclass(frozen=True)
class Tile:
    """One space tile: rows ``y0:y1`` and columns ``x0:x1`` of the grid, and its number."""

    index: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def region(self) -> dict[str, slice]:
        return {"y": slice(self.y0, self.y1), "x": slice(self.x0, self.x1)}


def plan_tiles(ny: int, nx: int, tile: int = DEFAULT_TILE) -> list[Tile]:
    """The tiles of a ``ny`` × ``nx`` grid, row by row (edge tiles smaller)."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile={tile!r}: expected a whole number of cells, 1 or more")
    tiles = []
    for y0 in range(0, ny, tile):
        for x0 in range(0, nx, tile):
            tiles.append(Tile(len(tiles), y0, min(y0 + tile, ny), x0, min(x0 + tile, nx)))
    return tiles


def store_tile(ds: xr.Dataset) -> int:
    """The tile size of a store opened lazily: its target's chunk along ``y`` and ``x``;
    ValueError when the two differ or the store is not chunked."""
    chunks = ds[TARGET].chunksizes
    if not chunks:
        raise ValueError(f"'{TARGET}' is not chunked: open the store with open_zarr")
    ys, xs = chunks["y"], chunks["x"]
    if ys[0] != xs[0]:
        raise ValueError(f"the store's tiles are {ys[0]} x {xs[0]} cells: give --tile")
    return int(ys[0])


def is_checkpoint(model: str | os.PathLike) -> bool:
    """Whether ``model`` names a checkpoint folder (a ``config.json`` in it), not a model name."""
    return (Path(model) / "config.json").is_file()


def _checkpoint_digest(path: Path) -> str:
    """A digest of a checkpoint's files (names, sizes and the configuration's bytes)."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for f in sorted(path.iterdir()):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


_LOADED: dict[str, Any] = {}


def _fitted(model: str) -> Any:
    """The checkpoint at ``model``, loaded once per process (a worker imputes many tiles) and
    again when its files change."""
    key = f"{Path(model).resolve()}:{_checkpoint_digest(Path(model))}"
    if key not in _LOADED:
        from .models.saved import load_model

        _LOADED.clear()
        _LOADED[key] = load_model(model, device="cpu")
    return _LOADED[key]


def patch_of(model: str) -> int:
    """The patch size of a checkpoint that can be imputed tile by tile; ValueError saying why
    another cannot."""
    fitted = _fitted(model)
    net = getattr(fitted, "net_", None)
    if net is None or not hasattr(net, "cfg") or not getattr(fitted, "transferable", False):
        raise ValueError(
            f"--model {model}: this checkpoint cannot be imputed tile by tile (only an "
            "ST-Transformer whose inputs are each cell's own: prior none or boosting)"
        )
    return int(net.cfg.patch)


def _run_key(source: Path, model: str, tile: int, ds: xr.Dataset) -> dict[str, Any]:
    """What a partial output must match to be resumed: input, model, tile and grid."""
    meta = source / ".zmetadata"
    digest = hashlib.sha256(meta.read_bytes() if meta.is_file() else str(source).encode())
    key = {
        "input": str(source.resolve()),
        "input_metadata": digest.hexdigest()[:16],
        "model": model,
        "tile": tile,
        "shape": [int(ds.sizes[d]) for d in ("time", "y", "x")],
    }
    if is_checkpoint(model):
        key["model"] = str(Path(model).resolve())
        key["checkpoint"] = _checkpoint_digest(Path(model))
    return key


def _start(partial: Path, ds: xr.Dataset, key: dict[str, Any], tile: int) -> set[int]:
    """The partial output to write into (created afresh unless it holds a run of ``key``) and
    the tiles it already has."""
    run = partial / RUN_DIR
    settings = run / "settings.json"
    if is_store(partial) and settings.is_file():
        try:
            same = json.loads(settings.read_text()) == key
        except ValueError:
            same = False
        if same:
            return {int(p.stem) for p in run.glob("*.done")}
    shutil.rmtree(partial, ignore_errors=True)
    template = ds.chunk({"y": tile, "x": tile, "time": ds.sizes["time"]})
    for var in template.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in KEPT_ENCODING}
    # The input's variables are copied chunk by chunk; the output's chunks are left to the
    # tiles (compute=False writes its metadata only).
    template.to_zarr(partial, mode="w", zarr_format=2, consolidated=True)
    ckpt = "checkpoint" in key
    imputer = _fitted(key["model"]) if ckpt else make_imputer(key["model"])
    how = "imputed with the checkpoint" if ckpt else "fitted and imputed"
    attrs = {
        "long_name": "imputed soil moisture",
        "units": "m3/m3",
        "model": imputer.name,
        "model_settings": json.dumps(imputer.get_params(), default=str, sort_keys=True),
        "tiled": f"{how} in tiles of {tile} x {tile} cells",
    }
    empty = xr.zeros_like(template[TARGET], dtype=np.float32).rename(OUTPUT_NAME)
    empty.attrs = attrs
    empty.encoding = {}
    addition = empty.to_dataset()
    addition.attrs = dict(ds.attrs)  # appending writes the group's attributes again
    addition.to_zarr(partial, mode="a", zarr_format=2, consolidated=True, compute=False)
    run.mkdir()
    atomic_write(settings, lambda tmp: tmp.write_text(json.dumps(key, indent=1)))
    return set()


def widened(tile: Tile, patch: int, ny: int, nx: int) -> Tile:
    """``tile`` widened to whole patches of ``patch`` cells anchored at the grid's corner."""
    y0, x0 = tile.y0 // patch * patch, tile.x0 // patch * patch
    y1 = min(-(-tile.y1 // patch) * patch, ny)
    x1 = min(-(-tile.x1 // patch) * patch, nx)
    return Tile(tile.index, y0, y1, x0, x1)


def impute_tile(source: str, partial: str, model: str, tile: Tile) -> dict[str, Any]:
    """Fit ``model`` on one tile of the store ``source`` (or apply the checkpoint ``model`` to
    the tile widened to whole patches), impute it, write the result into the partial output
    and leave the tile's marker. Returns the tile's timings."""
    t0 = time.perf_counter()
    store = open_zarr(source, check=False)
    ds = load_here(store.isel(tile.region))
    observed = bool(ds[TARGET].notnull().any())
    if not observed:  # nothing seen in the tile (open water, outside every swath)
        values = np.full(ds[TARGET].shape, np.nan, dtype=np.float32)
    elif is_checkpoint(model):
        fitted = _fitted(model)
        wide = widened(tile, patch_of(model), store.sizes["y"], store.sizes["x"])
        field = fitted.impute(load_here(store.isel(wide.region))).values
        keep = (slice(None), slice(tile.y0 - wide.y0, tile.y1 - wide.y0),
                slice(tile.x0 - wide.x0, tile.x1 - wide.x0))  # fmt: skip
        values = np.asarray(field[keep], dtype=np.float32)
    else:
        values = np.asarray(make_imputer(model).fit(ds).impute(ds).values, dtype=np.float32)
    out = xr.Dataset({OUTPUT_NAME: (("time", "y", "x"), values)})
    out.to_zarr(partial, region={"time": slice(None), **tile.region}, zarr_format=2)
    marker = Path(partial) / RUN_DIR / f"{tile.index}.done"
    atomic_write(marker, lambda tmp: tmp.write_text(""))
    return {"tile": tile.index, "cells": (tile.y1 - tile.y0) * (tile.x1 - tile.x0),
            "observed": observed, "seconds": time.perf_counter() - t0}  # fmt: skip


def impute_tiled(
    source: str | os.PathLike,
    model: str,
    out: str | os.PathLike,
    *,
    tile: int | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Impute the Zarr store ``source`` with the registered per-cell ``model`` (or the
    ST-Transformer checkpoint at ``model``) tile by tile into the store ``out`` (the input plus
    ``soil_moisture_imputed``), on the Dask ``distributed.Client`` ``client`` (in this
    process, one tile after another, when None).

    ``tile`` defaults to the input's chunks. A killed run restarts where it stopped (module
    text); ``progress(done, total)`` is called as tiles finish. Returns the run's summary:
    tiles, tiles skipped, cells, seconds.
    """
    model = str(model)
    if is_checkpoint(model):
        patch_of(model)  # refuses a checkpoint that cannot be tiled, before any work
    elif model not in TILED_MODELS:
        raise ValueError(
            f"--model {model!r} cannot be imputed tile by tile: expected one of "
            f"{', '.join(TILED_MODELS)} (models that impute each cell from its own series) "
            "or an ST-Transformer checkpoint folder"
        )
    source, out = Path(source), Path(out)
    if out.suffix.lower() != SUFFIX:
        raise ValueError(f"{out}: a tiled imputation writes a Zarr store (a name ending .zarr)")
    if out.exists() and not is_store(out):
        raise ValueError(f"{out} exists and is not a Zarr store: refusing to replace it")
    if out.resolve() == source.resolve():
        raise ValueError(f"{out} is the input store: give another path")
    check_creatable(out, str(out))
    ds = open_zarr(source)
    if is_checkpoint(model):  # the store's covariates, units and spacing, before any work
        _fitted(model).check(ds.isel(y=slice(0, 1), x=slice(0, 1)).load())
    size = store_tile(ds) if tile is None else tile
    tiles = plan_tiles(ds.sizes["y"], ds.sizes["x"], size)
    partial = out.with_name(f".{out.name}.partial")
    done = _start(partial, ds, _run_key(source, model, size, ds), size)
    todo = [t for t in tiles if t.index not in done]
    t0 = time.perf_counter()
    jobs = [(str(source), str(partial), model, t) for t in todo]
    results = run_tasks(
        impute_tile, jobs, client=client, progress=progress, done=len(tiles) - len(todo)
    )
    shutil.rmtree(partial / RUN_DIR)
    replace_dir(partial, out)  # the previous output goes aside until the new one is in place
    return {
        "tiles": len(tiles),
        "skipped": len(tiles) - len(todo),
        "cells": int(ds.sizes["y"] * ds.sizes["x"]),
        "seconds": time.perf_counter() - t0,
        "empty_tiles": sum(not r["observed"] for r in results),
        "tile_seconds": [r["seconds"] for r in results],
    }


__all__ = [
    "TILED_MODELS",
    "Tile",
    "impute_tile",
    "impute_tiled",
    "is_checkpoint",
    "patch_of",
    "plan_tiles",
    "store_tile",
    "widened",
]
