"""DiffRecon checkpoints: a folder of ``model.safetensors`` (both denoisers' weights) and
``config.json`` (settings, network sizes, normaliser, scales, calibration, grid), written
atomically; nothing is ever unpickled.

Loading trusts nothing: every key of ``config.json`` is checked (settings through the imputer's
own validation, sizes within :data:`.core.SIZE_BOUNDS`, statistics finite with spreads above
zero, the calibration table), the sections against each other, the tensor names and shapes
against the networks the configuration describes, every tensor finite, and the configuration
against the digest the weights file recorded when saved (an edited ``config.json`` is refused).
Errors are ValueErrors naming the file and the key.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ... import __version__
from ...data.io import atomic_write_dir, check_creatable
from ..st_transformer.data import Normalizer
from .calibration import IntervalCorrections
from .core import Denoiser, NetConfig
from .data import Scales, n_coarse_context, n_fine_context

if TYPE_CHECKING:
    from .model import DiffReconImputer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "stimpute-diffrecon/1"
RECORD_KEY = "stimpute_config_sha256"
#: The sections the weights' digest covers (everything the imputed values depend on).
DIGESTED = ("imputer", "coarse_network", "fine_network", "normalizer", "scales", "calibration",
            "grid")  # fmt: skip
SECTIONS = {"format", "stimpute_version", *DIGESTED, "history", "training"}


def _digest(meta: dict) -> str:
    part = {k: meta[k] for k in DIGESTED}
    part["imputer"] = {k: v for k, v in part["imputer"].items() if k != "device"}
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file: expected the path of a checkpoint folder")
    if path.is_dir() and any(path.iterdir()):
        names = sorted(p.name for p in path.iterdir())
        if names != sorted([CONFIG_FILE, WEIGHTS_FILE]):
            raise ValueError(f"{path} holds files that are not a diffrecon checkpoint "
                             f"({', '.join(names[:5])}): nothing was written")  # fmt: skip
        if not overwrite:
            raise ValueError(f"{path} holds a checkpoint already: overwrite=True replaces it")
    check_creatable(path, str(path))


def save_checkpoint(model: DiffReconImputer, path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Write ``model`` (fitted) to the folder ``path`` atomically (module text)."""
    model._check_fitted("fine_net_", "coarse_net_", "normalizer_", "calibration_")
    path = Path(path)
    _check_target(path, overwrite)
    meta = {
        "format": FORMAT,
        "stimpute_version": __version__,
        "imputer": model.get_params(),
        "coarse_network": model.coarse_net_.cfg.to_dict(),
        "fine_network": model.fine_net_.cfg.to_dict(),
        "normalizer": model.normalizer_.to_dict(),
        "scales": model.scales_.to_dict(),
        "calibration": model.calibration_.to_dict(),
        "grid": {d: model.grid_[d].tolist() for d in ("y", "x")},
        "history": model.history_,
        "training": model.training_,
    }
    tensors = {f"coarse.{k}": v.contiguous() for k, v in model.coarse_net_.state_dict().items()}
    tensors |= {f"fine.{k}": v.contiguous() for k, v in model.fine_net_.state_dict().items()}

    def write(tmp: Path) -> None:
        save_file(tensors, tmp / WEIGHTS_FILE, metadata={RECORD_KEY: _digest(meta)})
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))

    return atomic_write_dir(path, write)


def _imputer(cls, params: Any, device: str | None, where: Path):
    names = [p for p in inspect.signature(cls).parameters]
    if not isinstance(params, dict) or sorted(params) != sorted(names):
        raise ValueError(f"{where}: key 'imputer' must hold exactly the settings {names}")
    model = cls(**{**params, "device": device})
    try:
        model._validate_params()
    except ValueError as err:
        raise ValueError(f"{where}: key 'imputer': {err}") from None
    return model


def _grid(d: Any, where: Path) -> dict[str, np.ndarray]:
    if not isinstance(d, dict) or sorted(d) != ["x", "y"]:
        raise ValueError(f"{where}: key 'grid' must hold the cell centres 'y' and 'x'")
    out = {}
    for dim in ("y", "x"):
        try:
            values = np.asarray(d[dim], dtype=np.float64)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if values.ndim != 1 or values.size < 1 or not np.isfinite(values).all():
            raise ValueError(f"{where}: key 'grid.{dim}' must be a list of finite coordinates")
        out[dim] = values
    return out


