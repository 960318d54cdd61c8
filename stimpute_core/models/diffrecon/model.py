"""The DiffRecon imputer behind the shared interface (see the package text for the design)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr

from ...data.contract import TARGET
from ..base import (
    DEFAULT_QUANTILES,
    Imputer,
    as_output,
    as_quantiles,
    check_quantiles,
    integer,
    positive_int,
    positive_number,
)
from ..conformal import strata
from ..features import with_derived_features
from ..st_transformer.data import Normalizer, encode, fingerprint
from ..st_transformer.training import pick_device, validation_mask
from .calibration import IntervalCorrections
from .core import Denoiser, NetConfig
from .data import (
    Scales,
    coarse_context,
    coarse_cube,
    coarse_groups,
    n_coarse_context,
    n_fine_context,
)
from .training import (
    FineInputs,
    Schedule,
    sample_coarse,
    sample_fine,
    torch_threads,
    train_coarse,
    train_fine,
)

#: Sizes and schedules. ``tiny``: seconds (tests). ``quick``: a few minutes of training on a
#: 2-core CPU for a year of the built-in scenario. ``long``: a wider network, 20 minutes.
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {
        "fine": {"hidden": 8, "n_blocks": 1, "n_heads": 1},
        "coarse": {"hidden": 8, "n_blocks": 2, "n_heads": 1},
        "schedule": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 2, "window": 16,
                     "crop": 8, "coarse_steps": 10, "val_crops": 2, "sample_batch": 4},
        "n_samples": 4, "sampling_steps": 3,
    },
    "quick": {
        "fine": {"hidden": 16, "n_blocks": 2, "n_heads": 2},
        "coarse": {"hidden": 16, "n_blocks": 4, "n_heads": 1},
        "schedule": {"epochs": 60, "steps_per_epoch": 20, "batch_size": 8, "window": 32,
                     "crop": 16, "coarse_steps": 400, "max_minutes": 3.0},
        "n_samples": 8, "sampling_steps": 10,
    },
    "long": {
        "fine": {"hidden": 32, "n_blocks": 3, "n_heads": 2},
        "coarse": {"hidden": 32, "n_blocks": 4, "n_heads": 1},
        "schedule": {"epochs": 300, "steps_per_epoch": 20, "batch_size": 8, "window": 32,
                     "crop": 24, "coarse_steps": 1000, "max_minutes": 20.0, "patience": 20},
        "n_samples": 16, "sampling_steps": 10,
    },
}  # fmt: skip
#: Share of the time budget stage one may use.
COARSE_SHARE = 0.1
#: Torch threads per profile (None: torch's default). The tiny networks run faster on one
#: thread than on two, most of all on a machine shared with other work.
THREADS = {"tiny": 1}


def _threads(profile: str):
    return torch_threads(THREADS.get(profile))


class DiffReconImputer(Imputer):
    """Two-stage conditional diffusion imputer (DiffRecon reading; package text).

    ``profile`` picks sizes and schedule; ``epochs``, ``max_minutes`` and ``patience`` override
    its training choices, ``n_samples`` and ``sampling_steps`` (DDIM steps) its sampling.
    ``mask_kind`` (``"time_slice"`` or ``"point"``) is the main kind of self-supervised masking
    and of the validation entries the intervals are calibrated on. ``impute`` gives the median
    of the samples; ``impute_distribution`` their quantiles, calibrated (``calibrated=False``:
    the raw sample quantiles). The same settings and data give the same output.
    """

    name: ClassVar[str] = "diffrecon"
    probabilistic: ClassVar[bool] = True
    interval_targets: ClassVar[tuple[str, ...]] = ("observation",)

    def __init__(
        self,
        profile: str = "quick",
        mask_kind: str = "time_slice",
        n_samples: int | None = None,
        sampling_steps: int | None = None,
        epochs: int | None = None,
        max_minutes: float | None = None,
        patience: int | None = None,
        seed: int = 0,
        device: str | None = None,
    ):
        self.profile = profile
        self.mask_kind = mask_kind
        self.n_samples = n_samples
        self.sampling_steps = sampling_steps
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.patience = patience
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile={self.profile!r}: expected one of {', '.join(PROFILES)}")
        if self.mask_kind not in ("time_slice", "point"):
            raise ValueError(f"mask_kind={self.mask_kind!r}: expected 'time_slice' or 'point'")
        for count in ("n_samples", "sampling_steps", "epochs", "patience"):
            if getattr(self, count) is not None:
                positive_int(count, getattr(self, count))
        if self.n_samples is not None and self.n_samples < 2:
            raise ValueError(f"n_samples={self.n_samples!r}: expected at least 2 samples")
        if self.sampling_steps is not None and self.sampling_steps > 50:
            raise ValueError(f"sampling_steps={self.sampling_steps!r}: expected at most the "
                             "50 diffusion steps of training")  # fmt: skip
        if self.max_minutes is not None and not positive_number(self.max_minutes):
            raise ValueError(f"max_minutes={self.max_minutes!r}: expected a positive number")
        if integer("seed", self.seed) < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        pick_device(self.device)

    # -- settings ------------------------------------------------------------------------------

    def schedule(self) -> Schedule:
        """The training and sampling schedule of the profile with this model's overrides."""
        sched = dict(PROFILES[self.profile]["schedule"])
        for key in ("epochs", "max_minutes", "patience"):
            if getattr(self, key) is not None:
                sched[key] = getattr(self, key)
        return Schedule(mask_kind=self.mask_kind, **sched)

    def samples_count(self) -> int:
        """Samples drawn per imputation."""
        return self.n_samples or PROFILES[self.profile]["n_samples"]

    def steps_count(self) -> int:
        """DDIM steps per sample."""
        return self.sampling_steps or PROFILES[self.profile]["sampling_steps"]

    # -- inputs --------------------------------------------------------------------------------

    def _inputs(self, ds: xr.Dataset, norm: Normalizer, scales: Scales, coarse_net: Denoiser):
        """Covariates, stage one's coarse samples and stage two's conditioning for ``ds``."""
        _, u = encode(ds, norm, 1)
        series, label = coarse_groups(coarse_cube(ds))
        times = ds["time"].values
        ctx = np.stack([coarse_context(u, label, times, g) for g in range(series.shape[0])])
        z = (series - scales.c_mean) / scales.c_std
        zs = sample_coarse(coarse_net, z, ctx, self.samples_count(), self.steps_count(),
                           self.seed, pick_device(self.device))  # fmt: skip
        c = zs * scales.c_std + scales.c_mean  # (S, G, T) in m³/m³
        c_med = np.median(c, axis=0).T[:, label]  # (T, H, W)
        c_dep = (np.moveaxis(c, 1, 2)[:, :, label] - c_med[None]) / scales.y_std
        seen = np.isfinite(series).T[:, label]
        inputs = FineInputs(u=u, c_med=((c_med - scales.y_mean) / scales.y_std).astype(np.float32),
                            c_dep=c_dep.astype(np.float32), c_seen=seen, times=times)  # fmt: skip
        return inputs, c_med, (series, ctx, z)

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, ds: xr.Dataset) -> DiffReconImputer:
        """Train both stages on the observed ``soil_moisture`` of ``ds`` (self-supervised) and
        calibrate the intervals on validation entries hidden from training."""
        self._validate_params()
        with _threads(self.profile):
            return self._fit(ds)

    def _fit(self, ds: xr.Dataset) -> DiffReconImputer:
        started = time.monotonic()
        torch.manual_seed(self.seed)
        self._remember_grid(ds)
        self._cache = None
        sched = self.schedule()
        device = pick_device(self.device)
        budget = sched.max_minutes * 60 if sched.max_minutes else float("inf")
        ds = with_derived_features(ds)
        values = np.asarray(ds[TARGET].values, np.float64)
        observed = np.isfinite(values)
        val = validation_mask(observed, self.mask_kind, sched.val_fraction, seed=self.seed + 7)
        # Nothing fit computes sees the validation entries (statistics, inputs, tokens).
        known = ds.assign({TARGET: ds[TARGET].where(~val)})
        norm = Normalizer.fit(known)
        series, _ = coarse_groups(coarse_cube(known))
        seen = series[np.isfinite(series)]
        if seen.size < 2:
            raise ValueError(f"'sm_36km' has {seen.size} value(s) in the data: diffrecon's "
                             "stage one needs at least 2 coarse observations")  # fmt: skip
        y = values[observed & ~val]
        scales = Scales(y_mean=float(y.mean()), y_std=float(y.std()) or 0.01,
                        c_mean=float(seen.mean()), c_std=float(seen.std()) or 0.01)  # fmt: skip
        n_cov = norm.n_covariates
        coarse_cfg = NetConfig(
            "coarse", n_coarse_context(n_cov), **PROFILES[self.profile]["coarse"]
        )
        fine_cfg = NetConfig("fine", n_fine_context(n_cov), **PROFILES[self.profile]["fine"])
        coarse_net, fine_net = Denoiser(coarse_cfg), Denoiser(fine_cfg)
        # Stage one on the coarse series (it reads no fine value).
        _, u = encode(known, norm, 1)
        series, label = coarse_groups(coarse_cube(known))
        ctx = np.stack([coarse_context(u, label, known["time"].values, g)
                        for g in range(series.shape[0])])  # fmt: skip
        z = (series - scales.c_mean) / scales.c_std
        coarse_hist = train_coarse(coarse_net, z, ctx, sched, self.seed, device,
                                   started + COARSE_SHARE * budget)  # fmt: skip
        inputs, c_med, _ = self._inputs(known, norm, scales, coarse_net)
        # Stage two on the fine anomalies; the validation entries only score epochs.
        a = (np.where(observed & ~val, values, np.nan) - c_med) / scales.y_std
        val_values = np.where(val, (values - c_med) / scales.y_std, np.nan)
        history = train_fine(fine_net, a, val, val_values, inputs, sched, self.seed, device,
                             started + budget)  # fmt: skip
        self.coarse_net_, self.fine_net_ = coarse_net, fine_net
        self.normalizer_, self.scales_ = norm, scales
        # Calibration: sample the known field, score the samples at the validation entries.
        t0 = time.monotonic()
        samples = self._sample(a, inputs, c_med, days=val.any(axis=(1, 2)))
        classes = strata(observed & ~val)[val]
        self.calibration_ = IntervalCorrections.fit(samples[:, val], values[val], classes)
        median = np.median(samples[:, val], axis=0)
        self.history_ = {"coarse": coarse_hist, "fine": history,
                         "validation_mae": float(np.mean(np.abs(median - values[val]))),
                         "validation_entries": int(val.sum()),
                         "calibration_s": time.monotonic() - t0,
                         "fit_s": time.monotonic() - started}  # fmt: skip
        self.training_ = {**sched.to_dict(), "seed": self.seed, "device": str(device)}
        return self

    # -- sampling ------------------------------------------------------------------------------

    def _sample(self, a, inputs: FineInputs, c_med, days=None) -> np.ndarray:
        anomalies = sample_fine(self.fine_net_, a, inputs, self.samples_count(),
                                self.steps_count(), self.seed, pick_device(self.device),
                                self.schedule(), days=days)  # fmt: skip
        return anomalies * self.scales_.y_std + c_med[None]

    def check(self, ds: xr.Dataset) -> None:
        """ValueError unless ``ds`` lies on the fitted grid with the training covariates."""
        self._check_fitted("fine_net_", "normalizer_")
        self._check_grid(ds)
        self.normalizer_.check(with_derived_features(ds))

    def samples(self, ds: xr.Dataset) -> np.ndarray:
        """(n_samples, time, y, x) samples of the field for ``ds`` (observations kept); the last
        call's samples are reused for the same data."""
        self.check(ds)
        key = fingerprint(ds)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        full = with_derived_features(ds)
        values = np.asarray(ds[TARGET].values, np.float64)
        with _threads(self.profile):
            inputs, c_med, _ = self._inputs(full, self.normalizer_, self.scales_, self.coarse_net_)
            out = self._sample((values - c_med) / self.scales_.y_std, inputs, c_med)
        out = np.where(np.isfinite(values)[None], values[None], out).astype(np.float32)
        self._cache = (key, out)
        return out

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """The median of the samples; observed values kept."""
        self._check_fitted("fine_net_", "normalizer_")
        return as_output(ds, np.median(self.samples(ds), axis=0), self)

    def impute_distribution(
        self,
        ds: xr.Dataset,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target: str = "observation",
        *,
        calibrated: bool = True,
    ) -> xr.Dataset:
        """The median field and the samples' quantiles at ``quantiles``, conformally calibrated
        on the validation entries (``calibrated=False``: the raw sample quantiles). Intervals
        of a new observation only (``target``): the samples are of the observed field."""
        if target not in self.interval_targets:
            raise ValueError(f"target={target!r}: diffrecon gives intervals of an observation")
        self._check_fitted("fine_net_", "calibration_")
        levels = check_quantiles(quantiles)
        point = self.impute(ds)
        q = np.quantile(self.samples(ds), levels, axis=0)
        if calibrated:
            classes = strata(np.isfinite(np.asarray(ds[TARGET].values)))
            q = self.calibration_.apply(q, levels, classes)
        return as_quantiles(ds, point, q, levels, self)

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write a checkpoint folder atomically (see :mod:`.checkpoint`)."""
        from .checkpoint import save_checkpoint

        return save_checkpoint(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> DiffReconImputer:
        """A checkpoint written by :meth:`save`, every setting checked (see :mod:`.checkpoint`)."""
        from .checkpoint import load_checkpoint

        return load_checkpoint(cls, path, device=device)
