"""SMAP readers under their historical path (imports only).

SPL2SMAP_S lives in :mod:`.spl2smap_s`, SPL3SMP in :mod:`.spl3smp`; the shared decisions are
documented in :mod:`.smap_common`.
"""

from .smap_common import QUALITIES, UNITS, granule_date_from_name
from .spl2smap_s import RESOLUTIONS, GranuleCells, read_smap_cube, read_spl2smap_s
from .spl3smp import OVERPASSES, read_sm_36km, read_spl3smp

__all__ = [
    "OVERPASSES",
    "QUALITIES",
    "RESOLUTIONS",
    "UNITS",
    "GranuleCells",
    "granule_date_from_name",
    "read_sm_36km",
    "read_smap_cube",
    "read_spl2smap_s",
    "read_spl3smp",
]
