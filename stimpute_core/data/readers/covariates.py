"""Covariate readers under their historical path (imports only).

Daymet lives in :mod:`.daymet`, the static rasters in :mod:`.rasters`; both regrid through
:mod:`.regrid`.
"""

from .daymet import DAYMET_LONG_NAMES, DAYMET_UNITS, DAYMET_VARIABLES, read_daymet
from .rasters import (
    NLCD_TO_IGBP,
    UNCLASSIFIED,
    land_cover_from_raster,
    read_static_covariates,
    read_static_raster,
    terrain_from_elevation,
)

__all__ = [
    "DAYMET_LONG_NAMES",
    "DAYMET_UNITS",
    "DAYMET_VARIABLES",
    "NLCD_TO_IGBP",
    "UNCLASSIFIED",
    "land_cover_from_raster",
    "read_daymet",
    "read_static_covariates",
    "read_static_raster",
    "terrain_from_elevation",
]
