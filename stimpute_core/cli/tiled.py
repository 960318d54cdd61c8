"""The commands that run tile by tile on a Dask cluster (a local one of ``--workers``
processes, or the scheduler at ``--scheduler``): ``stimpute impute`` of a Zarr store
(:mod:`stimpute_core.tiles`), ``stimpute benchmark`` of one (:mod:`stimpute_core.tiled_scores`)
and ``stimpute data region``, the regional scenario written tile by tile
(:mod:`stimpute_core.data.scenario_region`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from tqdm import tqdm

from .common import eprint


def add_tiled_options(
    parser: argparse.ArgumentParser,
    title: str = "tiled imputation (a .zarr --data and --out; --model a per-cell model's "
    "name: mean, linear, kalman or coarse, or an ST-Transformer checkpoint)",
) -> None:
    """The options of a run tile by tile (``impute``, ``benchmark``, ``data region``)."""
    group = parser.add_argument_group(title)
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, help="local Dask cluster of N processes (default: this process)"
    )
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://...)")
    group.add_argument("--tile", type=int, help="cells per tile side (default: the input's chunks)")
    group.add_argument(
        "--worker-memory", default="2GB", help="memory limit per local worker (default: 2GB)"
    )


def wants_tiles(args: argparse.Namespace) -> bool:
    """Whether ``impute`` was asked for a tiled run: a registered per-cell model's name, a
    tiling option, or a Zarr store in and out without ``--quantiles``."""
    from ..data.zarr_io import is_zarr
    from ..tiles import TILED_MODELS

    stores = is_zarr(args.data) and is_zarr(args.out) and not args.quantiles
    return (
        str(args.model) in TILED_MODELS
        or stores
        or any(getattr(args, name) is not None for name in ("workers", "scheduler", "tile"))
    )


@contextlib.contextmanager
def _client(args: argparse.Namespace):
    """The Dask client of the run, its dashboard's address printed (None: tiles one after
    another in this process)."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if args.scheduler is not None:
        with Client(args.scheduler) as client:
            eprint(f"Dask dashboard: {client.dashboard_link}")
            yield client
        return
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: expected 1 or more")
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, memory_limit=args.worker_memory,
        processes=True, dashboard_address=":0",
    ) as cluster, Client(cluster) as client:  # fmt: skip
        eprint(f"Dask dashboard: {client.dashboard_link}")
        yield client


