"""Reading and writing contract Datasets: NetCDF here, Zarr stores in :mod:`.zarr_io`, one
dispatch by path for both. Every write is atomic (:mod:`.atomic`, re-exported here).
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from .atomic import (
    STALE_AGE_S,
    atomic_write,
    atomic_write_dir,
    check_creatable,
    remove_stale_temporaries,
)
from .contract import validate
from .zarr_io import SUFFIX, is_zarr, open_zarr, write_zarr


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` as NetCDF (h5netcdf, compressed grids) through :func:`atomic_write`.

    An interrupted write never leaves a partial file under ``path``; an existing file there stays
    intact until the new one is complete.
    """
    encoding = {
        name: {"zlib": True, "complevel": 4}
        for name, var in ds.data_vars.items()
        if var.dtype.kind in "fiu" and var.ndim >= 2
    }
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as a Zarr store when ``path`` ends ``.zarr``
    (:func:`~stimpute_core.data.zarr_io.write_zarr`, space tiles), else as NetCDF."""
    if Path(path).suffix.lower() == SUFFIX:
        return write_zarr(ds, path)
    return write_netcdf(ds, path)


def open_dataset(path: str | os.PathLike, *, check: bool = True) -> xr.Dataset:
    """Open a contract NetCDF fully into memory, or a Zarr store (a folder ending ``.zarr``)
    lazily (:func:`~stimpute_core.data.zarr_io.open_zarr`), and (by default) validate it.

    Errors name the file: a missing file, a file that is not NetCDF or is corrupt (HDF5 raises
    ``RuntimeError``/``KeyError`` on damaged metadata: those become ``ValueError`` too), or each
    contract problem.
    """
    path = Path(path)
    if is_zarr(path):
        return open_zarr(path, check=check)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as handle:
            ds = handle.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be read as NetCDF ({err})") from err
    except (RuntimeError, KeyError) as err:
        raise ValueError(f"{path}: cannot be read as NetCDF: corrupt or truncated ({err})") from err
    if check:
        validate(ds, source=str(path))
    return ds


__all__ = [
    "STALE_AGE_S",
    "atomic_write",
    "atomic_write_dir",
    "check_creatable",
    "open_dataset",
    "remove_stale_temporaries",
    "write_dataset",
    "write_netcdf",
]
