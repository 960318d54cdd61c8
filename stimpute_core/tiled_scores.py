"""Tiled scoring: the benchmark's hold-out protocol (:mod:`.benchmark`) on a Zarr store, tile by
tile on Dask, for the models that impute each cell from its own series
(:data:`~stimpute_core.tiles.TILED_MODELS`).

Each task reads one tile's whole series once and, for every hold-out, seed and model, hides the
tile's share of the held-out entries, fits on the training period, imputes both periods and
returns sums of the errors on the hidden entries (count, sums of errors, of their squares and
absolute values, of the values and their products). Summed over tiles these give exactly the
scores :func:`~stimpute_core.metrics.score` gives on the whole cube (MAE, MRE, RMSE, bias,
ubRMSD, r), so memory is bounded by one tile however large the region.

The held-out entries:

- ``time_slice`` (whole days): the same days an untiled run hides (the days with any
  observation come from one lazy reduction over the store, then the same draw as
  :func:`~stimpute_core.masks.time_slice_mask`), so the scores equal an untiled
  :func:`~stimpute_core.benchmark.run_benchmark` of the same model to rounding;
- ``point`` (single entries): each tile draws its own ``fraction`` of its observed entries
  (seeded by the seed and the tile's number). The untiled draw picks entries over the whole
  cube at once and cannot be split into tiles, so the entries differ from an untiled run's
  (same fraction, same protocol) and depend on the tile size; :func:`holdout_for_tile` gives
  them, so an untiled scoring of the same entries can be checked against the tiled one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import masks
from .benchmark import PERIODS, default_split
from .data.contract import TARGET, TRUTH
from .data.tasks import run_tasks
from .data.zarr_io import load_here, open_zarr
from .models import make_imputer
from .tiles import TILED_MODELS, Tile, plan_tiles, store_tile

#: The error sums a tile returns, from which :func:`scores_from_sums` rebuilds the scores.
SUMS = ("n", "sp", "st", "sabs", "se", "se2", "sat", "sp2", "st2", "spt")


def error_sums(pred: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict[str, float]:
    """The sums behind every score of ``pred`` against ``truth`` on the entries ``where``
    (finite in both)."""
    keep = where & np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[keep].astype(float), truth[keep].astype(float)
    e = p - t
    values = (p.size, p.sum(), t.sum(), np.abs(e).sum(), e.sum(), (e * e).sum(),
              np.abs(t).sum(), (p * p).sum(), (t * t).sum(), (p * t).sum())  # fmt: skip
    return dict(zip(SUMS, (float(v) for v in values), strict=True))


def add_sums(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Element-wise sum of two :func:`error_sums` results."""
    return {k: a.get(k, 0.0) + b[k] for k in SUMS}


def scores_from_sums(s: dict[str, float]) -> dict[str, Any]:
    """``n, mae, mre, rmse, bias, ubrmsd, r`` (as :func:`~stimpute_core.metrics.score`) from
    summed :func:`error_sums`."""
    n = s["n"]
    if n == 0:
        nan = float("nan")
        return {"n": 0, "mae": nan, "mre": nan, "rmse": nan, "bias": nan, "ubrmsd": nan, "r": nan}
    bias = s["se"] / n
    mse = s["se2"] / n
    cov = s["spt"] / n - (s["sp"] / n) * (s["st"] / n)
    var_p = s["sp2"] / n - (s["sp"] / n) ** 2
    var_t = s["st2"] / n - (s["st"] / n) ** 2
    denom = np.sqrt(max(var_p, 0.0) * max(var_t, 0.0))
    return {
        "n": int(n),
        "mae": s["sabs"] / n,
        "mre": s["sabs"] / s["sat"] if s["sat"] > 0 else float("nan"),
        "rmse": float(np.sqrt(mse)),
        "bias": bias,
        "ubrmsd": float(np.sqrt(max(mse - bias**2, 0.0))),
        "r": float(cov / denom) if n >= 2 and denom > 0 else float("nan"),
    }


def hidden_days(ds: xr.Dataset, fraction: float, seed: int) -> np.ndarray:
    """The days (boolean over ``time``) the ``time_slice`` hold-out hides in ``ds``: the draw of
    :func:`~stimpute_core.masks.time_slice_mask`, from one lazy reduction over the store."""
    observed_days = np.asarray(ds[TARGET].notnull().any(("y", "x")).values, dtype=bool)
    chosen = masks.draw_days(observed_days[:, None, None], fraction, np.random.default_rng(seed))
    return chosen[:, 0, 0]


def holdout_for_tile(
    observed: np.ndarray, kind: str, fraction: float, seed: int, tile: Tile, days=None
) -> np.ndarray:
    """The held-out entries of one tile (``observed``: the tile's observed entries):
    ``time_slice`` hides every observed entry of ``days`` (:func:`hidden_days`), ``point`` draws
    ``fraction`` of the tile's observed entries with a generator seeded by ``seed`` and the
    tile's number (module text)."""
    if kind == "time_slice":
        return observed & np.asarray(days, dtype=bool)[:, None, None]
    if kind == "point":
        rng = np.random.default_rng([seed, tile.index])
        return masks.draw_points(observed, fraction, rng)
    raise ValueError(f"hold-out {kind!r}: tiled scoring runs 'time_slice' and 'point'")


