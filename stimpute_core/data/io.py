"""Reading and writing contract Datasets as NetCDF, and the atomic write every output goes through."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from .contract import validate


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write`` fills a temporary file, which then replaces ``path``.

    The temporary file lies in the same folder (so :func:`os.replace` is a rename within one file
    system) and is named ``.<name>.<random>.tmp``; ``write`` gets its path, may overwrite it, and
    what it returns is ignored. The file is flushed to disk (``fsync``) before the rename. If
    ``write`` (or anything after it) raises, even ``KeyboardInterrupt``, the temporary file is
    removed and the error re-raised: an existing file under ``path`` is never lost nor left
    half-written. Missing parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write the folder ``path`` atomically: ``write`` fills a temporary folder beside it, which
    then takes its place (an existing folder is moved aside first and removed after).

    If ``write`` raises, the temporary folder is removed and an existing ``path`` is left as it
    was. The folder is readable by others (``mkdtemp`` alone would make it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)
    try:
        write(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


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


__all__ = ["atomic_write", "atomic_write_dir", "open_dataset", "write_netcdf"]
