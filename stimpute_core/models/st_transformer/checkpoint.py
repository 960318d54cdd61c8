"""ST-Transformer checkpoints: a folder of safetensors weights, a JSON configuration and, with
a prior, its references in skops format; nothing is ever unpickled.

Saving never deletes what the tool did not write. A *checkpoint* is a folder holding
``config.json`` and ``model.safetensors`` (and ``prior.skops`` with a prior) and nothing else
(:func:`is_checkpoint`); :func:`check_target` refuses any other existing folder or file, and an
existing checkpoint unless it is to be replaced (``overwrite``). Callers check the target before
long work (``stimpute train`` does so before training), and saving checks it again.

Loading trusts nothing in the folder. Every field of ``config.json`` is checked (types, ranges,
finite numbers, sizes within :data:`.core.SIZE_BOUNDS`, normalisation statistics finite with
spreads above zero) and so is its consistency across sections; then the configuration is checked
against the header of the weights file (tensor names and shapes, read without loading a tensor)
before the network is built. The weights file also records the ``network`` and ``normalizer``
sections it was saved with, and a digest of ``prior.skops`` (safetensors metadata): an edited
``config.json`` (covariates reordered, statistics changed) or a prior from elsewhere is refused.
Checkpoints saved before that record existed get every other check.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ... import __version__
from ...data.io import atomic_write_dir, check_creatable
from ..conformal import ResidualQuantiles
from .core import STTransformer, STTransformerConfig
from .data import Normalizer
from .prior import CONTEXT_NAMES, CrossFittedPrior
from .training import TrainingSettings, pick_device

if TYPE_CHECKING:
    from .model import STTransformerImputer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PRIOR_FILE = "prior.skops"
FORMAT = "stimpute-st-transformer/1"
#: Key of the weights file's metadata that records the configuration it was saved with.
RECORD_KEY = "stimpute"
#: Checkpoints shipped with the package, trained by ``stimpute train`` on the built-in scenario.
PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
DEFAULT_PRETRAINED = "txson-quick"
#: Top-level keys of ``config.json`` and whether a checkpoint must have them.
_SECTIONS = {
    "format": True, "stimpute_version": False, "imputer": True, "network": True,
    "normalizer": True, "training": False, "history": False, "cancelled": False,
    "saved": False, "command": False, "calibration": False,
}  # fmt: skip


def pretrained_path(name: str = DEFAULT_PRETRAINED) -> Path:
    """Folder of a shipped checkpoint (see ``stimpute_core/pretrained/``)."""
    path = PRETRAINED_DIR / name
    if not path.is_dir():
        known = sorted(p.name for p in PRETRAINED_DIR.iterdir()) if PRETRAINED_DIR.is_dir() else []
        raise FileNotFoundError(
            f"no shipped checkpoint {name!r}; shipped: {', '.join(known) or 'none'}"
        )
    return path


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder (not a link) holding a checkpoint and nothing else."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    return {CONFIG_FILE, WEIGHTS_FILE} <= names <= {CONFIG_FILE, WEIGHTS_FILE, PRIOR_FILE}


def check_target(
    path: str | os.PathLike, *, overwrite: bool = False, hint: str = "overwrite=True"
) -> Path:
    """``path`` if a checkpoint may be written there, else ValueError saying why (nothing is
    touched): a new path or an empty folder, or an existing checkpoint with ``overwrite``
    (``hint`` names how to ask for it in the message). Never a file, a link, a folder holding
    anything but a checkpoint, nor ``.``/``..`` (the checkpoint needs a folder of its own)."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise ValueError(
            f"{path}: name a folder of its own for the checkpoint (e.g. {path / 'my-model'})"
        )
    if path.is_symlink():
        raise ValueError(f"{path} is a link: name the checkpoint folder itself")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a checkpoint folder: nothing was written")
    if path.is_dir() and any(path.iterdir()):
        if not is_checkpoint(path):
            names = sorted(p.name for p in path.iterdir())
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ValueError(
                f"{path} is a folder holding files that are not a checkpoint ({shown}): nothing "
                "was written; choose a new or empty folder"
            )
        if not overwrite:
            raise ValueError(f"{path} holds a checkpoint already: {hint} replaces it")
    check_creatable(path, str(path))
    return path


