"""More training for a fitted ST-Transformer on other data of the same kind: one round.

A region larger than memory is learnt in rounds (:func:`stimpute_core.tile_sample.fit_in_rounds`):
the first round is :meth:`~.model.STTransformerImputer.fit` on a few tiles, which fixes what a
checkpoint remembers about the data (the normaliser and, with a prior, the prior's references);
each later round hands the same network another set of tiles, encoded exactly as imputation
would encode them, and trains on. Each round:

- draws its own validation entries on its own data (``seed + 7 + round``) and keeps them out of
  every input and every statistic, as ``fit`` does; the normaliser and the prior are not
  refitted, so nothing of the new data reaches them at all;
- restarts the learning-rate schedule of the profile (a warm restart: the optimiser's moments
  of the last round belong to other tiles) with the round's seed, and keeps the best weights
  on its validation entries, the incoming ones included, so a round cannot make the network
  worse on the data it scores;
- extends ``history_`` (epochs numbered on from the last round, each entry with its ``round``)
  and records ``training_["rounds"]``: per round, its tiles, the score of the incoming weights
  and the best one.

The intervals are calibrated again on the last round's validation entries, since the weights
they describe are the last round's. Only a model whose prior works from each cell's own inputs
(``transferable``) can go on to other cells: a per-cell reference has nothing for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ...data.contract import TARGET
from . import distributed
from .data import SampleSet, encode
from .intervals import calibrate
from .training import TrainingProgress, train_network, validation_mask

if TYPE_CHECKING:
    from .model import STTransformerImputer


def train_round(
    model: STTransformerImputer,
    ds: xr.Dataset,
    round_index: int,
    *,
    label: str = "",
    callbacks: Sequence[Callable[[TrainingProgress], None]] = (),
    cancel=None,
) -> STTransformerImputer:
    """Train the fitted ``model`` on ``ds`` for one more round (module text); ``round_index``
    (1 or more) seeds the round, ``label`` says what ``ds`` is in ``training_["rounds"]``."""
    if isinstance(round_index, bool) or not isinstance(round_index, int) or round_index < 1:
        raise ValueError(f"round_index={round_index!r}: expected 1 or more (round 0 is fit)")
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None
    if not model.transferable:
        raise ValueError(
            f"prior={model.prior!r} is a per-cell reference: it has no estimate for other "
            "cells, so training cannot go on over other tiles; use prior='boosting' or None"
        )
    ds = model._with_inputs(ds)
    norm = model.normalizer_
    norm.check(ds)
    _, settings = model._configs(norm.n_covariates)
    settings = dataclasses.replace(settings, seed=model.seed + round_index)
    values = np.asarray(ds[TARGET].values, dtype=np.float64)
    val_mask = validation_mask(
        np.isfinite(values),
        model.mask_kind,
        settings.val_fraction,
        seed=model.seed + 7 + round_index,
        window=model.net_.cfg.window,
        horizon=model.forecast_days,
    )
    # As in fit: the validation entries reach no input, no statistic, no prior estimate.
    known = ds.assign({TARGET: ds[TARGET].where(~val_mask)})
    extra, offset = model._extra(known)  # the fitted prior's estimate; nothing refitted
    net = model.net_
    y, u = encode(ds, norm, net.cfg.patch, extra, offset)
    pad = [(0, 0), (0, y.shape[1] - val_mask.shape[1]), (0, y.shape[2] - val_mask.shape[2])]
    samples = SampleSet(y, u, net.cfg.window, settings.stride, net.cfg.patch)
    history, cancelled = train_network(
        net, samples, np.pad(val_mask, pad), settings, y_std=norm.y_std,
        dynamic_channels=2 * len(norm.dynamic), callbacks=callbacks, cancel=cancel,
    )  # fmt: skip
    model.net_ = net.cpu().eval()
    done = max((h["epoch"] for h in model.history_), default=0)
    before = history[0]["val_mae"] if history and history[0]["epoch"] == 0 else None
    model.history_ = [
        *model.history_,
        *({**h, "epoch": done + h["epoch"], "round": round_index} for h in history if h["epoch"]),
    ]
    rounds = list(model.training_.get("rounds", []))
    rounds.append(
        {
            "round": round_index,
            "data": label,
            "epochs": sum(1 for h in history if h["epoch"]),
            "val_mae_before": before,
            "val_mae_best": min((h["val_mae"] for h in history), default=None),
        }
    )
    model.training_ = {**model.training_, "rounds": rounds}
    model.cancelled_ = bool(model.cancelled_ or cancelled)
    model._encoded = model._point = None
    if distributed.is_main() and model.mask_kind != "forecast":  # as in fit
        model.calibration_ = calibrate(model, known, values, val_mask)
        model._encoded = model._point = None
    return model


__all__ = ["train_round"]
