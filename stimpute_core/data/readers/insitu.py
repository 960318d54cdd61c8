"""In-situ readers under their historical path (imports only).

ISMN lives in :mod:`.ismn`, the long CSV in :mod:`.insitu_csv`, station matching in
:mod:`.stations`; the shared decisions are documented in :mod:`.insitu_common`.
"""

from .insitu_csv import CSV_COLUMNS, read_insitu_csv
from .ismn import read_ismn
from .stations import attach_stations

__all__ = ["CSV_COLUMNS", "attach_stations", "read_insitu_csv", "read_ismn"]
