"""``stimpute train``: fit the ST-Transformer (or diffrecon) on a contract file or store."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..data import open_dataset
from ..models import PROFILE_NAMES
from ..protocol import fit_for_evaluation
from .common import device, minutes, positive_int, seed
from .common import eprint as _eprint

MINUTES_HELP = (
    "training time budget in minutes, above 0 (default: the profile's: 8 for quick, 45 for "
    "long, none for tiny and paper)"
)
DEVICE_HELP = "cpu, cuda or cuda:N (default: CUDA when present); refused if this machine lacks it"


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
    """The Dataset ``train`` fits on: ``--data`` whole, or ``--sample-tiles`` of its tiles
    (with ``--tile-rounds``: None, the rounds are read one by one while training)."""
    if args.tile_rounds is not None:
        if args.sample_tiles is None:
            raise ValueError("--tile-rounds: give --sample-tiles K, the tiles of a round")
        if args.model != "st-transformer":
            raise ValueError(f"--tile-rounds: trains the ST-Transformer only, not {args.model}")
        if args.hide_evaluation:
            raise ValueError(
                "--tile-rounds with --hide-evaluation: the evaluation hold-out is drawn over "
                "one Dataset in memory, not over a store read in rounds; leave out one of them"
            )
    if args.sample_tiles is None:
        return open_dataset(args.data)
    from ..data.zarr_io import is_zarr
    from ..tile_sample import sample_tiles

    if not is_zarr(args.data):
        raise ValueError(f"--sample-tiles: --data {args.data} is not a Zarr store (.zarr)")
    if args.tile_rounds is not None:
        return None
    return sample_tiles(args.data, args.sample_tiles, seed=args.seed)


def _tile_rounds(text: str) -> int | str:
    """``--tile-rounds``: a whole number, 1 or more, or ``all``."""
    return "all" if text == "all" else positive_int(text)


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
        prior=None if args.prior == "none" or args.mask == "forecast" else args.prior,
        day_pool=not args.no_day_pool,
        bottleneck=None if args.bottleneck == "none" else args.bottleneck,
        svq_placement=args.svq_placement,
        svq_codes=args.svq_codes,
        svq_frozen=not args.svq_learnable,
        forecast_days=args.forecast_days,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        seed=args.seed,
        device=args.device,
    )
    bar, callback = _training_bar(args.quiet or not main)
    try:
        if ds is None:  # --tile-rounds: one round's tiles in memory at a time
            from ..tile_sample import fit_in_rounds

            rounds = None if args.tile_rounds == "all" else args.tile_rounds
            fit_in_rounds(
                model, args.data, args.sample_tiles, rounds=rounds, seed=args.seed,
                callbacks=[callback],
            )  # fmt: skip
        elif args.hide_evaluation:  # the protocol of the app's scores: see stimpute_core.protocol
            fit_for_evaluation(model, ds, callbacks=[callback])
        else:
            model.fit(ds, callbacks=[callback])
    finally:
        bar.close()
    if not main:  # rank 0 writes the checkpoint
        return 0
    command = "stimpute " + " ".join(sys.argv[1:]) if args.record_command else None
    out = _save_trained(model, args.out, command=command, overwrite=args.overwrite)
    rounds = model.training_.get("rounds", [])
    last = [h for h in model.history_ if h.get("round", 0) == len(rounds) - 1] or model.history_
    best = min(h["val_mae"] for h in last)  # of the last round's weights, on its entries
    epochs = sum(h["epoch"] > 0 for h in model.history_)  # the first entry: before training
    where = f" over {len(rounds)} round(s) of tiles" if len(rounds) > 1 else ""
    _eprint(f"wrote {out}: {epochs} epoch(s){where}, best validation MAE {best:.4f} m³/m³")
    return 0


def _train_diffrecon(args: argparse.Namespace, ds) -> int:
    """``stimpute train --model diffrecon``: the two-stage diffusion imputer, saved."""
    from ..models.diffrecon.model import DiffReconImputer

    st_only = {
        "--spatial": args.spatial != "swin", "--no-temporal": args.no_temporal,
        "--no-covariates": args.no_covariates, "--prior": args.prior != "boosting",
        "--no-derived": args.no_derived, "--no-context": args.no_context,
        "--no-day-pool": args.no_day_pool, "--bottleneck": args.bottleneck != "none",
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


def add_train_command(sub: argparse._SubParsersAction) -> None:
    """The ``train`` command."""
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
        "--mask", choices=("time-slice", "point", "forecast"), default="time-slice",
        help="self-supervised masking: whole days (default) or random entries; forecast: the "
        "last --forecast-days of each window, for `stimpute forecast` (no prior)",
    )  # fmt: skip
    train.add_argument(
        "--forecast-days", type=positive_int, default=7,
        help="with --mask forecast: the most days ahead the model forecasts (default 7)",
    )  # fmt: skip
    train.add_argument(
        "--bottleneck", choices=("none", "svq"), default="none",
        help="svq: a sparse vector quantization bottleneck (stimpute_core.models.st_transformer.svq)",
    )  # fmt: skip
    train.add_argument(
        "--svq-placement", choices=("pre", "post"), default="pre",
        help="pre: on the input encoder's tokens; post: before the readout",
    )  # fmt: skip
    train.add_argument("--svq-codes", type=positive_int, default=512, help="codebook size")
    train.add_argument(
        "--svq-learnable", action="store_true", help="learn the codebook (default: frozen)"
    )
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
    train.add_argument(
        "--tile-rounds", type=_tile_rounds, metavar="R",
        help="with --sample-tiles K: go on training over R rounds of K other tiles each, one "
        "round in memory at a time ('all': one pass over every tile with observations)",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)
