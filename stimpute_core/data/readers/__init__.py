"""Readers: real files (SMAP granules, in-situ archives, covariate rasters) into the data contract.

Like xarray's backends, each module reads one family of formats and returns contract pieces on
an EASE-Grid 2.0 1 km grid; :mod:`.build` merges them into one contract Dataset.
"""

from .report import LoadReport, ReaderError

__all__ = ["LoadReport", "ReaderError"]
