"""SMAP files as scenes: which version of a scene a load reads, and a granule's quality fallback.

Versions (both products): the latest of each scene (SPL2SMAP_S) or day (SPL3SMP) is read.

NSIDC re-processes granules: the same scene comes again under a newer Composite Release ID
(``R18240`` then ``R19240``: ``R``, launch indicator, major version, 3-digit minor version) or
again under the same CRID with a higher product counter (``_001`` then ``_002``: "number of
times the file was generated under the same version", SPL2SMAP_S user guide, file naming).
Averaging such copies would weigh a scene twice and mix algorithm versions, so only the latest
is read: highest CRID number, then highest counter. The scene is everything in the name before
the CRID: for SPL2SMAP_S the Sentinel-1 code, both timestamps and the tile; for SPL3SMP(_E) the
day. Names that do not follow the naming are always read (nothing to compare them with).

Quality fallback (SPL2SMAP_S 1 km): ``retrieval_qual_flag_1km`` is inferred by analogy with the
3 km field and not confirmed in a public dump (the project's domain notes list
``retrieval_qual_flag_3km`` as seen in real files, the 1 km one as unverified). A granule
without it is not skipped: a 1 km cell takes the flag of the 3 km cell that contains it (row // 3,
col // 3 of its M01 index: the 1 km retrieval is disaggregated from that 3 km one, whose bit 0
"recommended quality" follows NSIDC's flag help); when the 3 km flag is missing too, every valid
retrieval is accepted (fill and valid range still apply). :data:`FALLBACKS` names the two cases.
"""

from __future__ import annotations

import os
import re

import h5py
import numpy as np

from ..grid import GRID_SHAPE
from .smap_common import recommended, scalar_attr

__all__ = ["FALLBACKS", "coarse_recommended", "latest_versions", "valid_index"]

#: What judged the cells of a granule without its own ``retrieval_qual_flag`` field.
FALLBACKS = ("retrieval_qual_flag_3km of the containing 3 km cell", "none: all retrievals accepted")

_VERSIONED = re.compile(r"^(SMAP_L[23]_.+?)_([A-Z])(\d{5})_(\d{3})\.[A-Za-z0-9]+$")


def latest_versions(files: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The files to read (in the given order) and, for each left out, ``(file, why)``.

    A file is left out when a newer version of its scene is among ``files`` (see the module
    docstring), or when it is the very same granule given twice (the first one is read).
    """
    best: dict[str, tuple[tuple[int, int, str], str]] = {}
    for path in files:
        match = _VERSIONED.match(os.path.basename(path))
        if match is None:
            continue
        scene, letter, crid, counter = match.groups()
        rank = (int(crid), int(counter), letter)
        if scene not in best or rank > best[scene][0]:
            best[scene] = (rank, path)
    keep, dropped = [], []
    for path in files:
        match = _VERSIONED.match(os.path.basename(path))
        chosen = best[match.group(1)][1] if match else path
        if chosen == path and path not in keep:
            keep.append(path)
        elif chosen == path or os.path.basename(chosen) == os.path.basename(path):
            dropped.append((path, "the same granule given twice: read once"))
        else:
            dropped.append(
                (
                    path,
                    f"an older version of the scene in {os.path.basename(chosen)}, which is "
                    "read instead (latest CRID, then latest counter)",
                )
            )
    return keep, dropped


def valid_index(ds: h5py.Dataset, data: np.ndarray, size: int) -> np.ndarray:
    """Mask of EASE indices that hold a cell of the global grid (not fill, not off the grid)."""
    ok = (data >= 0) & (data < size)
    fill = scalar_attr(ds, "_FillValue", None)
    if fill is not None:
        ok &= data != fill
    return ok


def coarse_recommended(f: h5py.File, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """Whether the 3 km cell holding each 1 km cell (global M01 ``rows``/``cols``) is recommended.

    ``None`` when the granule ``f`` has no usable 3 km flag and index fields.
    """
    group = f.get("Soil_Moisture_Retrieval_Data_3km")
    if not isinstance(group, h5py.Group):
        return None
    fields = [group.get(n) for n in ("EASE_row_index_3km", "EASE_column_index_3km")]
    flag = group.get("retrieval_qual_flag_3km")
    parts = (*fields, flag)
    if not all(isinstance(d, h5py.Dataset) for d in parts) or len({d.shape for d in parts}) > 1:
        return None
    nrows, ncols = GRID_SHAPE["M03"]
    r3, c3 = (np.asarray(d[()], dtype=np.int64) for d in fields)
    good = valid_index(fields[0], r3, nrows) & valid_index(fields[1], c3, ncols)
    good &= recommended(flag)
    keys = np.unique(r3[good] * ncols + c3[good])
    return np.isin((rows // 3) * ncols + cols // 3, keys)
