"""Data: the contract, the built-in TxSON scenario, selection, NetCDF and Zarr input/output and
readers."""

from .contract import (
    DYNAMIC_COVARIATES,
    INSITU,
    LAND_COVER,
    STATIC_COVARIATES,
    TARGET,
    TRUTH,
    ContractError,
    covariate_names,
    land_cover_classes,
    validate,
)
from .io import atomic_write, open_dataset, write_dataset, write_netcdf
from .selection import REGIONS, parse_region, select_region, select_time, station_cells

__all__ = [
    "DYNAMIC_COVARIATES",
    "INSITU",
    "LAND_COVER",
    "REGIONS",
    "STATIC_COVARIATES",
    "TARGET",
    "TRUTH",
    "ContractError",
    "atomic_write",
    "covariate_names",
    "land_cover_classes",
    "open_dataset",
    "parse_region",
    "select_region",
    "select_time",
    "station_cells",
    "validate",
    "write_dataset",
    "write_netcdf",
]
