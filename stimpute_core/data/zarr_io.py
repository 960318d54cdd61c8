"""The data contract on Zarr: a contract Dataset stored in space tiles, opened lazily.

A NetCDF file is read whole into memory (:func:`~stimpute_core.data.io.open_dataset`); a cube
of a state or a continent at 1 km is not (Texas, 7 daily years of one float32 variable: about
7 GB). A contract store (a folder ending ``.zarr``) holds every grid variable chunked by space
tiles of :data:`DEFAULT_TILE` × :data:`DEFAULT_TILE` cells with the whole time axis in each
chunk, because every imputer reads a cell's whole series and most work tile by tile; station
series and scalars are one chunk each. :func:`open_zarr` returns Dask-backed variables, and
:func:`~stimpute_core.data.contract.validate` checks them with reductions computed tile by tile,
never holding a whole cube.

Why Zarr (not tiled NetCDF/HDF5): chunks are separate objects, so tiles written by several
processes at once, or by a run that is killed and restarted, never share a file; xarray and
Dask read and write it natively. Writes are atomic like every output here (a temporary folder
that takes the store's place when complete, :func:`~stimpute_core.data.atomic.atomic_write_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from .atomic import atomic_write_dir
from .contract import validate

#: Cells along each side of a space tile (64 × 64 cells, 7 daily years of float32: 41 MB a chunk).
DEFAULT_TILE = 64
#: Encoding kept from the source (how values and times are stored); chunks and filters are not.
KEPT_ENCODING = ("dtype", "_FillValue", "units", "calendar", "scale_factor", "add_offset")
#: The suffix a contract store's folder carries.
SUFFIX = ".zarr"


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr store: a name ending ``.zarr``, or a folder holding a
    store's metadata."""
    path = Path(path)
    return path.suffix.lower() == SUFFIX or is_store(path)


def is_store(path: str | os.PathLike) -> bool:
    """Whether the folder ``path`` holds a Zarr store (format 2 or 3 metadata)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in (".zgroup", "zarr.json"))


def tile_chunks(ds: xr.Dataset, tile: int = DEFAULT_TILE) -> dict[str, int]:
    """Chunk sizes of a contract store: ``tile`` cells along ``y`` and ``x`` (fewer at the
    edges), the whole of every other dimension."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile={tile!r}: expected a whole number of cells, 1 or more")
    return {dim: (min(tile, size) if dim in ("y", "x") else size) for dim, size in ds.sizes.items()}


def write_zarr(ds: xr.Dataset, path: str | os.PathLike, tile: int = DEFAULT_TILE) -> Path:
    """Write ``ds`` as a contract store at ``path``, chunked by space tiles of ``tile`` cells.

    A Dask-backed ``ds`` is written chunk by chunk without being loaded (memory bounded by a
    few tiles). Atomic: an interrupted write leaves an existing store at ``path`` as it was.
    """
    path = Path(path)
    if path.exists() and not is_store(path):
        raise ValueError(f"{path} exists and is not a Zarr store: refusing to replace it")
    out = ds.chunk(tile_chunks(ds, tile))
    for var in out.variables.values():  # a NetCDF file's own chunking and filters do not apply
        var.encoding = {k: v for k, v in var.encoding.items() if k in KEPT_ENCODING}
    return atomic_write_dir(
        path, lambda tmp: out.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
    )


def open_zarr(path: str | os.PathLike, *, check: bool = True) -> xr.Dataset:
    """Open the contract store at ``path`` lazily (Dask arrays in the store's own chunks) and,
    by default, validate it tile by tile. Errors name the store."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such Zarr store (a folder ending {SUFFIX})")
    try:
        ds = xr.open_zarr(path, consolidated=None, chunks={})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: cannot be read as a Zarr store ({err})") from err
    if check:
        validate(ds, source=str(path))
    return ds


def load_here(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` loaded into memory by this thread alone (Dask's synchronous scheduler).

    Inside a task on a ``distributed`` worker a plain ``load()`` sends the chunk reads to the
    cluster and lets the worker start other tasks meanwhile (the thread secedes), so a worker of
    one thread would hold several tiles at once; a tile task reads its own tile instead."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return ds.load()


__all__ = [
    "DEFAULT_TILE",
    "is_store",
    "is_zarr",
    "load_here",
    "open_zarr",
    "tile_chunks",
    "write_zarr",
]
