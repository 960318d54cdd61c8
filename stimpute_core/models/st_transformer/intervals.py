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
from ..conformal import ResidualQuantiles, check_target_kind, noise_variance, strata, with_bands
from .data import fingerprint

if TYPE_CHECKING:
    from .model import STTransformerImputer


def calibrate(
    model: STTransformerImputer,
    known: xr.Dataset,
    values: np.ndarray,
    val_mask: np.ndarray,
    estimate: np.ndarray | None = None,
) -> ResidualQuantiles:
    """Residual quantiles at the validation entries ``val_mask`` (hidden in ``known``; their
    observations in ``values``) of the just-trained ``model`` (``estimate``: its imputation of
    ``known``, made here when None)."""
    estimate = model.predict_cube(known) if estimate is None else estimate
    residual = np.asarray(values, dtype=np.float64)[val_mask] - estimate[val_mask]
    observed = np.isfinite(np.asarray(known[TARGET].values))
    noise = noise_variance(known[TARGET].values)
    return ResidualQuantiles.fit(residual, strata(observed)[val_mask], noise)


def calibrate_trained(
    model: STTransformerImputer, ds: xr.Dataset, with_estimate: bool = False
) -> ResidualQuantiles | tuple[ResidualQuantiles, np.ndarray, np.ndarray]:
    """The calibration ``fit`` would have stored, for a model trained on exactly ``ds`` (the
    same data with the same entries hidden) before checkpoints kept one.

    The validation entries are drawn again as ``fit`` drew them (same kind, share and seed); the
    prior's full reference, refitted with them after training, is fitted again without them for
    the imputation the residuals come from (the cross-fitted ones never saw them), then put
    back. ``with_estimate``: also return the imputation the residuals came from and the
    validation entries (to score the intervals there against a synthetic truth). Given other
    data than the training data, held-out entries may have been trained on and the intervals
    would come out too narrow: only for the data the model was fitted on.
    """
    from .prior import fit_reference
    from .training import validation_mask

    model._check_fitted("net_", "normalizer_")
    ds = model._with_inputs(ds)
    values = np.asarray(ds[TARGET].values, dtype=np.float64)
    share = model.training_["val_fraction"]
    val_mask = validation_mask(np.isfinite(values), model.mask_kind, share, seed=model.seed + 7)
    known = ds.assign({TARGET: ds[TARGET].where(~val_mask)})
    prior = getattr(model, "prior_model_", None)
    full = None if prior is None else prior.full
    try:
        if prior is not None:
            prior.full = fit_reference(known, model._prior(), seed=model.seed)
        estimate = model.predict_cube(known)
        bands = calibrate(model, known, values, val_mask, estimate)
        return (bands, estimate, val_mask) if with_estimate else bands
    finally:
        if prior is not None:
            prior.full = full


def distribution(
    model: STTransformerImputer,
    ds: xr.Dataset,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    target: str = "observation",
) -> xr.Dataset:
    """The field and its quantiles (``soil_moisture_quantile``) for ``ds`` and ``target``.

    The field of the last Dataset is kept, so asking for the other target (or other levels)
    of the same data does not run the network again."""
    model._check_fitted("net_", "normalizer_")
    check_target_kind(target)
    bands = getattr(model, "calibration_", None)
    if bands is None:
        raise ValueError(
            "this ST-Transformer checkpoint was saved without a calibration (made before "
            "intervals were added): train it again with `stimpute train` to get intervals"
        )
    key = fingerprint(ds)
    cached = getattr(model, "_point", None)
    if cached is None or cached[0] != key:
        cached = (key, model.impute(ds))
        model._point = cached
    return with_bands(ds, cached[1], bands, quantiles, model, target)
