"""What a path is and which reader reads it: file suffixes and the kind of a data-folder entry.

The one place that decides this, so that every route into the readers (the app's data folder in
:mod:`stimpute_core.data.sources`, the recipe in :mod:`.build`, the SMAP readers behind the CLI)
sees the same files. Suffixes are compared case-insensitively. No heavy imports: this module is
imported wherever a path is looked at.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: A file-system path as the readers take it.
PathLike = str | os.PathLike

#: SMAP HDF5 files (SPL2SMAP_S granules, SPL3SMP daily files): NSIDC ships ``.h5``; ``.he5`` and
#: ``.hdf5`` are the other HDF5 spellings found in downloads and re-packaged archives.
GRANULE_SUFFIXES = (".h5", ".he5", ".hdf5")
#: NetCDF files: contract Datasets and Daymet daily weather.
NETCDF_SUFFIXES = (".nc", ".nc4")
#: Rasters opened with xarray (CF NetCDF/HDF5) rather than GDAL (GeoTIFF and the rest).
XARRAY_RASTER_SUFFIXES = (*NETCDF_SUFFIXES, ".netcdf", ".cdf", *GRANULE_SUFFIXES)
RECIPE_SUFFIX = ".toml"
CSV_SUFFIX = ".csv"
ZIP_SUFFIX = ".zip"
#: An ISMN data file (one sensor's record), inside a download's ``NETWORK/STATION/`` folders.
ISMN_SUFFIX = ".stm"

#: Kinds of data-folder entries, each read by one reader:
#: ``contract`` (:func:`~stimpute_core.data.io.open_dataset`), ``recipe``
#: (:func:`.build.build_from_recipe`), ``granules`` (:func:`.spl2smap_s.read_smap_cube`),
#: ``ismn`` (:func:`.ismn.read_ismn`) and ``csv`` (:func:`.insitu_csv.read_insitu_csv`).
KINDS = ("contract", "recipe", "granules", "ismn", "csv")


def has_suffix(path: PathLike, suffixes: Iterable[str]) -> bool:
    """Whether the name of ``path`` ends in one of ``suffixes`` (case-insensitive)."""
    return Path(path).suffix.lower() in tuple(suffixes)


def files_in(folder: PathLike, suffixes: Iterable[str]) -> list[Path]:
    """The files directly inside ``folder`` with one of ``suffixes``, sorted by name.

    Other files (sidecars that come with downloads, such as NSIDC's ``.xml``) are left out, so
    they are never mistaken for bad data files.
    """
    suffixes = tuple(suffixes)
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and has_suffix(p, suffixes))


def granule_files(folder: PathLike) -> list[Path]:
    """The SMAP HDF5 files (:data:`GRANULE_SUFFIXES`) directly inside ``folder``, sorted."""
    return files_in(folder, GRANULE_SUFFIXES)


def path_kind(path: PathLike) -> str | None:
    """The kind (one of :data:`KINDS`) of a file or folder, or ``None`` when no reader takes it.

    Files go by suffix: ``.nc``/``.nc4`` contract, ``.toml`` recipe, ``.zip`` ISMN download,
    ``.csv`` in-situ CSV. A folder holding granules directly is ``granules``; else a folder with
    ISMN data files (``*.stm``) at any depth is ``ismn``.
    """
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in NETCDF_SUFFIXES:
            return "contract"
        if suffix == RECIPE_SUFFIX:
            return "recipe"
        if suffix == ZIP_SUFFIX:
            return "ismn"
        if suffix == CSV_SUFFIX:
            return "csv"
        return None
    if path.is_dir():
        if granule_files(path):
            return "granules"
        if any(path.rglob(f"*{ISMN_SUFFIX}")):
            return "ismn"
    return None


__all__ = [
    "CSV_SUFFIX",
    "GRANULE_SUFFIXES",
    "ISMN_SUFFIX",
    "KINDS",
    "NETCDF_SUFFIXES",
    "RECIPE_SUFFIX",
    "XARRAY_RASTER_SUFFIXES",
    "ZIP_SUFFIX",
    "PathLike",
    "files_in",
    "granule_files",
    "has_suffix",
    "path_kind",
]
