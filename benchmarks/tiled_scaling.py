"""Cost of tiled imputation as the area grows: areas of 1, 4, 16 and 64 times the TxSON box
(36 x 36 cells) over two years of the built-in scenario's process, written as Zarr stores in
36 x 36 tiles and imputed tile by tile on a local Dask cluster (2 worker processes, one thread
and a 2 GB memory limit each). Reports seconds per cell and each worker's peak memory.

    python benchmarks/tiled_scaling.py [--model linear] [--factors 1,4,16,64]
    # writes benchmarks/results/tiled_scaling.json; stores under benchmarks/out/
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
import warnings
from pathlib import Path

from distributed import Client, LocalCluster

from stimpute_core import __version__
from stimpute_core.data.atomic import atomic_write
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.zarr_io import write_zarr
from stimpute_core.tiles import impute_tiled

warnings.filterwarnings("ignore", module="zarr")
HERE = Path(__file__).parent


def _peak_rss_mb() -> float:
    """This process's peak resident memory (MB; Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="linear")
    parser.add_argument("--factors", default="1,4,16,64")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for factor in [int(f) for f in args.factors.split(",")]:
        side = round(36 * factor**0.5)
        box = GridBox(TXSON_BOX.row0, TXSON_BOX.col0, side, side)
        t0 = time.perf_counter()
        ds = make_scenario(ScenarioConfig(start="2019-01-01", end="2020-12-31", box=box))
        store = HERE / "out" / f"tiled_{factor}x.zarr"
        shutil.rmtree(store, ignore_errors=True)
        write_zarr(ds, store, tile=36)
        made_s, cube_mb = time.perf_counter() - t0, ds.nbytes / 1e6
        del ds
        out = HERE / "out" / f"tiled_{factor}x_imputed.zarr"
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit="2GB",
                          processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:  # fmt: skip
            t0 = time.perf_counter()
            summary = impute_tiled(store, args.model, out, client=client)
            wall = time.perf_counter() - t0
            peaks = sorted(client.run(_peak_rss_mb).values())
        cells = side * side
        row = {
            "factor": factor, "cells": cells, "tiles": summary["tiles"], "days": 731,
            "cube_mb": round(cube_mb), "make_and_write_s": round(made_s, 1),
            "impute_s": round(wall, 1), "us_per_cell_day": round(1e6 * wall / (cells * 731), 2),
            "mean_tile_s": round(sum(summary["tile_seconds"]) / summary["tiles"], 2),
            "worker_peak_mb": [round(p) for p in peaks],
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    payload = {
        "stimpute_version": __version__, "model": args.model, "workers": args.workers,
        "machine": "2 CPU cores, no GPU", "rows": rows,
    }  # fmt: skip
    target = HERE / "results" / "tiled_scaling.json"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


if __name__ == "__main__":
    main()
