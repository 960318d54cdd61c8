"""What the ST-Transformer is given besides the raw covariates: a reference's estimate to
correct (the *prior*) and each cell's context from its own observations.

**Prior.** A fast reference (``boosting`` by default; any baseline of the registry) estimates
every cell-day from the covariates; the network gets that estimate as an input channel and the
observed values as departures from it, and its output is a correction added to it, starting at
zero. So the network begins where the reference ends and spends its training on what the
reference cannot do: use the neighbours of the same day and the cell's other days.

No entry the network is trained to predict may be known to the prior that is handed to it,
or the network learns to trust a prior that has seen the answer; and the prior must be the same
kind of estimate when the model imputes as when it learns. So the prior is *cross-fitted by
date*: every calendar day belongs to one of ``folds`` groups (a fixed hash of the date), and
``folds`` references are fitted, each without the days of its group (and never with the
validation entries), and one more on all of them. A day that gave the fit observations is
estimated by the reference of its group, which never saw it; a day that gave none (a validation
day held out whole, a later period) by the full reference, which never saw it either.

For point gaps the rest of the day is seen, and the day's own observations say how the day
departs from the references (the trees know the covariates, not the day's weather anomaly).
So with ``smooth`` the prior adds the day's observed departures smoothed around each entry
with that entry's own value left out (regression kriging's second stage, a Gaussian kernel
chosen in ``fit`` by leave-one-out error): an entry's prior still never knows the entry.
It is off for whole-day gaps, where the day of a target has nothing else to show.

The fitted references are kept; checkpoints store them with skops, and loading accepts only the
types of :data:`TRUSTED_TYPES` (nothing is unpickled). After training, the imputer refits the
full reference with its own validation entries (:meth:`CrossFittedPrior.refit_full`).

**Cell context.** Each cell's observed mean, spread and mean offset from the coarse product,
from the observations given (in ``fit``: without the validation entries), as static inputs:
what the per-cell references know about a cell and a 72-day window does not show.
"""

from __future__ import annotations

import inspect
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
import xarray as xr

from ...data.contract import TARGET
from ..base import Imputer
from ..baselines import BASELINES
from ..covariate import COVARIATE_BASELINES
from ..covariate.boosting import GradientBoostingImputer, predict_by_day
from ..features import derived_features
from ..smoothing import choose_smoother, smoothed_departures

#: Names of the cell-context channels, in order.
CONTEXT_NAMES = ("cell_mean", "cell_sd", "cell_coarse_offset")
#: Settings of a reference used as a prior, where they differ from the reference's own. The
#: boosting prior uses 100 trees of 63 leaves: as accurate as the 300 trees of 31 leaves of the
#: ``boosting`` reference on the built-in scenario (seed 0: 0.0132 against 0.0131 m³/m³ against
#: the truth, whole days held out) and a third of its prediction time, which imputation pays.
PRIOR_SETTINGS: dict[str, dict] = {"boosting": {"max_iter": 100, "max_leaf_nodes": 63}}
#: Types a saved prior may hold beyond skops's defaults: the references of this package and the
#: three parts of scikit-learn's gradient boosting that skops does not trust by itself.
TRUSTED_TYPES = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    "stimpute_core.models.covariate.boosting.GradientBoostingImputer",
    "stimpute_core.models.covariate.boosting.SmoothedBoostingImputer",
    "stimpute_core.models.covariate.regression.CoarseOffsetImputer",
    "stimpute_core.models.covariate.regression.CovariateRegressionImputer",
)
#: Where the references lived before every imputer moved under ``stimpute_core.models``: a prior
#: saved then (the shipped checkpoint) names these modules, and loading maps them to today's.
LEGACY_MODULES = {
    "stimpute_core.boosting": "stimpute_core.models.covariate.boosting",
    "stimpute_core.covariate_baselines": "stimpute_core.models.covariate.regression",
}


