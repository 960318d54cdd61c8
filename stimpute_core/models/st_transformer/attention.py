"""What the ST-Transformer attends to: one query cell-day's attention weights, and their crop to
the cells of the grid for a map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ...data.contract import TARGET
from ..windows import take

if TYPE_CHECKING:
    from .model import STTransformerImputer


@torch.no_grad()
def attention_weights(
    model: STTransformerImputer, ds: xr.Dataset, iy: int, ix: int, day: str | pd.Timestamp
) -> dict:
    """Attention of cell ``(iy, ix)`` on ``day``, per layer and head, ready to draw.

    Returns ``{"days": DatetimeIndex of the window, "cells": (rows, cols) of the patch,
    "layers": [{"temporal": (heads, T) weights over the window's days,
    "spatial": [(heads, P, P) weights over the patch cells, one per spatial block]}]}``.
    Each set of weights sums to one over its keys.
    """
    model._check_fitted("net_", "normalizer_")
    assert model.net_ is not None and model.normalizer_ is not None
    cfg = model.net_.cfg
    times = pd.DatetimeIndex(ds["time"].values)
    ti = int(times.get_indexer([pd.Timestamp(day)])[0])
    if ti < 0:
        raise ValueError(
            f"day {day} is not in the Dataset ({times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d})"
        )
    h, w = ds[TARGET].shape[1:]
    if not (0 <= iy < h and 0 <= ix < w):
        raise ValueError(f"cell ({iy}, {ix}) is outside the {h} x {w} grid")
    y, u, _ = model._encode_cached(ds)
    t0 = int(np.clip(ti - cfg.window // 2, 0, max(0, len(times) - cfg.window)))
    r0, c0 = iy // cfg.patch * cfg.patch, ix // cfg.patch * cfg.patch
    ys = take(y, t0, r0, c0, cfg.window, cfg.patch)[None]
    us = take(u, t0, r0, c0, cfg.window, cfg.patch)[None]
    q_t, q_n = ti - t0, (iy - r0) * cfg.patch + (ix - c0)
    net = model.net_
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


def spatial_on_grid(
    ds: xr.Dataset, att: dict, *, layer: int = -1, block: int = -1, head: int = 0
) -> xr.DataArray:
    """The spatial weights of ``att`` (from :func:`attention_weights` on ``ds``) over the cells
    of its patch that lie inside ``ds``'s grid (the padding cut off), as a ``(y, x)``
    DataArray on ``ds``'s coordinates (lon/lat included), for a map."""
    weights = np.asarray(att["layers"][layer]["spatial"][block][head])
    r0, c0 = att["patch_origin"]
    h = min(weights.shape[0], ds.sizes["y"] - r0)
    w = min(weights.shape[1], ds.sizes["x"] - c0)
    cells = ds[TARGET].isel(time=0, y=slice(r0, r0 + h), x=slice(c0, c0 + w), drop=True)
    return cells.copy(data=weights[:h, :w]).rename("attention").drop_attrs()


def temporal_on_days(ds: xr.Dataset, att: dict, *, layer: int = -1, head: int = 0) -> pd.DataFrame:
    """The temporal weights of ``att`` over its window's days, with whether the query cell was
    observed on each day (``attention``, ``observed``; indexed by day)."""
    days = att["days"]
    weights = att["layers"][layer]["temporal"]
    if weights is None:
        raise ValueError("this model has no temporal attention (temporal=False)")
    q = att["query"]
    observed = ds[TARGET][:, q["row"], q["col"]].to_series().reindex(days).notna()
    return pd.DataFrame(
        {"attention": np.asarray(weights[head]), "observed": observed.values}, index=days
    )
