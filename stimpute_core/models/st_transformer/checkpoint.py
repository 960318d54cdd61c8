"""ST-Transformer checkpoints: a folder of safetensors weights, a JSON configuration and, with
a prior, its references in skops format; nothing is ever unpickled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ... import __version__
from ...data.io import atomic_write_dir
from .core import STTransformer, STTransformerConfig
from .data import Normalizer
from .prior import CrossFittedPrior

if TYPE_CHECKING:
    from .model import STTransformerImputer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PRIOR_FILE = "prior.skops"


def save_checkpoint(
    model: STTransformerImputer, path: str | os.PathLike, *, command: str | None = None
) -> Path:
    """Write a self-describing checkpoint directory atomically.

    It holds ``model.safetensors`` (weights only: loading never unpickles anything) and
    ``config.json`` with the imputer settings, network configuration, normalisation
    statistics, covariate names and order, patch geometry, training history and the
    package version (and ``command`` when given, to record how it was made), and with a
    prior, ``prior.skops``: the fitted reference, which loading reads without unpickling
    and only with the types of :data:`.prior.TRUSTED_TYPES`.
    """
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None

    def write(tmp: Path) -> None:
        save_file(
            {k: v.contiguous() for k, v in model.net_.state_dict().items()}, tmp / WEIGHTS_FILE
        )
        meta = {
            "format": "stimpute-st-transformer/1",
            "stimpute_version": __version__,
            "imputer": model.get_params(),
            "network": model.net_.cfg.to_dict(),
            "normalizer": model.normalizer_.to_dict(),
            "training": model.training_,
            "history": model.history_,
            "cancelled": model.cancelled_,
            "saved": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        if command:
            meta["command"] = command
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        if getattr(model, "prior_model_", None) is not None:
            model.prior_model_.save(tmp / PRIOR_FILE)

    return atomic_write_dir(path, write)


def load_checkpoint(
    cls: type[STTransformerImputer], path: str | os.PathLike, *, device: str | None = None
) -> STTransformerImputer:
    """Load a checkpoint written by :func:`save_checkpoint`; no hyperparameters needed."""
    path = Path(path)
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{path}: not an ST-Transformer checkpoint (expected {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    try:
        meta = json.loads(cfg_file.read_text())
        params = dict(meta["imputer"])
        net_cfg = STTransformerConfig.from_dict(meta["network"])
        norm = Normalizer.from_dict(meta["normalizer"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{cfg_file}: malformed checkpoint configuration ({err})") from err
    if device is not None:
        params["device"] = device
    # Checkpoints from before the added inputs were trained with the paper's inputs only.
    for key, paper in (
        ("derived_inputs", False),
        ("cell_context", False),
        ("prior", None),
        ("day_pool", False),
    ):
        params.setdefault(key, paper)
    model = cls(**params)
    net = STTransformer(net_cfg)
    try:
        net.load_state_dict(load_file(weights))
    except (RuntimeError, OSError, SafetensorError) as err:
        raise ValueError(f"{weights}: weights do not match the configuration ({err})") from err
    if model._prior() is not None:
        if not (path / PRIOR_FILE).is_file():
            raise ValueError(
                f"{path}: the checkpoint was trained with prior={model.prior!r} but holds "
                f"no {PRIOR_FILE}"
            )
        model.prior_model_ = CrossFittedPrior.load(path / PRIOR_FILE)
    model.net_ = net.eval()
    model.normalizer_ = norm
    model.history_ = meta.get("history", [])
    model.training_ = meta.get("training", {})
    model.cancelled_ = bool(meta.get("cancelled", False))
    return model