def load_checkpoint(cls: type[DiffReconImputer], path: str | os.PathLike, *,
                    device: str | None = None) -> DiffReconImputer:  # fmt: skip
    """The imputer saved at ``path``, every key checked (module text); it runs on ``device``."""
    path = Path(path)
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.is_file() or not weights.is_file():
        raise ValueError(f"{path}: not a diffrecon checkpoint (expected {CONFIG_FILE} and "
                         f"{WEIGHTS_FILE})")  # fmt: skip
    try:
        meta = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{cfg_file}: not a readable JSON configuration ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{cfg_file}: expected a JSON object")
    missing, unknown = sorted(SECTIONS - set(meta)), sorted(set(meta) - SECTIONS)
    if missing or unknown:
        raise ValueError(f"{cfg_file}: missing key(s) {missing}, unknown key(s) {unknown}")
    if meta["format"] != FORMAT:
        raise ValueError(f"{cfg_file}: key 'format' is {meta['format']!r}, expected {FORMAT!r}")
    model = _imputer(cls, meta["imputer"], device, cfg_file)
    coarse = NetConfig.from_dict(meta["coarse_network"], f"{cfg_file}: key 'coarse_network'")
    fine = NetConfig.from_dict(meta["fine_network"], f"{cfg_file}: key 'fine_network'")
    try:
        norm = Normalizer.from_dict(meta["normalizer"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cfg_file}: key 'normalizer': {err}") from None
    scales = Scales.from_dict(meta["scales"], f"{cfg_file}: key 'scales'")
    calib = IntervalCorrections.from_dict(meta["calibration"], f"{cfg_file}: key 'calibration'")
    grid = _grid(meta["grid"], cfg_file)
    want = {"coarse_network": ("coarse", n_coarse_context(norm.n_covariates), coarse),
            "fine_network": ("fine", n_fine_context(norm.n_covariates), fine)}  # fmt: skip
    for key, (stage, n_context, cfg) in want.items():
        if cfg.stage != stage or cfg.n_context != n_context:
            raise ValueError(f"{cfg_file}: key '{key}' (stage {cfg.stage!r}, n_context "
                             f"{cfg.n_context}) does not match the normalizer's "
                             f"{norm.n_covariates} covariates: expected stage {stage!r}, "
                             f"n_context {n_context}")  # fmt: skip
    nets = {"coarse": Denoiser(coarse), "fine": Denoiser(fine)}
    expected = {f"{s}.{k}": tuple(v.shape) for s, n in nets.items()
                for k, v in n.state_dict().items()}  # fmt: skip
    try:
        with safe_open(weights, "pt") as fh:
            record = (fh.metadata() or {}).get(RECORD_KEY)
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
        state = load_file(weights)
    except (OSError, SafetensorError, ValueError) as err:
        raise ValueError(f"{weights}: not a readable safetensors file ({err})") from None
    if shapes != expected:
        bad = sorted(set(shapes) ^ set(expected)) or [
            k for k in expected if shapes[k] != expected[k]
        ]
        raise ValueError(f"{weights}: tensor {bad[0]} does not match the networks of "
                         f"{CONFIG_FILE} (expected {expected.get(bad[0])}, found "
                         f"{shapes.get(bad[0])})")  # fmt: skip
    if record != _digest(meta):
        raise ValueError(f"{cfg_file}: its configuration is not the one saved with {weights} "
                         "(key 'stimpute_config_sha256' of the weights differs): edited?")  # fmt: skip
    for name, tensor in state.items():
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{weights}: tensor {name} holds NaN or infinite values")
    for stage, net in nets.items():
        prefix = f"{stage}."
        net.load_state_dict({k[len(prefix) :]: v for k, v in state.items()
                             if k.startswith(prefix)})  # fmt: skip
        net.eval()
    model.coarse_net_, model.fine_net_ = nets["coarse"], nets["fine"]
    model.normalizer_, model.scales_, model.calibration_ = norm, scales, calib
    model.grid_ = grid
    model.history_ = meta["history"]
    model.training_ = meta["training"]
    model._cache = None
    return model
