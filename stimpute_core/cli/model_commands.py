"""``stimpute train``, ``impute`` and ``benchmark``: fit, apply and compare models."""

from __future__ import annotations

import argparse
import json
import os
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
from ..protocol import fit_for_evaluation
from .common import (
    check_output_file,
    day,
    device,
    fraction,
    minutes,
    positive_int,
    quantile_levels,
    seed,
)
from .common import eprint as _eprint
from .tiled import (
    add_tiled_options,
    cmd_benchmark_tiled,
    cmd_impute_tiled,
    wants_tiled_benchmark,
    wants_tiles,
)


def _training_bar(quiet: bool):
    """A tqdm bar over training steps and the callback that drives it."""
    bar = tqdm(
        total=1000, desc="training", file=sys.stderr, disable=quiet,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}",
    )  # fmt: skip

    def callback(p) -> None:
        bar.n = int(1000 * p.fraction)
        post = {"epoch": f"{p.epoch}/{p.epochs}"}
        if p.train_loss is not None:
            post["loss"] = f"{p.train_loss:.3f}"
        if p.best_val_mae is not None:
            post["val MAE"] = f"{p.best_val_mae:.4f}"
        if p.eta_s is not None:
            post["eta"] = f"{p.eta_s / 60:.1f} min"
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    return bar, callback


def _cmd_train(args: argparse.Namespace) -> int:
    from ..models.st_transformer import distributed

    if args.distributed and args.model != "st-transformer":
        raise ValueError(f"--distributed: trains the ST-Transformer only, not {args.model}")
    if not args.distributed and distributed.launched_by_torchrun():
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']}: started by torchrun without --distributed, "
            "every process would train and write the same model: add --distributed"
        )
    if not args.distributed:
        return _train(args)
    if args.device and ":" in args.device:
        raise ValueError(f"--device {args.device} with --distributed: give cuda (each process "
                         "then takes the GPU of its LOCAL_RANK) or cpu")  # fmt: skip
    distributed.init_from_env(args.device)
    try:
        return _train(args, main=distributed.is_main())
    finally:
        distributed.close()


def _training_data(args: argparse.Namespace):
    """The Dataset ``train`` fits on: ``--data`` whole, or ``--sample-tiles`` of its tiles."""
    if args.sample_tiles is None:
        return open_dataset(args.data)
    from ..data.zarr_io import is_zarr
    from ..tile_sample import sample_tiles

    if not is_zarr(args.data):
        raise ValueError(f"--sample-tiles: --data {args.data} is not a Zarr store (.zarr)")
    return sample_tiles(args.data, args.sample_tiles, seed=args.seed)


def _train(args: argparse.Namespace, main: bool = True) -> int:
    """Train and save; ``main=False`` (a process other than rank 0): train only."""
    from ..models.st_transformer.checkpoint import check_target
    from ..models.st_transformer.model import STTransformerImputer

    check_target(args.out, overwrite=args.overwrite, hint="--overwrite")  # before any training
    ds = _training_data(args)
    if args.model == "diffrecon":
        return _train_diffrecon(args, ds)
    model = STTransformerImputer(
        profile=args.profile,
        spatial=args.spatial,
        temporal=not args.no_temporal,
        use_covariates=not args.no_covariates,
        mask_kind=args.mask.replace("-", "_"),
        derived_inputs=not args.no_derived,
        cell_context=not args.no_context,
        prior=None if args.prior == "none" else args.prior,
        day_pool=not args.no_day_pool,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        device=args.device,
    )
    bar, callback = _training_bar(args.quiet or not main)
    try:
        if args.hide_evaluation:  # the protocol of the app's scores: see stimpute_core.protocol
            fit_for_evaluation(model, ds, callbacks=[callback])
        else:
            model.fit(ds, callbacks=[callback])
    finally:
        bar.close()
    if not main:  # rank 0 writes the checkpoint
        return 0
    command = "stimpute " + " ".join(sys.argv[1:]) if args.record_command else None
    out = _save_trained(model, args.out, command=command, overwrite=args.overwrite)
    best = min(h["val_mae"] for h in model.history_)
    epochs = sum(h["epoch"] > 0 for h in model.history_)  # the first entry: before training
    _eprint(f"wrote {out}: {epochs} epoch(s), best validation MAE {best:.4f} m³/m³")
    return 0


