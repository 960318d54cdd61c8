"""Calibrated intervals for the ST-Transformer: split-conformal residual quantiles from the
validation entries that chose its weights.

``fit`` keeps a share of the observed entries (whole days or single entries, as ``mask_kind``
says) out of every training input to stop early. Those entries are the calibration set: after
training, the network imputes the training data with them hidden, exactly as ``impute`` would,
and the residuals (observation − estimate) are kept per class of gap length and kind of day
(:class:`~stimpute_core.models.conformal.ResidualQuantiles`), before the prior is refitted on
every observation. Interval = point estimate + those residual quantiles for the entry's class.

Why this and not a quantile head or an ensemble: it costs one imputation of the training data
(seconds) instead of a second network or several trainings, keeps the point estimate and its
accuracy unchanged, and gives intervals whose coverage holds by construction on entries
exchangeable with the calibration ones. The calibration entries also chose the epoch kept
(early stopping), which makes their residuals very slightly optimistic; the benchmark measures
coverage on the evaluation hold-out, which training never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ...data.contract import TARGET
from ..base import DEFAULT_QUANTILES
from ..conformal import ResidualQuantiles, strata, with_bands

if TYPE_CHECKING:
    from .model import STTransformerImputer


def calibrate(
    model: STTransformerImputer, known: xr.Dataset, values: np.ndarray, val_mask: np.ndarray
) -> ResidualQuantiles:
    """Residual quantiles at the validation entries ``val_mask`` (hidden in ``known``; their
    observations in ``values``) of the just-trained ``model``."""
    estimate = model.predict_cube(known)
    residual = np.asarray(values, dtype=np.float64)[val_mask] - estimate[val_mask]
    observed = np.isfinite(np.asarray(known[TARGET].values))
    return ResidualQuantiles.fit(residual, strata(observed)[val_mask])


def distribution(
    model: STTransformerImputer, ds: xr.Dataset, quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> xr.Dataset:
    """The field and its quantiles (``soil_moisture_quantile``) for ``ds``."""
    model._check_fitted("net_", "normalizer_")
    bands = getattr(model, "calibration_", None)
    if bands is None:
        raise ValueError(
            "this ST-Transformer checkpoint was saved without a calibration (made before "
            "intervals were added): train it again with `stimpute train` to get intervals"
        )
    return with_bands(ds, model.impute(ds), bands, quantiles, model)