def _bar(unit: str):
    """A progress callback ``(done, total)`` drawing a tqdm bar, and a function closing it."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, unit=unit, desc=f"{unit}s")
        bar.n = done
        bar.refresh()

    return progress, lambda: bar.close() if bar is not None else None


def wants_tiled_benchmark(args: argparse.Namespace, models: list[str]) -> bool:
    """Whether ``benchmark`` runs tile by tile: a Zarr store of per-cell models only.
    ValueError when a tiling option asks for it and it cannot be."""
    from ..data.zarr_io import is_zarr
    from ..tiles import TILED_MODELS

    tiled = is_zarr(args.data) and all(m in TILED_MODELS for m in models)
    asked = [f"--{n}" for n in ("workers", "scheduler", "tile") if getattr(args, n) is not None]
    if asked and not tiled:
        raise ValueError(
            f"{', '.join(asked)}: tiled scoring needs a Zarr store (.zarr) as --data and only "
            f"per-cell models ({', '.join(TILED_MODELS)}); got {', '.join(models)}"
        )
    return tiled


def cmd_benchmark_tiled(
    args: argparse.Namespace, models: list[str], holdouts: list[str], seeds: list[int]
) -> int:
    """``stimpute benchmark`` of a Zarr store tile by tile; prints the table."""
    from .. import __version__
    from ..benchmark import markdown_table, summarise, to_records
    from ..data.atomic import atomic_write
    from ..tiled_scores import run_tiled_benchmark

    t0 = time.perf_counter()
    progress, close = _bar("tile")
    with _client(args) as client:
        results = run_tiled_benchmark(
            args.data, models, holdouts, seeds, fraction=args.fraction,
            test_start=args.test_start, tile=args.tile, client=client, progress=progress,
        )  # fmt: skip
    close()
    if args.json:
        payload = {
            "stimpute_version": __version__, "data": str(args.data), "models": models,
            "holdouts": holdouts, "seeds": seeds, "fraction": args.fraction, "tiled": True,
            "wall_s": time.perf_counter() - t0, "results": to_records(summarise(results)),
            "runs": to_records(results),
        }  # fmt: skip
        text = json.dumps(payload, indent=2, default=str)
        atomic_write(Path(args.json), lambda tmp: tmp.write_text(text))
        eprint(f"wrote {args.json}")
    eprint(f"scored {int(results['tiles'].iloc[0])} tiles in {time.perf_counter() - t0:.1f} s")
    print(markdown_table(summarise(results)))
    return 0


def add_region_command(data_sub: argparse._SubParsersAction) -> None:
    """``stimpute data region``: the regional scenario, written tile by tile into Zarr."""
    from ..data.scenario_region import BLOCK, DEFAULT_BOX

    region = data_sub.add_parser(
        "region",
        help="generate a synthetic region of many 36 km cells tile by tile into a Zarr store "
        "(the built-in scenario's process; never the whole cube in memory)",
    )
    region.add_argument("--out", type=Path, required=True, help="Zarr store to write (.zarr)")
    region.add_argument("--rows", type=int, default=DEFAULT_BOX.nrows, help="cells north-south")
    region.add_argument("--cols", type=int, default=DEFAULT_BOX.ncols, help="cells west-east")
    region.add_argument("--start", default="2019-01-01", help="first day, YYYY-MM-DD")
    region.add_argument("--end", default="2020-12-31", help="last day, YYYY-MM-DD")
    region.add_argument("--seed", type=int, default=0, help="generator seed")
    add_tiled_options(region, f"tiles (--tile: a multiple of {BLOCK} cells, default 72)")
    region.set_defaults(func=cmd_data_region)


def cmd_data_region(args: argparse.Namespace) -> int:
    """Write the regional scenario of ``args`` and say what was written."""
    from ..data.grid import GridBox
    from ..data.scenario_region import DEFAULT_BOX, RegionConfig, write_region_store

    if args.rows < 1 or args.cols < 1:
        raise ValueError(f"--rows {args.rows} --cols {args.cols}: expected 1 or more cells each")
    box = GridBox(DEFAULT_BOX.row0, DEFAULT_BOX.col0, args.rows, args.cols)
    cfg = RegionConfig(seed=args.seed, start=args.start, end=args.end, box=box)
    progress, close = _bar("tile")
    with _client(args) as client:
        summary = write_region_store(
            cfg, args.out, tile=args.tile or 72, client=client, progress=progress
        )
    close()
    nt, ny, nx = summary["shape"]
    eprint(
        f"wrote {args.out}: {ny} x {nx} cells, {nt} days ({summary['cube_gb']} GB of grid "
        f"variables) in {summary['tiles']} tiles, {summary['seconds']:.1f} s"
    )
    return 0


def cmd_impute_tiled(args: argparse.Namespace) -> int:
    """Impute a store tile by tile; prints the dashboard address and a progress bar."""
    from ..tiles import impute_tiled

    if args.quantiles:
        raise ValueError("--quantiles: a tiled imputation gives the field only")
    t0 = time.perf_counter()
    progress, close = _bar("tile")
    with _client(args) as client:
        summary = impute_tiled(
            args.data, str(args.model), args.out, tile=args.tile, client=client, progress=progress
        )
    close()
    skipped = f", {summary['skipped']} already done" if summary["skipped"] else ""
    eprint(
        f"imputed {summary['cells']} cells in {summary['tiles']} tiles{skipped} in "
        f"{time.perf_counter() - t0:.1f} s; wrote {args.out}"
    )
    return 0
