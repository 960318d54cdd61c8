"""The ST-Transformer behind the shared imputer interface, with self-describing checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import xarray as xr
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ... import __version__
from ...data.contract import TARGET
from ...imputation import Imputer, as_output
from ...masks import holdout_mask
from ...training import SampleSet, TrainingProgress, TrainingSettings, pick_device, train_network
from .core import STTransformer, STTransformerConfig
from .data import (
    IncompatibleDataError,
    Normalizer,
    encode,
    padded_size,
    patch_origins,
    take,
    window_starts,
)

#: Sizes and schedules. ``paper``: the paper's network and 200 epochs, meant for a GPU.
#: ``quick``: a smaller network and a time budget sized for a 2-core CPU. ``tiny``: seconds, for
#: tests and the tutorials' fast mode (it shows the mechanics, not the accuracy).
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "net": {"hidden": 16, "n_layers": 1, "n_heads": 1},
        "train": {"epochs": 4, "batch_size": 4, "batches_per_epoch": 8, "patience": 4},
    },
    "paper": {
        "net": {"hidden": 64, "n_layers": 4, "n_heads": 1},
        "train": {"epochs": 200, "batch_size": 16, "patience": 40},
    },
    "quick": {
        "net": {"hidden": 32, "n_layers": 2, "n_heads": 2},
        "train": {
            "epochs": 60,
            "batch_size": 8,
            "batches_per_epoch": 25,
            "patience": 10,
            "max_minutes": 8.0,
        },
    },
}
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: Checkpoints shipped with the package, trained by ``stimpute train`` on the built-in scenario.
PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
DEFAULT_PRETRAINED = "txson-quick"


def pretrained_path(name: str = DEFAULT_PRETRAINED) -> Path:
    """Folder of a shipped checkpoint (see ``stimpute_core/pretrained/``)."""
    path = PRETRAINED_DIR / name
    if not path.is_dir():
        known = sorted(p.name for p in PRETRAINED_DIR.iterdir()) if PRETRAINED_DIR.is_dir() else []
        raise FileNotFoundError(
            f"no shipped checkpoint {name!r}; shipped: {', '.join(known) or 'none'}"
        )
    return path


class STTransformerImputer(Imputer):
    """Spatiotemporal Transformer imputer (Yao, Huang and Zhu 2023).

    Settings (constructor only, as scikit-learn): ``profile`` picks sizes and schedule; the others
    override single choices. ``spatial`` is ``"swin"`` (paper default), ``"full"`` (the paper's
    MSA variant) or ``"none"``; ``temporal=False`` drops temporal attention and
    ``use_covariates=False`` the covariates (the paper's ablations). ``readout``, ``norm`` and
    ``spatial_embedding`` choose between the paper (default) and the authors' code (see
    :mod:`.core`). ``mask_kind`` is the self-supervised masking: ``"time_slice"`` or ``"point"``.
    ``impute_stride`` is the day step between overlapping windows when imputing (default: half a
    window); predictions of overlapping windows are averaged.
    """

    name: ClassVar[str] = "st-transformer"

    def __init__(
        self,
        profile: str = "quick",
        spatial: str = "swin",
        temporal: bool = True,
        use_covariates: bool = True,
        readout: str = "concat",
        norm: str = "post",
        spatial_embedding: str = "mlp",
        mask_kind: str = "time_slice",
        epochs: int | None = None,
        max_minutes: float | None = None,
        impute_stride: int | None = None,
        seed: int = 0,
        device: str | None = None,
    ):
        if profile not in PROFILES:
            raise ValueError(f"profile={profile!r}: expected one of {', '.join(PROFILES)}")
        self.profile = profile
        self.spatial = spatial
        self.temporal = temporal
        self.use_covariates = use_covariates
        self.readout = readout
        self.norm = norm
        self.spatial_embedding = spatial_embedding
        self.mask_kind = mask_kind
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.impute_stride = impute_stride
        self.seed = seed
        self.device = device
        self.net_: STTransformer | None = None
        self.normalizer_: Normalizer | None = None
        self.history_: list[dict] = []
        self.cancelled_ = False
        self.training_: dict = {}

    def _configs(self, n_covariates: int) -> tuple[STTransformerConfig, TrainingSettings]:
        prof = PROFILES[self.profile]
        net = STTransformerConfig(
            n_covariates=n_covariates,
            spatial=self.spatial,
            temporal=self.temporal,
            readout=self.readout,
            norm=self.norm,
            spatial_embedding=self.spatial_embedding,
            **prof["net"],
        )
        train = dict(prof["train"])
        if self.epochs is not None:
            train["epochs"] = self.epochs
        if self.max_minutes is not None:
            train["max_minutes"] = self.max_minutes
        settings = TrainingSettings(
            mask_kind=self.mask_kind, seed=self.seed, device=self.device, **train
        )
        return net, settings

    def fit(
        self,
        ds: xr.Dataset,
        *,
        callbacks: Sequence[Callable[[TrainingProgress], None]] = (),
        cancel=None,
    ) -> STTransformerImputer:
        """Train on the observed values of ``ds`` (self-supervised); keep the best weights.

        ``callbacks`` receive a :class:`~stimpute_core.training.TrainingProgress` after every step
        and validation; ``cancel`` (e.g. a ``threading.Event``) stops training between steps, and
        the best weights so far are kept (``cancelled_`` is then True).
        """
        torch.manual_seed(self.seed)
        norm = Normalizer.fit(ds, use_covariates=self.use_covariates)
        net_cfg, settings = self._configs(norm.n_covariates)
        y, u = encode(ds, norm, net_cfg.patch)
        val_kind = self.mask_kind
        obs = np.isfinite(y)
        val_mask = np.zeros_like(obs)
        if obs.sum() >= 20:
            val_mask = holdout_mask(obs, val_kind, settings.val_fraction, seed=self.seed + 7)
        samples = SampleSet(y, u, net_cfg.window, settings.stride, net_cfg.patch)
        net = STTransformer(net_cfg)
        history, cancelled = train_network(
            net, samples, val_mask, settings, y_std=norm.y_std, callbacks=callbacks, cancel=cancel
        )
        self.net_ = net.cpu().eval()
        self.normalizer_ = norm
        self.history_ = history
        self.cancelled_ = cancelled
        self.training_ = settings.to_dict()
        return self

    def _device(self) -> torch.device:
        return pick_device(self.device)

    @torch.no_grad()
    def predict_cube(self, ds: xr.Dataset, *, batch_size: int = 16) -> np.ndarray:
        """Model output for every cell-day of ``ds`` (original units), before keeping observations."""
        self._check_fitted("net_", "normalizer_")
        assert self.net_ is not None and self.normalizer_ is not None
        self.normalizer_.check(ds)
        cfg = self.net_.cfg
        y, u = encode(ds, self.normalizer_, cfg.patch)
        t, hp, wp = y.shape
        stride = self.impute_stride or max(1, cfg.window // 2)
        device = self._device()
        net = self.net_.to(device)
        total = np.zeros((max(t, cfg.window), hp, wp), np.float64)
        count = np.zeros_like(total)
        index = [
            (t0, r0, c0)
            for t0 in window_starts(t, cfg.window, stride)
            for r0, c0 in patch_origins(hp, wp, cfg.patch)
        ]
        p, w = cfg.patch, cfg.window
        for k in range(0, len(index), batch_size):
            chunk = index[k : k + batch_size]
            ys = np.stack([take(y, *i, w, p) for i in chunk])
            us = np.stack([take(u, *i, w, p) for i in chunk])
            vis = np.isfinite(ys)
            pred, _ = net(
                torch.as_tensor(np.nan_to_num(ys), device=device),
                torch.as_tensor(vis, device=device),
                torch.as_tensor(us, device=device) if us.shape[-1] else None,
            )
            pred = pred.float().cpu().numpy().reshape(len(chunk), w, p, p)
            for (t0, r0, c0), values in zip(chunk, pred, strict=True):
                total[t0 : t0 + w, r0 : r0 + p, c0 : c0 + p] += values
                count[t0 : t0 + w, r0 : r0 + p, c0 : c0 + p] += 1
        self.net_.cpu()
        h, wd = ds[TARGET].shape[1:]
        out = (total / np.maximum(count, 1))[:t, :h, :wd]
        return out * self.normalizer_.y_std + self.normalizer_.y_mean

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Complete field: observed values kept, the rest from overlapping windows averaged."""
        out = as_output(ds, self.predict_cube(ds), self)
        out.attrs["model_settings"] = json.dumps(self._describe(), sort_keys=True)
        return out

    def _describe(self) -> dict:
        assert self.net_ is not None
        return {**self.get_params(), "network": self.net_.cfg.to_dict()}

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, command: str | None = None) -> Path:
        """Write a self-describing checkpoint directory atomically.

        It holds ``model.safetensors`` (weights only: loading never unpickles anything) and
        ``config.json`` with the imputer settings, network configuration, normalisation
        statistics, covariate names and order, patch geometry, training history and the
        package version (and ``command`` when given, to record how it was made).
        """
        self._check_fitted("net_", "normalizer_")
        assert self.net_ is not None and self.normalizer_ is not None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the checkpoint from other users
        try:
            save_file(
                {k: v.contiguous() for k, v in self.net_.state_dict().items()}, tmp / WEIGHTS_FILE
            )
            meta = {
                "format": "stimpute-st-transformer/1",
                "stimpute_version": __version__,
                "imputer": self.get_params(),
                "network": self.net_.cfg.to_dict(),
                "normalizer": self.normalizer_.to_dict(),
                "training": self.training_,
                "history": self.history_,
                "cancelled": self.cancelled_,
                "saved": pd.Timestamp.now(tz="UTC").isoformat(),
            }
            if command:
                meta["command"] = command
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> STTransformerImputer:
        """Load a checkpoint written by :meth:`save`; no hyperparameters needed."""
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
        model = cls(**params)
        net = STTransformer(net_cfg)
        try:
            net.load_state_dict(load_file(weights))
        except (RuntimeError, OSError, SafetensorError) as err:
            raise ValueError(f"{weights}: weights do not match the configuration ({err})") from err
        model.net_ = net.eval()
        model.normalizer_ = norm
        model.history_ = meta.get("history", [])
        model.training_ = meta.get("training", {})
        model.cancelled_ = bool(meta.get("cancelled", False))
        return model

    # -- attention -----------------------------------------------------------------------------

    @torch.no_grad()
    def attention(self, ds: xr.Dataset, iy: int, ix: int, day: str | pd.Timestamp) -> dict:
        """Attention of cell ``(iy, ix)`` on ``day``, per layer and head, ready to draw.

        Returns ``{"days": DatetimeIndex of the window, "cells": (rows, cols) of the patch,
        "layers": [{"temporal": (heads, T) weights over the window's days,
        "spatial": [(heads, P, P) weights over the patch cells, one per spatial block]}]}``.
        Each set of weights sums to one over its keys.
        """
        self._check_fitted("net_", "normalizer_")
        assert self.net_ is not None and self.normalizer_ is not None
        self.normalizer_.check(ds)
        cfg = self.net_.cfg
        times = pd.DatetimeIndex(ds["time"].values)
        ti = int(times.get_indexer([pd.Timestamp(day)])[0])
        if ti < 0:
            raise ValueError(
                f"day {day} is not in the Dataset ({times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d})"
            )
        h, w = ds[TARGET].shape[1:]
        if not (0 <= iy < h and 0 <= ix < w):
            raise ValueError(f"cell ({iy}, {ix}) is outside the {h} x {w} grid")
        y, u = encode(ds, self.normalizer_, cfg.patch)
        t0 = int(np.clip(ti - cfg.window // 2, 0, max(0, len(times) - cfg.window)))
        r0, c0 = iy // cfg.patch * cfg.patch, ix // cfg.patch * cfg.patch
        ys = take(y, t0, r0, c0, cfg.window, cfg.patch)[None]
        us = take(u, t0, r0, c0, cfg.window, cfg.patch)[None]
        q_t, q_n = ti - t0, (iy - r0) * cfg.patch + (ix - c0)
        net = self.net_
        net.set_capture(True)
        try:
            net(
                torch.as_tensor(np.nan_to_num(ys)),
                torch.as_tensor(np.isfinite(ys)),
                torch.as_tensor(us) if us.shape[-1] else None,
            )
            layers = []
            for layer in net.layers:
                entry: dict[str, Any] = {"temporal": None, "spatial": []}
                if layer.temporal is not None:
                    wts = layer.temporal.fn.weights  # (N, heads, T, T) for the one sample
                    entry["temporal"] = wts[q_n, :, q_t, :].numpy()
                for block in layer.spatial:
                    fn = block.fn
                    wts = fn.attn.weights if hasattr(fn, "attn") else fn.weights
                    entry["spatial"].append(_spatial_map(fn, wts, q_t, q_n, cfg.patch))
                layers.append(entry)
        finally:
            net.set_capture(False)
        return {
            "days": times[t0 : t0 + cfg.window],
            "query": {"day": times[ti], "row": iy, "col": ix},
            "patch_origin": (r0, c0),
            "layers": layers,
        }


def _spatial_map(fn, weights: torch.Tensor, q_t: int, q_n: int, patch: int) -> np.ndarray:
    """(heads, P, P) attention of query cell ``q_n`` on day ``q_t`` over the patch's cells."""
    n = patch * patch
    heads = weights.shape[1]
    grid = np.zeros((heads, n), np.float32)
    if hasattr(fn, "order"):  # window attention: weights are (T * nW, heads, ww, ww)
        ww = fn.window * fn.window
        n_win = n // ww
        pos = int(fn.inverse[q_n])
        win, j = pos // ww, pos % ww
        row = weights[q_t * n_win + win, :, j, :].numpy()  # (heads, ww)
        grid[:, fn.window_of(q_n).numpy()] = row
    else:  # global attention: (T, heads, N, N)
        grid[:] = weights[q_t, :, q_n, :].numpy()
    return grid.reshape(heads, patch, patch)


__all__ = ["PROFILES", "IncompatibleDataError", "STTransformerImputer", "padded_size"]
