"""Reading and writing contract Datasets as NetCDF; every write is atomic."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import xarray as xr

from .contract import validate


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    An interrupted write never leaves a partial file under ``path``; an existing file there stays
    intact until the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        encoding = {
            name: {"zlib": True, "complevel": 4}
            for name, var in ds.data_vars.items()
            if var.dtype.kind in "fiu" and var.ndim >= 2
        }
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def open_dataset(path: str | os.PathLike, *, check: bool = True) -> xr.Dataset:
    """Open a contract NetCDF fully into memory and (by default) validate it.

    Errors name the file: a missing file, a file that is not NetCDF, or each contract problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as handle:
            ds = handle.load()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be read as NetCDF ({err})") from err
    if check:
        validate(ds, source=str(path))
    return ds
