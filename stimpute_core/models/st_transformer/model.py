"""The ST-Transformer behind the shared imputer interface, with self-describing checkpoints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ...data.contract import TARGET
from ..base import DEFAULT_QUANTILES, Imputer, as_output, integer, positive_int, positive_number
from ..features import COARSE, fill_in_time, with_derived_features
from . import distributed
from .attention import attention_weights
from .checkpoint import (  # the shipped checkpoints are also found from here
    DEFAULT_PRETRAINED,
    PRETRAINED_DIR,
    load_checkpoint,
    pretrained_path,
    save_checkpoint,
)
from .core import STTransformer, STTransformerConfig
from .data import IncompatibleDataError, Normalizer, SampleSet, encode, fingerprint, padded_size
from .inference import predict_cube
from .intervals import calibrate, distribution
from .prior import CONTEXT_NAMES, CrossFittedPrior, cell_context
from .training import (
    PRECISIONS,
    TRAINING_MASKS,
    TrainingProgress,
    TrainingSettings,
    pick_device,
    train_network,
    validation_mask,
)

#: Sizes and schedules. ``paper``: the paper's network and 200 epochs, meant for a GPU.
#: ``quick``: a smaller network and a time budget sized for a 2-core CPU. ``tiny``: seconds, for
#: tests and the tutorials' fast mode (it shows the mechanics, not the accuracy). ``long``: a
#: wider, deeper network for a 45-minute CPU budget (the issue's longer CPU profile).
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
    "long": {
        "net": {"hidden": 64, "n_layers": 3, "n_heads": 2},
        "train": {
            "epochs": 400,
            "batch_size": 8,
            "batches_per_epoch": 25,
            "patience": 40,
            "max_minutes": 45.0,
        },
    },
}


class STTransformerImputer(Imputer):
    """Spatiotemporal Transformer imputer (Yao, Huang and Zhu 2023).

    Settings (constructor only, as scikit-learn): ``profile`` picks sizes and schedule; the others
    override single choices. ``spatial`` is ``"swin"`` (paper default), ``"full"`` (the paper's
    MSA variant) or ``"none"``; ``temporal=False`` drops temporal attention and
    ``use_covariates=False`` the covariates (the paper's ablations). ``readout``, ``norm`` and
    ``spatial_embedding`` choose between the paper (default) and the authors' code (see
    :mod:`.core`). ``mask_kind`` is the self-supervised masking: ``"time_slice"``, ``"point"`` or
    ``"forecast"`` (the last ``forecast_days`` of each window; no prior; see :mod:`.forecast`).
    ``impute_stride`` is the day step between overlapping windows when imputing (default: half a
    window); predictions of overlapping windows are averaged. ``impute_precision``: ``"auto"``
    (default) runs the network in bfloat16 on a GPU that computes it natively and in float32
    on the CPU (where bfloat16 was not faster for a whole cube); ``"bfloat16"`` asks for it
    anywhere (it moves the values by at most about 1e-4 m³/m³).

    What the network is given besides the paper's inputs (each can be switched off, and
    ``derived_inputs=False, cell_context=False, prior=None`` is the paper's model):

    - ``derived_inputs``: rain memories, days since rain, the season and the coarse product's
      anomaly (:mod:`stimpute_core.models.features`), as time-varying covariates;
    - ``cell_context``: each cell's observed mean, spread and offset from the coarse product;
    - ``prior``: a reference (``"boosting"``, ``"regression"``, ``"coarse"``, ...) whose
      estimate the network corrects, cross-fitted by date over ``prior_folds`` groups of days
      (:mod:`.prior`), so that no day is estimated by a reference that saw it;
      ``prior_smooth`` adds the day's other observed departures from it, smoothed in space
      (the entry itself left out); ``None`` (default): with ``mask_kind="point"`` only;
    - ``day_pool``: each token also gets the day's visible values pooled around it (2- and
      6-cell neighbourhoods and the whole patch), what windowed attention (4 x 4 cells) cannot
      gather in one step.

    ``bottleneck="svq"`` adds a sparse vector quantization bottleneck (:mod:`.svq`) of
    ``svq_codes`` codes (frozen unless ``svq_frozen=False``) at ``svq_placement``: ``"pre"``
    (the encoder's tokens) or ``"post"`` (before the readout); it starts with no effect.

    ``use_covariates=False`` drops every covariate-based input (covariates, derived inputs, the
    prior and the coarse offset of the cell context).
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
        derived_inputs: bool = True,
        cell_context: bool = True,
        prior: str | None = "boosting",
        prior_folds: int = 10,
        prior_smooth: bool | None = None,
        day_pool: bool = True,
        bottleneck: str | None = None,
        svq_placement: str = "pre",
        svq_codes: int = 512,
        svq_frozen: bool = True,
        forecast_days: int = 7,
        epochs: int | None = None,
        max_minutes: float | None = None,
        patience: int | None = None,
        impute_stride: int | None = None,
        impute_precision: str = "auto",
        seed: int = 0,
        device: str | None = None,
    ):
        self.profile = profile
        self.spatial = spatial
        self.temporal = temporal
        self.use_covariates = use_covariates
        self.readout = readout
        self.norm = norm
        self.spatial_embedding = spatial_embedding
        self.mask_kind = mask_kind
        self.derived_inputs = derived_inputs
        self.cell_context = cell_context
        self.prior = prior
        self.prior_folds = prior_folds
        self.prior_smooth = prior_smooth
        self.day_pool = day_pool
        self.bottleneck = bottleneck
        self.svq_placement = svq_placement
        self.svq_codes = svq_codes
        self.svq_frozen = svq_frozen
        self.forecast_days = forecast_days
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.patience = patience
        self.impute_stride = impute_stride
        self.impute_precision = impute_precision
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        """Check the settings the network and its inputs are built from (``fit`` calls it)."""
        if self.profile not in PROFILES:
            raise ValueError(f"profile={self.profile!r}: expected one of {', '.join(PROFILES)}")
        prior = self.prior
        if prior is not None and (not isinstance(prior, str) or prior.startswith("st-")):
            raise ValueError(f"prior={prior!r}: expected the name of a reference or None")
        if positive_int("prior_folds", self.prior_folds) < 2:
            raise ValueError(f"prior_folds must be at least 2, got {self.prior_folds!r}")
        for flag in ("temporal", "use_covariates", "derived_inputs", "cell_context", "day_pool"):
            if not isinstance(getattr(self, flag), bool | np.bool_):
                raise ValueError(f"{flag}={getattr(self, flag)!r}: expected True or False")
        if self.prior_smooth not in (None, True, False):
            raise ValueError(f"prior_smooth={self.prior_smooth!r}: expected True, False or None")
        if self.mask_kind not in TRAINING_MASKS:
            raise ValueError(f"mask_kind={self.mask_kind!r}: expected one of {TRAINING_MASKS}")
        if positive_int("forecast_days", self.forecast_days) >= self._configs(0)[0].window:
            raise ValueError(f"forecast_days={self.forecast_days}: expected fewer than the window")
        for count in ("epochs", "patience", "impute_stride"):
            if getattr(self, count) is not None:
                positive_int(count, getattr(self, count))
        if self.max_minutes is not None and not positive_number(self.max_minutes):
            raise ValueError(f"max_minutes={self.max_minutes!r}: expected a positive number")
        if self.impute_precision not in PRECISIONS:
            raise ValueError(
                f"impute_precision={self.impute_precision!r}: expected one of "
                f"{', '.join(PRECISIONS)}"
            )
        if integer("seed", self.seed) < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        if self.bottleneck not in (None, "svq"):
            raise ValueError(f"bottleneck={self.bottleneck!r}: expected None or 'svq'")
        self._configs(0)  # the network's own checks (the SVQ settings among them)
        pick_device(self.device)  # an unknown device, or a GPU this machine lacks

    def _configs(self, n_covariates: int) -> tuple[STTransformerConfig, TrainingSettings]:
        prof = PROFILES[self.profile]
        net = STTransformerConfig(
            n_covariates=n_covariates,
            spatial=self.spatial,
            temporal=self.temporal,
            readout=self.readout,
            norm=self.norm,
            spatial_embedding=self.spatial_embedding,
            residual=self._prior() is not None,
            day_pool=self.day_pool,
            bottleneck=self.bottleneck or "none",
            svq_placement=self.svq_placement,
            svq_codes=self.svq_codes,
            svq_frozen=self.svq_frozen,
            **prof["net"],
        )
        train = dict(prof["train"])
        if self.epochs is not None:
            train["epochs"] = self.epochs
        if self.max_minutes is not None:
            train["max_minutes"] = self.max_minutes
        if self.patience is not None:
            train["patience"] = self.patience
        settings = TrainingSettings(
            mask_kind=self.mask_kind, seed=self.seed, device=self.device,
            forecast_days=self.forecast_days, **train,
        )  # fmt: skip
        return net, settings

    @property
    def transferable(self) -> bool:  # type: ignore[override]
        """Another grid of the trained spacing is imputed (the network and the boosting prior
        work from each cell's own inputs) unless the prior is a per-cell reference."""
        return self._prior() in (None, "boosting", "boosting-smooth")

    def _prior_smooth(self) -> bool:
        if self.prior_smooth is None:
            return self.mask_kind == "point"
        return bool(self.prior_smooth)

    def _prior(self) -> str | None:
        """The prior used: none without covariates, and none for forecasting (the prior is an
        imputation reference that needs each day's observations around it)."""
        return self.prior if self.use_covariates and self.mask_kind != "forecast" else None

    def _with_inputs(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with the derived inputs added when they are used."""
        if self.use_covariates and self.derived_inputs:
            return with_derived_features(ds)
        return ds

    def _extra(
        self, known: xr.Dataset, *, exclude: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The imputer's own input channels from the observations of ``known``, and the prior
        (the offset the target is encoded against), or None.

        In ``fit`` (``exclude``: the validation entries, already blanked in ``known``) the
        cross-fitted prior is fitted and kept as ``prior_model_``; it gives the estimate.
        """
        extra: dict[str, np.ndarray] = {}
        offset = None
        name = self._prior()
        if name is not None:
            if exclude is not None:
                self.prior_model_ = CrossFittedPrior.fit(
                    known,
                    name,
                    exclude,
                    folds=self.prior_folds,
                    seed=self.seed,
                    smooth=self._prior_smooth(),
                )
            self._check_fitted("prior_model_")
            assert self.prior_model_ is not None
            offset = self.prior_model_.estimate(known)
            extra["prior"] = offset
        if self.cell_context:
            coarse = None
            if self.use_covariates and COARSE in known.data_vars:
                coarse = fill_in_time(np.broadcast_to(known[COARSE].values, known[TARGET].shape))
            context = cell_context(np.asarray(known[TARGET].values, dtype=np.float64), coarse)
            for k, label in enumerate(CONTEXT_NAMES):
                extra[label] = context[..., k]
        return extra, offset

    def fit(
        self,
        ds: xr.Dataset,
        *,
        callbacks: Sequence[Callable[[TrainingProgress], None]] = (),
        cancel=None,
    ) -> STTransformerImputer:
        """Train on the observed values of ``ds`` (self-supervised); keep the best weights.

        ``callbacks`` receive a :class:`~stimpute_core.models.st_transformer.training.TrainingProgress` after every step
        and validation; ``cancel`` (e.g. a ``threading.Event``) stops training between steps, and
        the best weights so far are kept (``cancelled_`` is then True). Under torchrun the
        processes train together (:mod:`.distributed`); only rank 0 then calibrates.
        """
        self._validate_params()
        torch.manual_seed(self.seed)
        self.prior_model_: CrossFittedPrior | None = None
        ds = self._with_inputs(ds)
        values = np.asarray(ds[TARGET].values, dtype=np.float64)
        observed = np.isfinite(values)
        cfg0, settings0 = self._configs(0)
        val_mask = validation_mask(  # refuses data too small to validate on, before training
            observed, self.mask_kind, settings0.val_fraction, seed=self.seed + 7,
            window=cfg0.window, horizon=self.forecast_days,
        )  # fmt: skip
        # Nothing computed in fit sees the validation entries: statistics, prior, context.
        known = ds.assign({TARGET: ds[TARGET].where(~val_mask)})
        extra, offset = self._extra(known, exclude=val_mask)
        norm = Normalizer.fit(known, use_covariates=self.use_covariates, extra=list(extra))
        net_cfg, settings = self._configs(norm.n_covariates)
        y, u = encode(ds, norm, net_cfg.patch, extra, offset)
        val_mask = np.pad(
            val_mask,
            [(0, 0), (0, y.shape[1] - val_mask.shape[1]), (0, y.shape[2] - val_mask.shape[2])],
        )
        samples = SampleSet(y, u, net_cfg.window, settings.stride, net_cfg.patch)
        net = STTransformer(net_cfg)
        history, cancelled = train_network(
            net, samples, val_mask, settings, y_std=norm.y_std, callbacks=callbacks,
            cancel=cancel, dynamic_channels=2 * len(norm.dynamic),
        )  # fmt: skip
        self.net_, self.normalizer_ = net.cpu().eval(), norm
        self.history_, self.cancelled_, self.training_ = history, cancelled, settings.to_dict()
        self._encoded = self._point = None  # inputs and field of the previous fit
        if not distributed.is_main():  # one of several processes: rank 0 calibrates and saves
            return self
        h, w = values.shape[1:]
        # Intervals are calibrated for imputation; a forecaster's residuals grow with the lead.
        forecasting = self.mask_kind == "forecast"
        self.calibration_ = (
            None if forecasting else calibrate(self, known, values, val_mask[:, :h, :w])
        )
        if self.prior_model_ is not None and val_mask.any():
            # The validation entries have chosen the weights; the reference that estimates the
            # days no fold saw (later periods, days held out whole) may now learn from them.
            self.prior_model_.refit_full(ds, self._prior(), seed=self.seed)
        self._encoded = self._point = None  # inputs and field of the previous fit
        return self

    @property
    def probabilistic(self) -> bool:  # type: ignore[override]
        """True, except for a checkpoint saved before intervals were added (no calibration)."""
        return getattr(self, "calibration_", True) is not None

    def impute_distribution(
        self,
        ds: xr.Dataset,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target: str = "observation",
    ) -> xr.Dataset:
        """The field and its calibrated quantiles for ``target`` (see :mod:`.intervals`)."""
        return distribution(self, ds, quantiles, target)

    def _device(self) -> torch.device:
        return pick_device(self.device)

    def predict_cube(self, ds: xr.Dataset, *, batch_size: int = 16) -> np.ndarray:
        """Model output for every cell-day of ``ds`` (original units), before keeping observations."""
        return predict_cube(self, ds, batch_size=batch_size)

    def check(self, ds: xr.Dataset) -> None:
        """Raise :class:`IncompatibleDataError` if ``ds`` lacks what the model was trained with
        (covariates, units, grid spacing), before any work is done on it."""
        self._check_fitted("net_", "normalizer_")
        assert self.normalizer_ is not None
        self.normalizer_.check(self._with_inputs(ds))

    def _encode(self, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Encoded target and inputs of ``ds`` for the fitted network, and the prior (or None)."""
        assert self.normalizer_ is not None
        ds = self._with_inputs(ds)
        self.normalizer_.check(ds)
        extra, offset = self._extra(ds)
        assert self.net_ is not None
        y, u = encode(ds, self.normalizer_, self.net_.cfg.patch, extra, offset)
        return y, u, offset

    def _encode_cached(self, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`_encode` of ``ds``, kept for the next call on the same data: the attention
        view asks for one cell and day after another of one selection, and encoding (the
        prior's trees over the whole selection) costs seconds each time."""
        key = fingerprint(ds)
        cached = getattr(self, "_encoded", None)
        if cached is None or cached[0] != key:
            cached = (key, self._encode(ds))
            self._encoded = cached
        return cached[1]

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Complete field: observed values kept, the rest from overlapping windows averaged."""
        out = as_output(ds, self.predict_cube(ds), self)
        out.attrs["model_settings"] = json.dumps(self._describe(), sort_keys=True)
        return out

    def _describe(self) -> dict:
        assert self.net_ is not None
        return {**self.get_params(), "network": self.net_.cfg.to_dict()}

    # -- checkpoints and attention (in their own modules) --------------------------------------

    def save(
        self, path: str | os.PathLike, *, command: str | None = None, overwrite: bool = False
    ) -> Path:
        """Write a self-describing checkpoint folder atomically (see :mod:`.checkpoint`).

        An existing checkpoint at ``path`` is replaced only with ``overwrite=True``; a folder
        holding anything else is never replaced (ValueError, nothing written).
        """
        return save_checkpoint(self, path, command=command, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> STTransformerImputer:
        """Load a checkpoint written by :meth:`save`, every setting checked (see
        :mod:`.checkpoint`); it runs on ``device`` (default: CUDA when present)."""
        return load_checkpoint(cls, path, device=device)

    def attention(self, ds: xr.Dataset, iy: int, ix: int, day: str | pd.Timestamp) -> dict:
        """Attention of cell ``(iy, ix)`` on ``day`` per layer and head (see :mod:`.attention`)."""
        return attention_weights(self, ds, iy, ix, day)


__all__ = [
    "DEFAULT_PRETRAINED",
    "PRETRAINED_DIR",
    "PROFILES",
    "IncompatibleDataError",
    "STTransformerImputer",
    "padded_size",
    "pretrained_path",
]
