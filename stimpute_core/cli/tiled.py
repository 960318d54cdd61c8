"""``stimpute impute`` of a Zarr store tile by tile (:mod:`stimpute_core.tiles`), on a Dask
cluster: a local one of ``--workers`` processes, or the scheduler at ``--scheduler``."""

from __future__ import annotations

import argparse
import contextlib
import time

from tqdm import tqdm

from .common import eprint


def add_tiled_options(parser: argparse.ArgumentParser) -> None:
    """The options of a tiled imputation on the ``impute`` parser."""
    group = parser.add_argument_group(
        "tiled imputation (a .zarr --data and --out; --model a per-cell model's name: mean, "
        "linear, kalman or coarse, or an ST-Transformer checkpoint)"
    )
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
    """The Dask client of the run (None: tiles one after another in this process)."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if args.scheduler is not None:
        with Client(args.scheduler) as client:
            yield client
        return
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: expected 1 or more")
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=1, memory_limit=args.worker_memory,
        processes=True, dashboard_address=":0",
    ) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def cmd_impute_tiled(args: argparse.Namespace) -> int:
    """Impute a store tile by tile; prints the dashboard address and a progress bar."""
    from ..tiles import impute_tiled

    if args.quantiles:
        raise ValueError("--quantiles: a tiled imputation gives the field only")
    t0 = time.perf_counter()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, unit="tile", desc="tiles")
        bar.n = done
        bar.refresh()

    with _client(args) as client:
        if client is not None:
            eprint(f"Dask dashboard: {client.dashboard_link}")
        summary = impute_tiled(
            args.data, str(args.model), args.out, tile=args.tile, client=client, progress=progress
        )
    if bar is not None:
        bar.close()
    skipped = f", {summary['skipped']} already done" if summary["skipped"] else ""
    eprint(
        f"imputed {summary['cells']} cells in {summary['tiles']} tiles{skipped} in "
        f"{time.perf_counter() - t0:.1f} s; wrote {args.out}"
    )
    return 0
