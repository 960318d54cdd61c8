"""What a path is and which reader reads it: file suffixes and the kind of a data-folder entry.

The one place that decides this, so that every route into the readers (the app's data folder in
:mod:`stimpute_core.data.sources`, the recipe in :mod:`.build`, the SMAP readers behind the CLI)
sees the same files. Suffixes are compared case-insensitively. No heavy imports: this module is
imported wherever a path is looked at (h5py is imported only to look inside a candidate granule).

A granule is an SMAP HDF5 file: one named ``.h5``/``.he5``/``.hdf5`` (:data:`GRANULE_SUFFIXES`,
taken by name, so a corrupt one is reported rather than passed over), or a file of any other name
whose content is HDF5 holding the SMAP groups (``Soil_Moisture_Retrieval_Data*``): the ``.nc4``
(sometimes ``.nc``) subsets that NASA Earthdata's Harmony and OPeNDAP deliver are HDF5 inside.
HDF5 is recognised by its signature (:data:`HDF5_SIGNATURE`) at byte 0, 512, 1024, 2048, ...
(HDF5 allows a user block of a power of two from 512 bytes before the superblock).
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
#: How the granules a folder may hold are described in help texts and messages.
GRANULES_DESCRIPTION = (
    f"SMAP HDF5 granules ({'/'.join(GRANULE_SUFFIXES)}, or .nc4/.nc subsets with HDF5 content)"
)
#: The 8 bytes that open an HDF5 superblock.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Groups whose presence makes an HDF5 file an SMAP granule (SPL2SMAP_S ``_1km``/``_3km``,
#: SPL3SMP ``_AM``/``_PM``).
SMAP_GROUP_PREFIX = "Soil_Moisture_Retrieval_Data"
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


def is_hdf5(path: PathLike) -> bool:
    """Whether the file ``path`` is HDF5 by content: the signature at 0, 512, 1024, 2048, ..."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size:
                fh.seek(offset)
                if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return True
                offset = max(512, 2 * offset)
    except OSError:
        return False
    return False


def is_smap_hdf5(path: PathLike) -> bool:
    """Whether ``path`` is HDF5 by content and holds an SMAP group (:data:`SMAP_GROUP_PREFIX`)."""
    if not is_hdf5(path):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return any(str(k).startswith(SMAP_GROUP_PREFIX) for k in f.keys())
    except (OSError, ValueError):
        return False


def is_granule(path: PathLike) -> bool:
    """Whether the file ``path`` is taken as a granule (module docstring): by name or content."""
    path = Path(path)
    return path.is_file() and (has_suffix(path, GRANULE_SUFFIXES) or is_smap_hdf5(path))


def granule_files(folder: PathLike) -> list[Path]:
    """The granules directly inside ``folder`` (:func:`is_granule`), sorted by name.

    Sidecars (NSIDC's ``.xml``, a ``README``) are neither granule suffixes nor HDF5: left out.
    """
    return sorted(p for p in Path(folder).iterdir() if is_granule(p))


def no_granule_problem(folder: PathLike) -> str:
    """Why ``folder`` offers no granule, as a message part: missing, empty or what it holds."""
    folder = Path(folder)
    if not folder.exists():
        return f"no such folder: expected a folder of {GRANULES_DESCRIPTION}"
    if not folder.is_dir():
        return f"is not a folder: expected a folder of {GRANULES_DESCRIPTION}"
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return f"the folder is empty: expected {GRANULES_DESCRIPTION}"
    shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
    return (
        f"the folder holds {len(names)} entr{'y' if len(names) == 1 else 'ies'} ({shown}) "
        f"but no granule: expected {GRANULES_DESCRIPTION}"
    )


def path_kind(path: PathLike) -> str | None:
    """The kind (one of :data:`KINDS`) of a file or folder, or ``None`` when no reader takes it.

    Files go by suffix: ``.nc``/``.nc4`` contract, ``.toml`` recipe, ``.zip`` ISMN download,
    ``.csv`` in-situ CSV. A folder holding granules directly (:func:`granule_files`) is
    ``granules``; else a folder with ISMN data files (``*.stm``) at any depth is ``ismn``.
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
    "GRANULES_DESCRIPTION",
    "GRANULE_SUFFIXES",
    "HDF5_SIGNATURE",
    "ISMN_SUFFIX",
    "KINDS",
    "NETCDF_SUFFIXES",
    "RECIPE_SUFFIX",
    "SMAP_GROUP_PREFIX",
    "XARRAY_RASTER_SUFFIXES",
    "ZIP_SUFFIX",
    "PathLike",
    "files_in",
    "granule_files",
    "has_suffix",
    "is_granule",
    "is_hdf5",
    "is_smap_hdf5",
    "no_granule_problem",
    "path_kind",
]
