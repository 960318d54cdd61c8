"""Cost of tiled imputation as the area grows: areas of 1, 4, 16, 64 and 400 times the TxSON
box (36 x 36 cells) over two years of the regional scenario (the built-in scenario's process,
generated tile by tile straight into Zarr, :mod:`stimpute_core.data.scenario_region`), stored in
36 x 36 tiles and imputed tile by tile on a local Dask cluster (2 worker processes, one thread
and a 2 GB memory limit each). The 400x area's cube (720 x 720 cells, 12 GB) is larger than
the two workers' memory together. Reports seconds per cell-day and each worker's peak memory
during the imputation (the kernel's high-water mark, reset when the imputation starts).

    python benchmarks/tiled_scaling.py [--model linear] [--factors 1,4,16,64,400] [--tag _x]
    # writes benchmarks/results/tiled_scaling{tag}.json; stores under benchmarks/out/
    # --model also takes an ST-Transformer checkpoint (stimpute_core/pretrained/txson-quick)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from pathlib import Path

from distributed import Client, LocalCluster

from stimpute_core import __version__
from stimpute_core.data.atomic import atomic_write
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario_region import RegionConfig, write_region_store
from stimpute_core.tiles import impute_tiled

warnings.filterwarnings("ignore", module="zarr")
HERE = Path(__file__).parent


def _reset_peak() -> None:
    """Reset this process's resident-memory high-water mark to its current size (Linux 4.0+).
    A worker process starts from a fork of this one, so without it the mark is this process's."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (MB)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    return kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="linear")
    parser.add_argument("--factors", default="1,4,16,64,400")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the results file's name")
    args = parser.parse_args()
    rows = []
    for factor in [int(f) for f in args.factors.split(",")]:
        side = round(36 * factor**0.5)
        cfg = RegionConfig(box=GridBox(TXSON_BOX.row0, TXSON_BOX.col0, side, side))
        store = HERE / "out" / f"tiled_{factor}x.zarr"
        out = HERE / "out" / f"tiled_{factor}x_imputed.zarr"
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit="2GB",
                          processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:  # fmt: skip
            made = write_region_store(cfg, store, tile=36, client=client)
            client.run(_reset_peak)
            t0 = time.perf_counter()
            summary = impute_tiled(store, args.model, out, client=client)
            wall = time.perf_counter() - t0
            peaks = sorted(client.run(_peak_rss_mb).values())
        cells, days = side * side, made["shape"][0]
        row = {
            "factor": factor, "cells": cells, "tiles": summary["tiles"], "days": days,
            "cube_gb": made["cube_gb"], "generate_s": round(made["seconds"], 1),
            "impute_s": round(wall, 1), "us_per_cell_day": round(1e6 * wall / (cells * days), 2),
            "mean_tile_s": round(sum(summary["tile_seconds"]) / summary["tiles"], 2),
            "worker_peak_mb": [round(p) for p in peaks],
            "load_average": round(os.getloadavg()[0], 1),
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    payload = {
        "stimpute_version": __version__, "model": args.model, "workers": args.workers,
        "machine": "2 CPU cores, no GPU", "worker_memory_limit": "2GB", "rows": rows,
    }  # fmt: skip
    target = HERE / "results" / f"tiled_scaling{args.tag}.json"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


if __name__ == "__main__":
    main()
