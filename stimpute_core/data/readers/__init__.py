"""Readers: real files (SMAP granules, in-situ archives, covariate rasters) into the data contract.

Like xarray's backends, each module reads one family of formats and returns contract pieces on
an EASE-Grid 2.0 1 km grid; :mod:`.build` merges them into one contract Dataset.

- :mod:`.formats`: file suffixes and which reader reads a path (the one place that decides);
- SMAP: :mod:`.spl2smap_s` (granules -> ``soil_moisture``), :mod:`.spl3smp` (-> ``sm_36km``),
  sharing :mod:`.smap_common`;
- in situ: :mod:`.ismn`, :mod:`.insitu_csv` (sharing :mod:`.insitu_common`) and
  :mod:`.stations` (attaching stations to grid cells);
- covariates: :mod:`.daymet` and :mod:`.rasters`, both regridding through :mod:`.regrid`;
- :mod:`.smap`, :mod:`.insitu` and :mod:`.covariates` re-export the readers under their older
  paths.

Only light names are re-exported here: the readers themselves pull in h5py, rasterio and ismn,
which ``import stimpute_core.data.readers`` (done by the CLI at start-up) should not pay for.
"""

from .formats import GRANULE_SUFFIXES, KINDS, path_kind
from .report import LoadReport, ReaderError

__all__ = ["GRANULE_SUFFIXES", "KINDS", "LoadReport", "ReaderError", "path_kind"]