def save_checkpoint(
    model: STTransformerImputer,
    path: str | os.PathLike,
    *,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a self-describing checkpoint folder atomically (``path`` checked by
    :func:`check_target` first: an existing checkpoint is replaced only with ``overwrite``).

    It holds ``model.safetensors`` (weights only: loading never unpickles anything, and in its
    metadata the network and normalizer sections and the prior's digest, see the module text)
    and ``config.json`` with the imputer settings, network configuration, normalisation
    statistics, covariate names and order, patch geometry, training history and the package
    version (and ``command`` when given, to record how it was made), and with a prior,
    ``prior.skops``: the fitted reference, which loading reads without unpickling and only with
    the types of :data:`.prior.TRUSTED_TYPES`.
    """
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None
    check_target(path, overwrite=overwrite)
    network, normalizer = model.net_.cfg.to_dict(), model.normalizer_.to_dict()
    bands = getattr(model, "calibration_", None)

    def write(tmp: Path) -> None:
        record = {"network": network, "normalizer": normalizer}
        if getattr(model, "prior_model_", None) is not None:
            model.prior_model_.save(tmp / PRIOR_FILE)
            record["prior_sha256"] = hashlib.sha256((tmp / PRIOR_FILE).read_bytes()).hexdigest()
        tensors = {k: v.contiguous() for k, v in model.net_.state_dict().items()}
        save_file(tensors, tmp / WEIGHTS_FILE, metadata={RECORD_KEY: json.dumps(record)})
        meta = {
            "format": FORMAT,
            "stimpute_version": __version__,
            "imputer": model.get_params(),
            "network": network,
            "normalizer": normalizer,
            "training": model.training_,
            "history": model.history_,
            "cancelled": model.cancelled_,
            "calibration": None if bands is None else bands.to_dict(),
            "saved": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        if command:
            meta["command"] = command
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))

    return atomic_write_dir(path, write)


def load_checkpoint(
    cls: type[STTransformerImputer], path: str | os.PathLike, *, device: str | None = None
) -> STTransformerImputer:
    """Load a checkpoint written by :func:`save_checkpoint`; no hyperparameters needed.

    Everything is checked before the network is built (module text); errors are ValueErrors
    that name the file, the key and what was expected. The model runs on ``device`` (default:
    CUDA when present), not on the device it was trained on.
    """
    path = Path(path)
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"{path}: not an ST-Transformer checkpoint (expected {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    pick_device(device)
    try:
        meta = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{cfg_file}: not a readable JSON configuration ({err})") from err
    model, net_cfg, norm = _parse(cls, meta, device, cfg_file)
    record = _check_weights(weights, net_cfg, norm, meta)
    net = STTransformer(net_cfg)
    try:
        state = load_file(weights)
        net.load_state_dict(state)
    except (RuntimeError, OSError, SafetensorError) as err:
        raise ValueError(f"{weights}: weights do not match the configuration ({err})") from err
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{weights}: tensor {bad[0]} holds NaN or infinite values")
    if model._prior() is not None:
        prior_file = path / PRIOR_FILE
        if not prior_file.is_file():
            raise ValueError(
                f"{path}: the checkpoint was trained with prior={model.prior!r} but holds "
                f"no {PRIOR_FILE}"
            )
        digest = record.get("prior_sha256")
        if digest is not None and hashlib.sha256(prior_file.read_bytes()).hexdigest() != digest:
            raise ValueError(
                f"{prior_file}: not the prior saved with these weights (digest differs)"
            )
        model.prior_model_ = CrossFittedPrior.load(prior_file)
    model.net_ = net.eval()
    model.normalizer_ = norm
    return model


def _parse(cls, meta: Any, device: str | None, where: Path):
    """The imputer (settings and records set), network configuration and normalizer of a
    checkpoint's configuration, every field and their consistency checked."""
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(meta).__name__}")
    unknown = sorted(set(meta) - set(_SECTIONS))
    missing = [k for k, needed in _SECTIONS.items() if needed and k not in meta]
    if unknown or missing:
        what = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
        raise ValueError(f"{where}: {what}; expected the keys {list(_SECTIONS)}")
    if meta["format"] != FORMAT:
        raise ValueError(f"{where}: format = {meta['format']!r}: expected {FORMAT!r}")
    for key in ("imputer", "network", "normalizer", "training"):
        if not isinstance(meta.get(key, {}), dict):
            raise ValueError(f"{where}: {key} must be a JSON object, got {meta[key]!r}")
    for key in ("stimpute_version", "saved", "command"):
        if not isinstance(meta.get(key, ""), str):
            raise ValueError(f"{where}: {key} = {meta[key]!r}: expected a string")
    section = "network"
    try:
        net_cfg = STTransformerConfig.from_dict(meta["network"])
        section = "normalizer"
        norm = Normalizer.from_dict(meta["normalizer"])
        section = "training"
        record = dict(meta.get("training", {}))
        settings = {k: v for k, v in record.items() if k not in ("holdout", "rounds")}
        if set(settings) - set(TrainingSettings.__dataclass_fields__):
            raise ValueError(
                f"unknown key(s) {sorted(set(settings) - set(TrainingSettings.__dataclass_fields__))}"
            )
        TrainingSettings(**settings)
        section = "imputer"
        params = dict(meta["imputer"])
        # Checkpoints from before the added inputs were trained with the paper's inputs only.
        for key, paper in (
            ("derived_inputs", False), ("cell_context", False), ("prior", None), ("day_pool", False)
        ):  # fmt: skip
            params.setdefault(key, paper)
        allowed = cls().get_params()
        if set(params) - set(allowed):
            raise ValueError(f"unknown key(s) {sorted(set(params) - set(allowed))}")
        params["device"] = device
        model = cls(**params)
        model._validate_params()
        _check_consistency(model, net_cfg, norm)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: {section}: {err}") from err
    history, cancelled = meta.get("history", []), meta.get("cancelled", False)
    if not isinstance(history, list) or not all(_is_epoch(h) for h in history):
        raise ValueError(f"{where}: history: expected a list of epochs with numeric val_mae")
    if not isinstance(cancelled, bool):
        raise ValueError(f"{where}: cancelled = {cancelled!r}: expected true or false")
    if "holdout" in record and not isinstance(record["holdout"], dict):
        raise ValueError(f"{where}: training.holdout = {record['holdout']!r}: expected an object")
    rounds = record.get("rounds", [])
    if not isinstance(rounds, list) or not all(isinstance(r, dict) for r in rounds):
        raise ValueError(f"{where}: training.rounds = {rounds!r}: expected a list of objects")
    model.history_, model.training_, model.cancelled_ = history, record, cancelled
    # Checkpoints from before intervals were added have no calibration: no quantiles.
    calibration = meta.get("calibration")
    model.calibration_ = (
        None
        if calibration is None
        else ResidualQuantiles.from_dict(calibration, f"{where}: calibration")
    )
    return model, net_cfg, norm


def _is_epoch(h: Any) -> bool:
    if not isinstance(h, dict) or isinstance(h.get("epoch"), bool):
        return False
    val = h.get("val_mae")
    number = isinstance(val, int | float) and not isinstance(val, bool)
    return isinstance(h.get("epoch"), int) and (val is None or number)


def _check_consistency(model: STTransformerImputer, cfg: STTransformerConfig, norm: Normalizer):
    """ValueError where the imputer settings, the network and the normalizer disagree."""
    for key in ("spatial", "temporal", "readout", "norm", "spatial_embedding", "day_pool"):
        if getattr(model, key) != getattr(cfg, key):
            raise ValueError(
                f"{key} = {getattr(model, key)!r} but network.{key} = {getattr(cfg, key)!r}"
            )
    if (model.bottleneck or "none") != cfg.bottleneck:
        raise ValueError(
            f"bottleneck = {model.bottleneck!r} but network.bottleneck = {cfg.bottleneck!r}"
        )
    if cfg.bottleneck == "svq":
        for key in ("svq_placement", "svq_codes", "svq_frozen"):
            if getattr(model, key) != getattr(cfg, key):
                raise ValueError(
                    f"{key} = {getattr(model, key)!r} but network.{key} = {getattr(cfg, key)!r}"
                )
    if cfg.residual != (model._prior() is not None):
        raise ValueError(
            f"prior = {model._prior()!r} but network.residual = {cfg.residual!r} (a network "
            "corrects a prior exactly when it has one)"
        )
    extra = (["prior"] if model._prior() is not None else []) + (
        list(CONTEXT_NAMES) if model.cell_context else []
    )
    if norm.extra != extra:
        raise ValueError(
            f"normalizer.extra = {norm.extra!r}: expected {extra!r} for these settings"
        )
    if not model.use_covariates and (norm.dynamic or norm.static or norm.land_cover_classes):
        raise ValueError("use_covariates = false but the normalizer lists covariates")
    if norm.n_covariates != cfg.n_covariates:
        raise ValueError(
            f"the normalizer lists {norm.n_covariates} input channels (2 per time-varying "
            f"covariate, 1 per static one, land-cover class and extra channel) but "
            f"network.n_covariates = {cfg.n_covariates}"
        )


def _check_weights(weights: Path, cfg: STTransformerConfig, norm: Normalizer, meta: dict) -> dict:
    """Compare the configuration with the weights file's header (names, shapes and the record of
    what they were saved with) before any tensor is read; return that record ({} if none)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            record_text = (f.metadata() or {}).get(RECORD_KEY)
        record = json.loads(record_text) if record_text else {}
    except (OSError, SafetensorError, ValueError) as err:
        raise ValueError(f"{weights}: not a readable safetensors file ({err})") from err
    if not isinstance(record, dict):
        raise ValueError(f"{weights}: unreadable record of the configuration")
    where = weights.parent / CONFIG_FILE
    width = shapes.get("encoder.mask_token", (None,))[0]
    layers = {k.split(".")[1] for k in shapes if k.startswith("layers.")}
    covariates = shapes.get("encoder.covariates.0.weight", (0, 0))[1]
    for key, theirs in (("hidden", width), ("n_layers", len(layers)), ("n_covariates", covariates)):
        if getattr(cfg, key) != theirs:
            raise ValueError(
                f"{where}: network.{key} = {getattr(cfg, key)} but the weights in {weights.name} "
                f"have {theirs}"
            )
    with torch.device("meta"):  # names and shapes only: nothing is allocated
        expected = {k: tuple(v.shape) for k, v in STTransformer(cfg).state_dict().items()}
    if expected != shapes:
        wrong = sorted(set(expected) ^ set(shapes)) or [
            k for k in expected if expected[k] != shapes[k]
        ]
        raise ValueError(
            f"{where}: the network configuration does not match the weights in {weights.name} "
            f"(first difference: {wrong[0]}, expected shape {expected.get(wrong[0])}, the "
            f"weights have {shapes.get(wrong[0])})"
        )
    for section, ours in (("network", cfg.to_dict()), ("normalizer", norm.to_dict())):
        saved = record.get(section)
        if section == "network" and isinstance(saved, dict):
            # A field added since the weights were saved has its default in them.
            saved = {**STTransformerConfig().to_dict(), **saved}
        for key in sorted(set(ours) | set(saved or {})):
            if saved is not None and ours.get(key) != saved.get(key):
                name, mine, theirs = f"{section}.{key}", ours.get(key), saved.get(key)
                if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
                    i = next(i for i, (m, t) in enumerate(zip(mine, theirs, strict=True)) if m != t)
                    name, mine, theirs = f"{name}[{i}]", mine[i], theirs[i]
                raise ValueError(
                    f"{where}: {name} = {_short(mine)} but the weights were saved with "
                    f"{_short(theirs)} (config.json was changed after saving): restore it or "
                    "train again"
                )
    return record


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."
