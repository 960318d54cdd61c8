"""The fitted ST-Transformer over a whole cube: overlapping windows of every patch, their
predictions averaged where they overlap (:class:`~stimpute_core.models.windows.OverlapMean`)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from ...data.contract import TARGET
from ..windows import OverlapMean, patch_origins, take, window_starts
from .training import autocast_dtype

if TYPE_CHECKING:
    from .model import STTransformerImputer


@torch.no_grad()
def predict_cube(
    model: STTransformerImputer, ds: xr.Dataset, *, batch_size: int = 16
) -> np.ndarray:
    """``model``'s output for every cell-day of ``ds`` (original units), before keeping the
    observations; windows every ``impute_stride`` days (default: half a window)."""
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None
    cfg = model.net_.cfg
    y, u, offset = model._encode(ds)
    t, hp, wp = y.shape
    stride = model.impute_stride or max(1, cfg.window // 2)
    device = model._device()
    net = model.net_.to(device)
    acc = OverlapMean((max(t, cfg.window), hp, wp))
    index = [
        (t0, r0, c0)
        for t0 in window_starts(t, cfg.window, stride)
        for r0, c0 in patch_origins(hp, wp, cfg.patch)
    ]
    p, w = cfg.patch, cfg.window
    cast = autocast_dtype(model.impute_precision, device)
    try:
        for k in range(0, len(index), batch_size):
            chunk = index[k : k + batch_size]
            ys = np.stack([take(y, *i, w, p) for i in chunk])
            us = np.stack([take(u, *i, w, p) for i in chunk])
            vis = np.isfinite(ys)
            with torch.autocast(device.type, dtype=cast) if cast else contextlib.nullcontext():
                pred, _ = net(
                    torch.as_tensor(np.nan_to_num(ys), device=device),
                    torch.as_tensor(vis, device=device),
                    torch.as_tensor(us, device=device) if us.shape[-1] else None,
                )
            pred = pred.float().cpu().numpy().reshape(len(chunk), w, p, p)
            for (t0, r0, c0), values in zip(chunk, pred, strict=True):
                acc.add(values, t0, r0, c0)
    finally:
        model.net_.cpu()
    h, wd = ds[TARGET].shape[1:]
    out = acc.mean()[:t, :h, :wd] * model.normalizer_.y_std
    return out + (model.normalizer_.y_mean if offset is None else offset)


__all__ = ["predict_cube"]
