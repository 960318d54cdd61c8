"""The evaluation protocol, in one place for the CLI, the app, the notebooks and the benchmark
scripts.

Scores on held-out observations are honest only if the model never saw them. The protocol:
draw the hold-out (:data:`~stimpute_core.validation.EVALUATION_HOLDOUT`) on the *whole* Dataset,
hide it (:func:`hide_evaluation`), fit on what is left (:func:`fit_for_evaluation`, which also
records the hold-out on a model that keeps a training record, so a saved checkpoint says how it
was trained) and score on the hidden entries. :func:`impute_for_evaluation` gives both fields a
view needs: one from a model fitted on every observation (maps, stations) and one from a model
fitted with the hold-out hidden (scores). A fitted model (a loaded checkpoint) goes through the
same calls wrapped in :class:`~stimpute_core.models.pretrained.Pretrained`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .masks import apply_holdout
from .models.base import DEFAULT_QUANTILES, Imputer
from .validation import EVALUATION_HOLDOUT, evaluation_mask, mask_for

#: Key of the hold-out in a model's training record (``training_``), as checkpoints store it.
HOLDOUT_KEY = "holdout"


def hide_evaluation(
    ds: xr.Dataset,
    *,
    within: xr.Dataset | None = None,
    mask: xr.DataArray | None = None,
) -> tuple[xr.Dataset, np.ndarray]:
    """``ds`` with the evaluation hold-out hidden, and the hidden entries (bool, ``ds``'s shape).

    The hold-out is drawn on ``within``, the whole Dataset ``ds`` is a region or period of
    (``ds`` itself by default), so every subset hides the entries the whole run hides there.
    ``mask`` is that hold-out when it is already drawn (``evaluation_mask(within)``, which a
    caller scoring many subsets keeps), matched to ``ds`` by coordinates.
    """
    if mask is None:
        mask = evaluation_mask(ds if within is None else within, **EVALUATION_HOLDOUT)
    values = mask_for(ds, mask)
    return apply_holdout(ds, values), values


def record_holdout(model: Imputer) -> None:
    """Note on ``model``'s training record (``training_``, which checkpoints keep) that the
    evaluation hold-out was hidden while it was fitted."""
    record = getattr(model, "training_", None)
    if isinstance(record, dict):
        record[HOLDOUT_KEY] = dict(EVALUATION_HOLDOUT)


def trained_without_evaluation(model: Any) -> bool:
    """Whether ``model``'s training record says the evaluation hold-out was hidden from it
    (False for a model without a record: its held-out scores may be optimistic)."""
    record = getattr(model, "training_", None) or {}
    return record.get(HOLDOUT_KEY) == EVALUATION_HOLDOUT


def fit_for_evaluation(
    model: Imputer,
    ds: xr.Dataset,
    *,
    within: xr.Dataset | None = None,
    mask: xr.DataArray | None = None,
    **fit_options: Any,
) -> Imputer:
    """Fit ``model`` on ``ds`` with the evaluation hold-out hidden (``within`` and ``mask`` as
    in :func:`hide_evaluation`) and record it; return it.

    ``fit_options`` go to ``model.fit`` (the ST-Transformer's ``callbacks`` and ``cancel``).
    """
    hidden, _ = hide_evaluation(ds, within=within, mask=mask)
    model.fit(hidden, **fit_options)
    record_holdout(model)
    return model


def impute_for_evaluation(
    make: Callable[[], Imputer],
    ds: xr.Dataset,
    *,
    within: xr.Dataset | None = None,
    mask: xr.DataArray | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """The field of a model fitted on every observation of ``ds``, and that of a model fitted
    with the evaluation hold-out hidden, each imputing the data it was fitted on.

    ``make`` builds a fresh unfitted imputer (called twice), e.g. ``lambda: make_imputer("idw")``
    or ``lambda: Pretrained(checkpoint)``.
    """
    hidden, _ = hide_evaluation(ds, within=within, mask=mask)
    full = make().fit(ds).impute(ds)
    heldout = make().fit(hidden).impute(hidden)
    return full, heldout


def distribution_for_evaluation(
    make: Callable[[], Imputer],
    ds: xr.Dataset,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    *,
    target: str = "observation",
    within: xr.Dataset | None = None,
    mask: xr.DataArray | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """:func:`impute_for_evaluation` for a probabilistic model: each fit's field and quantiles
    (``impute_distribution`` for ``target``), one fitted on every observation and one with the
    hold-out hidden.
    """
    hidden, _ = hide_evaluation(ds, within=within, mask=mask)
    full = make().fit(ds).impute_distribution(ds, quantiles, target)
    heldout = make().fit(hidden).impute_distribution(hidden, quantiles, target)
    return full, heldout
