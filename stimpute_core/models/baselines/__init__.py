"""Classical gap-filling baselines: mean, climatology, linear interpolation, IDW, DINEOF, MF and Kalman.

Each is an :class:`~stimpute_core.models.base.Imputer`: settings go to the constructor, ``fit(ds)``
learns from the observed ``soil_moisture(time, y, x)`` only (never the truth), ``impute(ds)``
returns a complete field for ``ds`` via :func:`~stimpute_core.models.base.as_output`, so observed
values pass through unchanged. Every baseline fits a per-cell mean (the mean of all observed values
for cells never observed) and falls back on it wherever its own method has nothing to go on, so no
output holds NaN. ``impute`` accepts another period on the fitted grid and refuses any other grid.
"""

from __future__ import annotations

from ..base import Imputer
from .kalman import KalmanSmoothingImputer
from .lowrank import DINEOFImputer, MatrixFactorizationImputer
from .spatial import IDWImputer
from .temporal import ClimatologyImputer, LinearInterpolationImputer, MeanImputer

#: Baseline classes by their ``name``.
BASELINES: dict[str, type[Imputer]] = {
    cls.name: cls
    for cls in (
        MeanImputer,
        ClimatologyImputer,
        LinearInterpolationImputer,
        IDWImputer,
        DINEOFImputer,
        MatrixFactorizationImputer,
        KalmanSmoothingImputer,
    )
}
