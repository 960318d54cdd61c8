"""``stimpute impute`` and ``benchmark``: apply and compare models (``train``: :mod:`.train_command`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..data import open_dataset, write_dataset
from ..data.io import atomic_write
from ..masks import MASK_KINDS
from ..models import MODEL_NAMES, PROFILE_NAMES, SLOW_ON_CPU, installed_models
from ..models.base import OUTPUT_NAME, is_probabilistic
from ..models.baselines import BASELINES
from .common import (
    check_output_file,
    day,
    device,
    fraction,
    minutes,
    positive_int,
    quantile_levels,
)
from .common import eprint as _eprint
from .tiled import (
    add_tiled_options,
    cmd_benchmark_tiled,
    cmd_impute_tiled,
    wants_tiled_benchmark,
    wants_tiles,
)
from .train_command import DEVICE_HELP, MINUTES_HELP, add_train_command


def _cmd_impute(args: argparse.Namespace) -> int:
    from ..models.saved import load_model

    check_output_file(args.out, "--out")
    if args.out.absolute() == args.data.absolute():
        raise ValueError(f"--out {args.out} is the input file: give another path")
    if wants_tiles(args):
        return cmd_impute_tiled(args)
    ds = open_dataset(args.data)
    model = load_model(args.model, device=args.device)
    if args.quantiles and not is_probabilistic(model):
        raise ValueError(
            f"--quantiles: the checkpoint {args.model} holds no calibration (saved before "
            "intervals were added): train it again with `stimpute train`"
        )
    t0 = time.perf_counter()
    if args.quantiles:
        result = model.impute_distribution(ds, args.quantiles)
        out = ds.assign(dict(result.data_vars))
    else:
        result = model.impute(ds)
        out = ds.assign({result.name: result})
    write_dataset(out, args.out)
    shape = out[OUTPUT_NAME].shape
    _eprint(f"imputed {shape} in {time.perf_counter() - t0:.1f} s; wrote {args.out}")
    return 0


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from ..benchmark import interval_table, markdown_table, run_benchmark, summarise, to_records

    chosen = _split_list(args.models)
    skip = _split_list(args.skip) if args.skip else []
    models = installed_models() if chosen == ["all"] else chosen
    unknown = [m for m in [*models, *skip] if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(
            f"unknown model(s) {', '.join(unknown)}: choose from all, {', '.join(MODEL_NAMES)}"
        )
    models = [m for m in models if m not in skip]
    if not models:
        raise ValueError("no model left to run after --skip")
    slow = [m for m in models if m in SLOW_ON_CPU]
    if slow and not args.quiet:
        _eprint("slow on a CPU (leave out with --skip):")
        for m in slow:
            _eprint(f"  {m}: {SLOW_ON_CPU[m]}")
    holdouts = [h.replace("-", "_") for h in _split_list(args.holdout)]
    bad = [h for h in holdouts if h not in MASK_KINDS]
    if bad:
        raise ValueError(
            f"unknown holdout(s) {', '.join(bad)}: choose from {', '.join(MASK_KINDS)}"
        )
    if args.json:
        check_output_file(Path(args.json), "--json")
    if wants_tiled_benchmark(args, models):
        return cmd_benchmark_tiled(args, models, holdouts, list(range(args.seeds)))
    ds = open_dataset(args.data)
    seeds = list(range(args.seeds))
    total = len(models) * len(holdouts) * len(seeds)
    bar = tqdm(total=total, desc="benchmark", unit="run", file=sys.stderr, disable=args.quiet)

    def progress(msg: str) -> None:
        if not msg.startswith("["):  # a message, not the start of a run
            bar.write(msg, file=sys.stderr)
            return
        bar.set_postfix_str(msg.split("] ", 1)[-1])
        if not msg.startswith("[1/"):
            bar.update(1)

    t0 = time.perf_counter()

    def save(results) -> None:
        if not args.json:
            return
        payload = {
            "stimpute_version": __version__,
            "data": str(args.data),
            "models": models,
            "holdouts": holdouts,
            "seeds": seeds,
            "fraction": args.fraction,
            "st_options": st_options,
            "wall_s": time.perf_counter() - t0,
            "results": to_records(summarise(results)),
            "runs": to_records(results),
        }
        text = json.dumps(payload, indent=2, default=str)
        atomic_write(Path(args.json), lambda tmp: tmp.write_text(text))

    st_options = {"profile": args.profile, "epochs": args.epochs, "max_minutes": args.max_minutes}
    results = run_benchmark(
        ds,
        models,
        holdouts,
        seeds,
        fraction=args.fraction,
        test_start=args.test_start,
        st_options=st_options,
        progress=progress,
        on_result=save,  # partial results survive an interrupted run
    )
    bar.update(bar.total - bar.n)
    bar.close()
    save(results)
    if args.json:
        _eprint(f"wrote {args.json}")
    failed = results[results["error"].notna()] if "error" in results else results.iloc[:0]
    for _, row in failed.drop_duplicates(["model", "holdout", "seed"]).iterrows():
        _eprint(f"failed: {row['model']} · {row['holdout']} · seed {row['seed']}: {row['error']}")
    summary = summarise(results)
    if summary.empty:
        _eprint("stimpute: error: every run failed: nothing to tabulate")
        return 1
    print(markdown_table(summary))
    intervals = interval_table(summary)
    if intervals:
        print("\nIntervals of the probabilistic methods (✗: a 90 % interval outside 85-95 %):")
        print(intervals)
    return 0


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """The ``train``, ``impute`` and ``benchmark`` commands."""
    add_train_command(sub)

    impute = sub.add_parser("impute", help="fill a contract NetCDF with a trained checkpoint")  # fmt: skip
    impute.add_argument(
        "--data", type=Path, required=True, help="contract NetCDF, or a Zarr store (.zarr)"
    )
    impute.add_argument(
        "--model", type=Path, required=True,
        help="checkpoint directory, or for a tiled run a per-cell model's name",
    )  # fmt: skip
    impute.add_argument("--device", type=device, help=DEVICE_HELP)
    impute.add_argument(
        "--out",
        type=Path,
        required=True,
        help="NetCDF, or a Zarr store (.zarr): the input plus soil_moisture_imputed",
    )
    impute.add_argument(
        "--quantiles", type=quantile_levels,
        help="also write soil_moisture_quantile(quantile, time, y, x) at these levels, e.g. "
        "0.05,0.5,0.95 (calibrated intervals; observed entries keep their value in each)",
    )  # fmt: skip
    add_tiled_options(impute)
    impute.set_defaults(func=_cmd_impute)

    bench = sub.add_parser("benchmark", help="the paper's hold-out protocol over several models")
    bench.add_argument(
        "--data", type=Path, required=True, help="contract NetCDF, or a Zarr store (.zarr)"
    )
    bench.add_argument(
        "--models",
        default=",".join(BASELINES),
        help=f"comma list of: {', '.join(MODEL_NAMES)}; or 'all' (every installed method) "
        "(default: the covariate-blind baselines)",
    )
    bench.add_argument("--skip", help="comma list of models to leave out (e.g. of 'all')")
    bench.add_argument(
        "--holdout",
        default="time-slice",
        help="time-slice (whole days, the paper's MNAR), point (MCAR), block or spatial; "
        "a comma list runs several",
    )
    bench.add_argument(
        "--seeds", type=positive_int, default=3, help="number of seeds (hold-out draws), 1 or more"
    )
    bench.add_argument(
        "--fraction", type=fraction, default=0.2,
        help="fraction of observations held out, between 0 and 1",
    )  # fmt: skip
    bench.add_argument(
        "--test-start", type=day,
        help="first day of the test period, YYYY-MM-DD (default: the last two years, which "
        "needs more than two years of data)",
    )  # fmt: skip
    bench.add_argument(
        "--profile", choices=PROFILE_NAMES, default="quick", help="ST-Transformer size"
    )
    bench.add_argument(
        "--epochs", type=positive_int, help="ST-Transformer epochs (default: the profile's)"
    )
    bench.add_argument(
        "--max-minutes", type=minutes, help=f"per ST-Transformer fit: {MINUTES_HELP}"
    )
    bench.add_argument("--json", help="write results to this JSON file")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tiled_options(
        bench,
        "tiled scoring (a .zarr --data and per-cell models only: mean, linear, kalman, coarse)",
    )
    bench.set_defaults(func=_cmd_benchmark)
