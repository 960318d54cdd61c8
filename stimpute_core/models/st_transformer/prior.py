"""What the ST-Transformer is given besides the raw covariates: a reference's estimate to
correct (the *prior*) and each cell's context from its own observations.

**Prior.** A fast reference (``boosting`` by default; any baseline of the registry) estimates
every cell-day from the covariates; the network gets that estimate as an input channel and the
observed values as departures from it, and its output is a correction added to it, starting at
zero. So the network begins where the reference ends and spends its training on what the
reference cannot do: use the neighbours of the same day and the cell's other days.

No entry the network is trained to predict may be known to the prior that is handed to it,
or the network learns to trust a prior that has seen the answer. In ``fit`` the prior is
therefore *cross-fitted*: the days are dealt at random into ``folds`` groups, and the estimate
for the days of one group comes from a reference fitted without them (and never with the
validation entries), so the network learns to correct a prior that has not seen the day, as on
a later period. The reference fitted on all the training observations (less the validation
entries) is kept and estimates every Dataset imputed afterwards; checkpoints store it with
skops, and loading accepts only the types of :data:`TRUSTED_TYPES` (nothing is unpickled).

**Cell context.** Each cell's observed mean, spread and mean offset from the coarse product,
from the observations given (in ``fit``: without the validation entries), as static inputs:
what the per-cell references know about a cell and a 72-day window does not show.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import skops.io as sio
import xarray as xr

from ...boosting import GradientBoostingImputer
from ...data.contract import TARGET
from ...imputation import Imputer

#: Names of the cell-context channels, in order.
CONTEXT_NAMES = ("cell_mean", "cell_sd", "cell_coarse_offset")
#: Settings of a reference used as a prior, where they differ from the reference's own. The
#: boosting prior uses 100 trees of 63 leaves: as accurate as the 300 trees of 31 leaves of the
#: ``boosting`` reference on the built-in scenario (0.0132 against 0.0131 m³/m³ against the
#: truth, whole days held out) and a third of its prediction time, which imputation pays.
PRIOR_SETTINGS: dict[str, dict] = {"boosting": {"max_iter": 100, "max_leaf_nodes": 63}}
#: Types a saved prior may hold beyond skops's defaults: the references of this package and the
#: three parts of scikit-learn's gradient boosting that skops does not trust by itself.
TRUSTED_TYPES = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "stimpute_core.boosting.GradientBoostingImputer",
    "stimpute_core.covariate_baselines.CoarseOffsetImputer",
    "stimpute_core.covariate_baselines.CovariateRegressionImputer",
)


def _reference(name: str, seed: int) -> Imputer:
    from .. import ALL_BASELINES

    if name not in ALL_BASELINES:
        raise ValueError(
            f"prior={name!r}: expected one of the references {', '.join(ALL_BASELINES)}"
        )
    cls = ALL_BASELINES[name]
    settings = dict(PRIOR_SETTINGS.get(name, {}))
    if "seed" in inspect.signature(cls).parameters:
        settings["seed"] = seed
    return cls(**settings)


def _without_derived(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` less the derived inputs the imputer added (a reference derives its own)."""
    return ds.drop_vars([v for v in ds.data_vars if ds[v].attrs.get("derived") == "yes"])


def fit_reference(ds: xr.Dataset, name: str, *, seed: int = 0) -> Imputer:
    """The reference ``name`` (with :data:`PRIOR_SETTINGS`) fitted on the observations of ``ds``."""
    return _reference(name, seed).fit(_without_derived(ds))


def estimate(model: Imputer, ds: xr.Dataset) -> np.ndarray:
    """A fitted reference's estimate for every entry of ``ds``, observed ones included.

    Gradient boosting predicts from each cell's own covariates and so serves any grid; a
    per-cell reference refuses a grid other than the one it was fitted on.
    """
    ds = _without_derived(ds)
    if isinstance(model, GradientBoostingImputer):
        return model.predict_cube(ds, check_grid=False)
    blank = ds.assign({TARGET: ds[TARGET].where(False)})
    return np.asarray(model.impute(blank).values, dtype=np.float64)


def save_reference(model: Imputer, path: Path) -> None:
    """Write a fitted reference with skops (no pickle)."""
    sio.dump(model, path)


def load_reference(path: Path) -> Imputer:
    """Read a reference written by :func:`save_reference`, refusing any type outside
    :data:`TRUSTED_TYPES` (beyond skops's own defaults: numpy, builtins, scikit-learn)."""
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ValueError(
            f"{path}: the saved prior holds types this package does not load: "
            f"{', '.join(unexpected)}"
        )
    return sio.load(path, trusted=untrusted)


def cross_fitted_prior(
    ds: xr.Dataset,
    name: str,
    exclude: np.ndarray,
    *,
    folds: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold estimate of the reference for every entry of ``ds`` (time, y, x).

    Entries flagged in ``exclude`` (the validation entries) are blanked for every fit. The days
    are dealt at random into ``folds`` groups; each group of days is predicted by a reference
    fitted on the other groups only.
    """
    if folds < 2:
        raise ValueError(f"prior folds must be at least 2, got {folds}")
    values = ds[TARGET].values
    usable = np.isfinite(values) & ~np.asarray(exclude, dtype=bool)
    rng = np.random.default_rng(seed + 101)
    days = rng.permutation(np.arange(values.shape[0]) % folds)
    out = np.empty(values.shape, dtype=np.float64)
    for k in range(folds):
        keep = usable & (days != k)[:, None, None]
        if not keep.any():
            raise ValueError("too few observations to cross-fit the prior")
        train = ds.assign({TARGET: ds[TARGET].where(keep)})
        model = fit_reference(train, name, seed=seed)
        out[days == k] = estimate(model, ds)[days == k]
    return out


def cell_context(values: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
    """(y, x, 3): each cell's observed mean, standard deviation and mean of (value - coarse).

    ``values`` (time, y, x) holds NaN where not observed; ``coarse`` is the coarse product with
    its gaps filled (or None). A cell with no observation gets the mean over all cells (and the
    pooled spread); with one observation its spread is the pooled one.
    """
    obs = np.isfinite(values)
    count = obs.sum(axis=0)
    v = np.where(obs, values, 0.0)
    if not obs.any():
        raise ValueError(f"'{TARGET}' has no observed value to describe the cells with")
    overall = float(values[obs].mean())
    pooled = float(values[obs].std()) or 1.0
    mean = np.where(count > 0, v.sum(axis=0) / np.maximum(count, 1), overall)
    sq = np.where(obs, (values - mean) ** 2, 0.0).sum(axis=0)
    sd = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)), pooled)
    if coarse is None:
        offset = np.zeros_like(mean)
    else:
        diff = np.where(obs, values - coarse, 0.0)
        total = float(diff.sum()) / max(int(count.sum()), 1)
        offset = np.where(count > 0, diff.sum(axis=0) / np.maximum(count, 1), total)
    return np.stack([mean, sd, offset], axis=-1)
