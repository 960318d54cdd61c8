"""Baselines that use the covariates: the coarse product plus an offset, per-cell regression,
MICE and a random forest.

A model that uses the weather and the coarse 36 km product has to be compared with simple
methods that use them too, or a benchmark flatters it: when whole days are missing, every
covariate-blind method can only return something close to each cell's mean. ``coarse`` and
``regression`` are such simple references; ``mice`` and ``forest`` are the covariate methods of
the ST-Transformer paper's tables (scikit-learn's ``IterativeImputer`` and a depth-limited
``RandomForestRegressor``, as the paper ran them).

All follow :mod:`stimpute_core.models.baselines`: settings in the constructor, ``fit`` learns from the
observed ``soil_moisture`` and the covariates (never the truth), ``impute`` returns a complete
field with the observed values passed through, falling back on the per-cell mean, and refuses
another grid or a Dataset without the covariates it was fitted with.
"""

from __future__ import annotations

from ..baselines.common import _CellMeanImputer
from .boosting import GradientBoostingImputer, SmoothedBoostingImputer
from .regression import CoarseOffsetImputer, CovariateRegressionImputer
from .tabular import MICEImputer, RandomForestImputer

#: Covariate-aware baselines by their ``name``.
COVARIATE_BASELINES: dict[str, type[_CellMeanImputer]] = {
    cls.name: cls
    for cls in (
        CoarseOffsetImputer,
        CovariateRegressionImputer,
        MICEImputer,
        RandomForestImputer,
        GradientBoostingImputer,
        SmoothedBoostingImputer,
    )
}

__all__ = [
    "COVARIATE_BASELINES",
    "CoarseOffsetImputer",
    "CovariateRegressionImputer",
    "GradientBoostingImputer",
    "MICEImputer",
    "RandomForestImputer",
    "SmoothedBoostingImputer",
]