def _read_prior_file(path: Path) -> bytes:
    """The bytes of a saved prior, with module paths of :data:`LEGACY_MODULES` renamed in its
    schema (the arrays are left as they are)."""
    data = Path(path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zin:
        schema = zin.read("schema.json").decode()
        renamed = schema
        for old, new in LEGACY_MODULES.items():
            renamed = renamed.replace(f'"__module__": "{old}"', f'"__module__": "{new}"')
        if renamed == schema:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
            for item in zin.infolist():
                body = renamed.encode() if item.filename == "schema.json" else zin.read(item)
                zout.writestr(item.filename, body)
    return out.getvalue()


def _reference(name: str, seed: int) -> Imputer:
    references = {**BASELINES, **COVARIATE_BASELINES}
    if name not in references:
        raise ValueError(f"prior={name!r}: expected one of the references {', '.join(references)}")
    cls = references[name]
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


def _estimate(
    model: Imputer, ds: xr.Dataset, days: np.ndarray, derived: dict | None = None
) -> np.ndarray:
    """A fitted reference's estimate for the entries of ``ds`` on ``days`` (NaN elsewhere).

    Gradient boosting predicts from each cell's own covariates and so serves any grid; a
    per-cell reference refuses a grid other than the one it was fitted on.
    """
    if isinstance(model, GradientBoostingImputer):
        return model.predict_cube(ds, check_grid=False, days=days, derived=derived)
    blank = ds.assign({TARGET: ds[TARGET].where(False)})
    out = np.asarray(model.impute(blank).values, dtype=np.float64)
    out[~days] = np.nan
    return out


def _day_number(times: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray((times.normalize() - pd.Timestamp("1970-01-01")).days, dtype=np.int64)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def fold_of(times: pd.DatetimeIndex, folds: int, scheme: str = "splitmix64") -> np.ndarray:
    """The group of each calendar day: a fixed hash of the date, so one day falls in the same
    group in every Dataset.

    ``splitmix64`` (the default) mixes every bit of the day number, so neighbouring days and
    days 6 or 12 apart (the satellite's revisits) fall in unrelated groups. ``multiplicative``
    is the hash of checkpoints written before it; its groups recur quasi-periodically in time.
    """
    day = _day_number(times).astype(np.uint64)
    if scheme == "multiplicative":
        mixed = (day * np.uint64(2654435761)) % np.uint64(2**32)
        return ((mixed >> np.uint64(7)) % np.uint64(folds)).astype(np.int64)
    if scheme != "splitmix64":
        raise ValueError(f"day-group scheme {scheme!r}: expected 'splitmix64' or 'multiplicative'")
    return (_splitmix64(day) % np.uint64(folds)).astype(np.int64)


def _day_keys(ds: xr.Dataset) -> np.ndarray:
    return _splitmix64(_day_number(pd.DatetimeIndex(ds["time"].values)))


class CrossFittedPrior:
    """``folds`` references, each fitted without the days of its group, one ``full`` reference
    fitted on all days, and optionally a same-day smoother of the departures (see the module
    text).

    A day that gave the fit an observation (``seen``, its key) is estimated by the reference of
    its group, which never saw it; any other day by the full reference, which never saw it
    either and knows a tenth more. With ``smooth`` (width, shrinkage), the day's observed
    departures from that estimate, smoothed around each entry without the entry itself
    (:func:`smoothed_departures`), are added: for point gaps, where the rest of the day is
    seen, what regression kriging adds to a regression.
    """

    def __init__(
        self,
        models: list[Imputer],
        full: Imputer | None = None,
        seen: np.ndarray | None = None,
        scheme: str = "splitmix64",
        smooth: tuple[float, float] | None = None,
    ):
        if len(models) < 2:
            raise ValueError(f"a cross-fitted prior needs at least 2 references, got {len(models)}")
        if (full is None) != (seen is None):
            raise ValueError("a full reference needs the keys of the days it was fitted on")
        self.models = models
        self.full = full
        self.seen = None if seen is None else np.unique(np.asarray(seen, dtype=np.uint64))
        self.scheme = scheme
        self.smooth = None if smooth is None else (float(smooth[0]), float(smooth[1]))

    @classmethod
    def fit(
        cls,
        ds: xr.Dataset,
        name: str,
        exclude: np.ndarray,
        *,
        folds: int = 3,
        seed: int = 0,
        smooth: bool = False,
    ) -> CrossFittedPrior:
        """Fit on the observations of ``ds``, the ``exclude`` entries blanked for every fit;
        with ``smooth``, pick the smoother by leave-one-out error
        (:func:`~stimpute_core.models.smoothing.choose_smoother`)."""
        if folds < 2:
            raise ValueError(f"prior folds must be at least 2, got {folds}")
        values = ds[TARGET].values
        usable = np.isfinite(values) & ~np.asarray(exclude, dtype=bool)
        keys = _day_keys(ds)
        group = (keys % np.uint64(folds)).astype(np.int64)
        models = []
        for k in range(folds):
            keep = usable & (group != k)[:, None, None]
            if not keep.any():
                raise ValueError(
                    f"too few observations to cross-fit the prior: group {k + 1} of {folds} "
                    "leaves none to fit on"
                )
            models.append(
                fit_reference(ds.assign({TARGET: ds[TARGET].where(keep)}), name, seed=seed)
            )
        full = fit_reference(ds.assign({TARGET: ds[TARGET].where(usable)}), name, seed=seed)
        prior = cls(models, full, keys[usable.any(axis=(1, 2))])
        if smooth:
            given = ds.assign({TARGET: ds[TARGET].where(usable)})
            base = prior.estimate(given)
            prior.smooth = choose_smoother(np.where(usable, values, np.nan) - base)
        return prior

    def refit_full(self, ds: xr.Dataset, name: str, *, seed: int = 0) -> None:
        """Refit the full reference on every observation of ``ds``. The imputer calls it after
        training, with the entries it had kept out to choose its weights: they are part of the
        data it was given, and the full reference only estimates days no reference was fitted
        on. In an area with few observed days (60-odd in the second study area), a tenth of
        them held back costs that reference about a fifth of its accuracy."""
        self.full = fit_reference(ds, name, seed=seed)

    def estimate(self, ds: xr.Dataset) -> np.ndarray:
        """Every entry of ``ds`` estimated by references that never saw its day, plus (with
        ``smooth``) the smoothed departures of the other observed entries of its day."""
        ds = _without_derived(ds)
        shape = ds[TARGET].shape
        folds = len(self.models)
        times = pd.DatetimeIndex(ds["time"].values)
        if self.scheme == "multiplicative":
            group = fold_of(times, folds, self.scheme)
        else:
            keys = _day_keys(ds)
            group = (keys % np.uint64(folds)).astype(np.int64)
            if self.full is not None:
                group = np.where(np.isin(keys, self.seen), group, -1)
        refs = [*self.models, *([self.full] if self.full is not None else [])]
        if all(isinstance(m, GradientBoostingImputer) for m in refs):
            # One pass over the features for all the references (the full one is the last).
            which = np.where(group < 0, len(refs) - 1, group) if self.full is not None else group
            out = predict_by_day(refs, ds, which, derived_features(ds))
        else:
            out = np.empty(shape, dtype=np.float64)
            for k, model in [(-1, self.full), *enumerate(self.models)]:
                days = group == k
                if model is not None and days.any():
                    out[days] = _estimate(model, ds, days)[days]
        if self.smooth is not None:
            dep = np.asarray(ds[TARGET].values, dtype=np.float64) - out
            out = out + smoothed_departures(dep, *self.smooth)
        return out

    def save(self, path: Path) -> None:
        """Write the references with skops (no pickle), deflate-compressed."""
        state = {
            "scheme": self.scheme,
            "folds": list(self.models),
            "full": self.full,
            "seen": self.seen,
            "smooth": None if self.smooth is None else list(self.smooth),
        }
        sio.dump(state, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)

    @classmethod
    def load(cls, path: Path) -> CrossFittedPrior:
        """Read references written by :meth:`save`, refusing any type outside
        :data:`TRUSTED_TYPES` (beyond skops's own defaults: numpy, builtins, scikit-learn).

        A file holding a bare list is a prior written before the full reference: its days keep
        the multiplicative hash they were grouped by.
        """
        try:
            data = _read_prior_file(path)
        except (OSError, KeyError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a prior written by this package ({err})") from err
        untrusted = sio.get_untrusted_types(data=data)
        unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unexpected:
            raise ValueError(
                f"{path}: the saved prior holds types this package does not load: "
                f"{', '.join(unexpected)}"
            )
        state = sio.loads(data, trusted=untrusted)
        if isinstance(state, list):
            state = {"scheme": "multiplicative", "folds": state, "full": None, "seen": None}
        models = state.get("folds") if isinstance(state, dict) else None
        full = state.get("full") if isinstance(state, dict) else None
        if (
            not isinstance(models, list)
            or not all(isinstance(m, Imputer) for m in models)
            or not (full is None or isinstance(full, Imputer))
        ):
            raise ValueError(f"{path}: expected fitted references")
        smooth = state.get("smooth")
        return cls(
            models,
            full,
            state.get("seen"),
            str(state.get("scheme")),
            None if smooth is None else tuple(smooth),
        )


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
