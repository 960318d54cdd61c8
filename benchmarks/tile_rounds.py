"""Does training over every tile of a region beat training on one sample of it, at equal time?

A 144 x 144 region of the regional scenario (16 times the TxSON box, one year, 36 x 36 tiles,
so 16 tiles), the `quick` ST-Transformer trained three ways, each then imputing the whole store
tile by tile (two Dask workers of one thread):

- `1 round, 2 min`: 4 tiles, 2 minutes (the first round of the next row, alone);
- `1 round, 8 min`: the same 4 tiles, 8 minutes;
- `4 rounds x 2 min`: the 4 rounds of 4 tiles that cover the region, 2 minutes each (8 in all).

Scored against the scenario's truth on every entry without an observation (training never saw
the truth), over the whole region and over the 12 tiles outside the first round (tiles the
one-sample models never saw). `linear` (per cell, tiled) is there for scale; the per-day and
per-region references are not tiled.

    python benchmarks/tile_rounds.py [--seed 0] [--minutes 2]
    # writes benchmarks/results/tile_rounds.json; stores under benchmarks/out/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from distributed import Client, LocalCluster

from stimpute_core import __version__
from stimpute_core.data.atomic import atomic_write
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario_region import RegionConfig, write_region_store
from stimpute_core.data.zarr_io import open_zarr
from stimpute_core.models.base import OUTPUT_NAME
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.tile_sample import fit_in_rounds, tile_rounds
from stimpute_core.tiles import impute_tiled

warnings.filterwarnings("ignore", module="zarr")
HERE = Path(__file__).parent
OUT = HERE / "out" / "tile_rounds"


def _scores(store: Path, field: Path, unseen: np.ndarray) -> dict:
    """MAE against the truth over the entries without an observation: all, and unseen tiles."""
    ds, out = open_zarr(store), open_zarr(field, check=False)
    gap = ds["soil_moisture"].isnull()
    err = abs(out[OUTPUT_NAME] - ds["soil_moisture_true"]).where(gap)
    mask = xr.DataArray(unseen, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]})
    return {
        "mae_truth_all": round(float(err.mean().compute()), 5),
        "mae_truth_unseen_tiles": round(float(err.where(mask).mean().compute()), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=2.0, help="per round")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = RegionConfig(
        seed=args.seed, start="2019-01-01", end="2019-12-31",
        box=GridBox(TXSON_BOX.row0, TXSON_BOX.col0, 144, 144),
    )  # fmt: skip
    store = OUT / "region.zarr"
    shutil.rmtree(store, ignore_errors=True)
    rows = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit="3GB",
                      processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:  # fmt: skip
        made = write_region_store(cfg, store, tile=36, client=client)
        plan = tile_rounds(store, 4, seed=args.seed)
        unseen = np.ones((144, 144), dtype=bool)
        for t in plan[0]:
            unseen[t.y0 : t.y1, t.x0 : t.x1] = False
        t0 = time.perf_counter()
        shutil.rmtree(OUT / "linear.zarr", ignore_errors=True)
        impute_tiled(store, "linear", OUT / "linear.zarr", client=client)
        rows.append({"variant": "linear (per cell)", "train_s": 0.0,
                     "impute_s": round(time.perf_counter() - t0, 1),
                     **_scores(store, OUT / "linear.zarr", unseen)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        variants = [
            (f"1 round, {args.minutes:g} min", 1, args.minutes),
            (f"1 round, {4 * args.minutes:g} min", 1, 4 * args.minutes),
            (f"4 rounds x {args.minutes:g} min", 4, args.minutes),
        ]
        for name, rounds, minutes in variants:
            model = STTransformerImputer(profile="quick", max_minutes=minutes, seed=args.seed)
            t0 = time.perf_counter()
            fit_in_rounds(model, store, 4, rounds=rounds, seed=args.seed)
            train_s = time.perf_counter() - t0
            ckpt = model.save(OUT / f"ckpt_{rounds}_{minutes:g}", overwrite=True)
            field = OUT / f"field_{rounds}_{minutes:g}.zarr"
            shutil.rmtree(field, ignore_errors=True)
            t0 = time.perf_counter()
            impute_tiled(store, str(ckpt), field, client=client)
            rows.append({
                "variant": name, "train_s": round(train_s, 1),
                "impute_s": round(time.perf_counter() - t0, 1),
                "epochs": sum(h["epoch"] > 0 for h in model.history_),
                "rounds": model.training_["rounds"], **_scores(store, field, unseen),
                "load_average": round(os.getloadavg()[0], 1),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    payload = {
        "stimpute_version": __version__, "machine": "2 CPU cores, no GPU",
        "region": "144 x 144 cells, 2019, 36 x 36 tiles (16)", "seed": args.seed,
        "cube_gb": made["cube_gb"], "rows": rows,
        "first_round_tiles": [f"rows {t.y0}-{t.y1 - 1} cols {t.x0}-{t.x1 - 1}" for t in plan[0]],
    }  # fmt: skip
    target = HERE / "results" / "tile_rounds.json"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


if __name__ == "__main__":
    main()