def score_tile(
    plan: dict[str, Any],
    source: str,
    models: Sequence[str],
    tile: Tile,
) -> list[dict[str, Any]]:
    """Score ``models`` on one tile of the store ``source`` for every hold-out and seed of
    ``plan`` (periods, fraction, hidden days); returns one row of sums per model, hold-out,
    seed and period."""
    ds = load_here(open_zarr(source, check=False).isel(tile.region))
    periods = {p: ds.sel(time=slice(*plan["periods"][p])) for p in PERIODS}
    rows = []
    for holdout in plan["holdouts"]:
        for seed in plan["seeds"]:
            hidden, inputs = {}, {}
            for k, p in enumerate(PERIODS):
                observed = np.isfinite(periods[p][TARGET].values)
                days = plan["days"].get((holdout, seed, p))
                hidden[p] = holdout_for_tile(
                    observed, holdout, plan["fraction"], seed + 1000 * k, tile, days
                )
                inputs[p] = masks.apply_holdout(periods[p], hidden[p])
            for name in models:
                row = {"model": name, "holdout": holdout, "seed": seed}
                mask_kind = "time_slice" if holdout == "time_slice" else "point"
                imputer = make_imputer(name, mask_kind=mask_kind, seed=seed)
                t0 = time.perf_counter()
                fitted = inputs["validation"][TARGET].notnull().any()
                if fitted:
                    imputer.fit(inputs["validation"])
                fit_s = time.perf_counter() - t0
                for p in PERIODS:
                    t0 = time.perf_counter()
                    pred = (
                        np.asarray(imputer.impute(inputs[p]).values)
                        if fitted
                        else np.full(hidden[p].shape, np.nan)
                    )
                    impute_s = time.perf_counter() - t0
                    target = periods[p][TARGET].values
                    out = {**row, "period": p, "fit_s": fit_s, "impute_s": impute_s,
                           "obs": error_sums(pred, target, hidden[p])}  # fmt: skip
                    if TRUTH in periods[p]:
                        out["truth"] = error_sums(pred, periods[p][TRUTH].values, hidden[p])
                    rows.append(out)
    return rows


def run_tiled_benchmark(
    source: str | os.PathLike,
    models: Sequence[str],
    holdouts: Sequence[str] = ("time_slice",),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    fraction: float = 0.2,
    test_start: str | None = None,
    tile: int | None = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The benchmark's rows (as :func:`~stimpute_core.benchmark.run_benchmark`: one per model,
    hold-out, period and seed, with ``n, mae, mre, rmse, bias, ubrmsd, r``, ``mae_truth`` on
    synthetic data, and fit and impute seconds summed over tiles) for the Zarr store
    ``source``, scored tile by tile on the Dask ``client`` (in this process when None)."""
    for name in models:
        if name not in TILED_MODELS:
            raise ValueError(
                f"model {name!r} cannot be scored tile by tile: expected one of "
                f"{', '.join(TILED_MODELS)} (models that impute each cell from its own series)"
            )
    holdouts = [h.replace("-", "_") for h in holdouts]
    source = Path(source)
    ds = open_zarr(source)
    split = default_split(ds, test_start)
    spans = {"validation": split.train, "test": split.test}
    days = {}
    for holdout in holdouts:
        for seed in seeds:
            for k, p in enumerate(PERIODS):
                if holdout == "time_slice":
                    part = ds.sel(time=slice(*spans[p]))
                    days[holdout, seed, p] = hidden_days(part, fraction, seed + 1000 * k)
                    if not days[holdout, seed, p].any():
                        raise ValueError(
                            f"the {p} period {spans[p][0]} .. {spans[p][1]} has no day the "
                            f"time-slice hold-out of {fraction:g} hides: choose another "
                            "--test-start, a larger --fraction or a point hold-out"
                        )
    plan = {"periods": spans, "holdouts": holdouts, "seeds": list(seeds),
            "fraction": fraction, "days": days}  # fmt: skip
    tiles = plan_tiles(ds.sizes["y"], ds.sizes["x"], store_tile(ds) if tile is None else tile)
    jobs = [(str(source), list(models), t) for t in tiles]
    results = run_tasks(score_tile, jobs, shared=plan, client=client, progress=progress)
    return _combine(results, spans)


def _combine(results: list[list[dict[str, Any]]], spans: dict[str, tuple]) -> pd.DataFrame:
    """Sum the tiles' rows into one scored row per model, hold-out, seed and period."""
    totals: dict[tuple, dict[str, Any]] = {}
    for tile_rows in results:
        for r in tile_rows:
            key = (r["model"], r["holdout"], r["period"], r["seed"])
            acc = totals.setdefault(key, {"fit_s": 0.0, "impute_s": 0.0, "obs": {}, "truth": {}})
            acc["fit_s"] += r["fit_s"]
            acc["impute_s"] += r["impute_s"]
            acc["obs"] = add_sums(acc["obs"], r["obs"])
            if "truth" in r:
                acc["truth"] = add_sums(acc["truth"], r["truth"])
    rows = []
    for (model, holdout, period, seed), acc in totals.items():
        row = {"model": model, "holdout": holdout, "period": period, "seed": seed,
               "start": spans[period][0], "end": spans[period][1],
               **scores_from_sums(acc["obs"]), "fit_s": acc["fit_s"],
               "impute_s": acc["impute_s"], "tiles": len(results)}  # fmt: skip
        if acc["truth"]:
            row["mae_truth"] = scores_from_sums(acc["truth"])["mae"]
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "SUMS",
    "error_sums",
    "hidden_days",
    "holdout_for_tile",
    "run_tiled_benchmark",
    "score_tile",
    "scores_from_sums",
]