def _train_diffrecon(args: argparse.Namespace, ds) -> int:
    """``stimpute train --model diffrecon``: the two-stage diffusion imputer, saved."""
    from ..models.diffrecon.model import DiffReconImputer

    st_only = {
        "--spatial": args.spatial != "swin", "--no-temporal": args.no_temporal,
        "--no-covariates": args.no_covariates, "--prior": args.prior != "boosting",
        "--no-derived": args.no_derived, "--no-context": args.no_context,
        "--no-day-pool": args.no_day_pool,
    }  # fmt: skip
    given = [flag for flag, used in st_only.items() if used]
    if given:
        raise ValueError(f"{', '.join(given)}: options of the ST-Transformer, not of diffrecon")
    model = DiffReconImputer(
        profile=args.profile,
        mask_kind=args.mask.replace("-", "_"),
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        device=args.device,
    )
    t0 = time.perf_counter()
    if args.hide_evaluation:
        fit_for_evaluation(model, ds)
    else:
        model.fit(ds)
    out = model.save(args.out, overwrite=args.overwrite)
    _eprint(f"wrote {out}: diffrecon trained in {time.perf_counter() - t0:.0f} s")
    return 0


def _save_trained(model, out: Path, *, command: str | None, overwrite: bool) -> Path:
    """Save a trained model to ``out``; if that fails now (the folder changed during training,
    a full disk), beside it under a new name, so that the training is not lost."""
    try:
        return model.save(out, command=command, overwrite=overwrite)
    except (OSError, ValueError) as err:
        spare = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            model.save(spare, command=command)
        except (OSError, ValueError):
            raise err from None
        _eprint(f"stimpute: warning: could not write {out} ({err}); saved as {spare} instead")
        return spare


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


MINUTES_HELP = (
    "training time budget in minutes, above 0 (default: the profile's: 8 for quick, 45 for "
    "long, none for tiny and paper)"
)
DEVICE_HELP = "cpu, cuda or cuda:N (default: CUDA when present); refused if this machine lacks it"


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """The ``train``, ``impute`` and ``benchmark`` commands."""
    train = sub.add_parser("train", help="train the ST-Transformer on a contract NetCDF")
    train.add_argument(
        "--data", type=Path, required=True, help="contract NetCDF, or a Zarr store (.zarr)"
    )
    train.add_argument(
        "--model", choices=("st-transformer", "diffrecon"), default="st-transformer",
        help="the model to train (the options from --spatial to --no-day-pool are the "
        "ST-Transformer's; diffrecon takes --profile tiny, quick or long)",
    )  # fmt: skip
    train.add_argument("--profile", choices=PROFILE_NAMES, default="quick")
    train.add_argument("--spatial", choices=("swin", "full", "none"), default="swin")
    train.add_argument("--no-temporal", action="store_true", help="ablation: no temporal attention")
    train.add_argument("--no-covariates", action="store_true", help="ablation: no covariates")
    train.add_argument(
        "--prior", default="boosting",
        help="reference whose estimate the network corrects (boosting, regression, coarse, ...; "
        "'none' for the paper's model)",
    )  # fmt: skip
    train.add_argument("--no-derived", action="store_true", help="ablation: no derived inputs")
    train.add_argument("--no-context", action="store_true", help="ablation: no cell context")
    train.add_argument("--no-day-pool", action="store_true", help="ablation: no day pooling")
    train.add_argument(
        "--mask", choices=("time-slice", "point"), default="time-slice",
        help="self-supervised masking: whole days (default) or random entries",
    )  # fmt: skip
    train.add_argument("--epochs", type=positive_int, help="at least 1 (default: the profile's)")
    train.add_argument("--max-minutes", type=minutes, help=MINUTES_HELP)
    train.add_argument("--seed", type=seed, default=0, help="random seed, 0 or more")
    train.add_argument("--device", type=device, help=DEVICE_HELP)
    train.add_argument(
        "--out", type=Path, required=True,
        help="checkpoint folder: new or empty (checked before training; a folder holding other "
        "files is never replaced)",
    )  # fmt: skip
    train.add_argument(
        "--overwrite", action="store_true", help="replace the checkpoint already in --out"
    )
    train.add_argument(
        "--record-command", action="store_true", help="store this command line in the checkpoint"
    )
    train.add_argument(
        "--hide-evaluation", action="store_true",
        help="never train on the entries the app scores on (the evaluation hold-out, see "
        "stimpute_core.protocol); recorded in the checkpoint",
    )  # fmt: skip
    train.add_argument(
        "--distributed", action="store_true",
        help="train on the processes started by torchrun (DistributedDataParallel: gloo on the "
        "CPU, nccl on CUDA), e.g. `torchrun --nproc_per_node 2 -m stimpute_core.cli train "
        "--distributed ...`; rank 0 reports and writes --out",
    )  # fmt: skip
    train.add_argument(
        "--sample-tiles", type=positive_int,
        help="train on K full tiles of a Zarr store, drawn with --seed and laid side by side "
        "(a region larger than memory; see stimpute_core.tile_sample)",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)

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
