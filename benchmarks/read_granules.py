"""Measure how fast ``read_smap_cube`` turns a year of SPL2SMAP_S granules into the TxSON cube.

Run: ``python benchmarks/read_granules.py [--dir DIR] [--days 365] [--size 60] [--repeat 3]``.

It writes one SPL2SMAP_S-like granule a day (HDF5, gzip like the product) holding a ``size`` x
``size`` piece of the 1 km grid around the TxSON box (its 36 x 36 cells plus a margin, shifted a
few cells per scene), with a swath edge cutting off part of some scenes (every field fill there,
EASE indices 65534), about 4% fill inside the swath and about 8% of cells flagged. The files go to
a temporary folder unless ``--dir`` is given (an existing folder is reused as it is).

The read runs in a fresh process each time so the peak memory (``ru_maxrss``) is that of the read
alone; the memory after the imports is printed beside it. The best of ``--repeat`` runs is
printed as a Markdown table row for the README.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

START = "2020-01-01"
MARGIN = 12  # cells around the 36 x 36 TxSON box


def write_granules(folder: Path, days: int, size: int, seed: int = 0) -> int:
    """Write ``days`` daily granules of ``size`` x ``size`` cells; return the bytes written."""
    import h5py

    from stimpute_core.data.grid import TXSON_BOX, cell_centres, xy_to_lonlat

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for k, day in enumerate(pd.date_range(START, periods=days, freq="D")):
        row0 = TXSON_BOX.row0 - MARGIN + int(rng.integers(-4, 5))
        col0 = TXSON_BOX.col0 - MARGIN + int(rng.integers(-4, 5))
        rows, cols = np.meshgrid(
            np.arange(row0, row0 + size), np.arange(col0, col0 + size), indexing="ij"
        )
        lon, lat = xy_to_lonlat(*cell_centres("M01", rows, cols))
        season = 0.22 + 0.08 * np.sin(2 * np.pi * k / 365.0)
        sm = np.clip(season + rng.normal(0, 0.05, rows.shape), 0.02, 0.5).astype(np.float32)
        flags = np.where(rng.random(rows.shape) < 0.08, 1, 0).astype(np.uint16)
        sm[rng.random(rows.shape) < 0.04] = -9999.0
        outside = np.zeros(rows.shape, bool)
        if rng.random() < 0.5:  # a swath edge: a straight line across the scene
            a, b = rng.uniform(-1, 1), rng.uniform(0.2, 0.8) * size
            i, j = np.indices(rows.shape)
            outside = i > a * (j - size / 2) + b
        row_index = np.where(outside, 65534, rows).astype(np.uint16)
        col_index = np.where(outside, 65534, cols).astype(np.uint16)
        sm[outside] = -9999.0
        flags[outside] = 65534
        lat = np.where(outside, -9999.0, lat).astype(np.float32)
        lon = np.where(outside, -9999.0, lon).astype(np.float32)

        d = day.strftime("%Y%m%d")
        name = f"SMAP_L2_SM_SP_1AIWDV_{d}T123512_{d}T004512_099W30N_R16515_001.h5"
        with h5py.File(folder / name, "w") as f:
            extent = f.create_group("Metadata/Extent")
            extent.attrs["rangeBeginningDateTime"] = np.bytes_(f"{day:%Y-%m-%d}T12:35:12.000Z")
            g = f.create_group("Soil_Moisture_Retrieval_Data_1km")
            fields = {
                "soil_moisture_1km": (sm, -9999.0),
                "latitude_1km": (lat, -9999.0),
                "longitude_1km": (lon, -9999.0),
                "EASE_row_index_1km": (row_index, 65534),
                "EASE_column_index_1km": (col_index, 65534),
                "retrieval_qual_flag_1km": (flags, 65534),
            }
            for field, (data, fill) in fields.items():
                ds = g.create_dataset(field, data=data, compression="gzip", compression_opts=4)
                ds.attrs["_FillValue"] = data.dtype.type(fill)
            g["soil_moisture_1km"].attrs.update(
                units=np.bytes_("cm3/cm3"), valid_min=np.float32(0.02), valid_max=np.float32(0.5)
            )
        total += (folder / name).stat().st_size
    return total


def _measure(queue, folder: str, start: str, end: str) -> None:
    from stimpute_core.data.readers.smap import read_smap_cube

    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    ds, report = read_smap_cube(folder, region="txson", start=start, end=end)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sm = ds["soil_moisture"].values
    queue.put(
        {
            "wall_s": wall,
            "files": len(report.read) + len(report.skipped),
            "read": len(report.read),
            "skipped": len(report.skipped),
            "observed_fraction": float(np.isfinite(sm).mean()),
            "peak_rss_mb": peak_mb,
            "rss_after_imports_mb": base_mb,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="folder for the granules (default: a temp dir)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--size", type=int, default=36 + 2 * MARGIN, help="cells per side")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "granules"
        t0 = time.perf_counter()
        if folder.is_dir() and any(folder.glob("*.h5")):
            nbytes = sum(p.stat().st_size for p in folder.glob("*.h5"))
            gen_s = None
        else:
            nbytes = write_granules(folder, args.days, args.size)
            gen_s = time.perf_counter() - t0
        end = (pd.Timestamp(START) + pd.Timedelta(days=args.days - 1)).strftime("%Y-%m-%d")

        ctx = mp.get_context("spawn")
        runs = []
        for _ in range(args.repeat):
            queue = ctx.Queue()
            proc = ctx.Process(target=_measure, args=(queue, str(folder), START, end))
            proc.start()
            runs.append(queue.get())
            proc.join()

    best = min(runs, key=lambda r: r["wall_s"])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "granules": args.days,
                "cells_per_granule": f"{args.size} x {args.size}",
                "granule_mb_total": round(nbytes / 1e6, 2),
                "generate_s": None if gen_s is None else round(gen_s, 2),
                "runs": runs,
            },
            indent=2,
        )
    )
    print(
        f"| {best['files']} granules of {args.size} × {args.size} → TxSON 36 × 36 × {args.days} "
        f"| {best['wall_s']:.2f} s | {best['files'] / best['wall_s']:.0f} files/s "
        f"| {max(r['peak_rss_mb'] for r in runs):.0f} MB "
        f"({best['rss_after_imports_mb']:.0f} MB after imports) |"
    )


if __name__ == "__main__":
    main()
