"""The ``stimpute`` command line: data preparation and the benchmark.

Every command only calls library functions; errors print one clear message and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .baselines import BASELINES
from .data import ContractError, open_dataset, write_netcdf
from .data.grid import TXSON_BOX, GridBox
from .data.readers import ReaderError
from .data.scenario import ScenarioConfig, load_scenario, make_scenario, scenario_path
from .data.summary import describe, format_description
from .masks import MASK_KINDS
from .models import MODEL_NAMES, PROFILE_NAMES, SLOW_ON_CPU, installed_models


def _eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parse_box(text: str | None) -> GridBox:
    """``ROW0,COL0,NROWS,NCOLS`` of the 1 km grid (``None``: the TxSON 36 km cell)."""
    if text is None:
        return TXSON_BOX
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or min(values[2:]) < 2 or min(values[:2]) < 0:
        raise ValueError(
            f"--box {text!r}: expected ROW0,COL0,NROWS,NCOLS of the 1 km grid "
            "(integers, origin >= 0, at least 2 rows and 2 columns)"
        )
    return GridBox(*values)


def _cmd_data_demo(args: argparse.Namespace) -> int:
    cfg = ScenarioConfig(seed=args.seed, start=args.start, end=args.end, box=_parse_box(args.box))
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        _eprint(f"  {msg} ...")

    if args.out is None:
        path = scenario_path(cfg)
        if path.is_file():
            _eprint(f"built-in scenario cached at {path}")
            return 0
        _eprint("generating the built-in TxSON scenario (cached for later runs)")
        load_scenario(cfg, progress=progress)
        _eprint(f"done in {time.perf_counter() - t0:.1f} s: {path}")
        return 0
    _eprint("generating the built-in TxSON scenario")
    ds = make_scenario(cfg, progress=progress)
    write_netcdf(ds, args.out)
    _eprint(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    print(format_description(describe(ds)))
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    ds = open_dataset(args.file, check=False)
    info = describe(ds)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_description(info))
    try:
        from .data import validate

        validate(ds, source=str(args.file))
        print("contract    OK")
    except ContractError as err:
        print(f"contract    {err}")
        return 1
    return 0


def _print_report(report) -> None:
    _eprint(report.summary())


def _cmd_data_smap(args: argparse.Namespace) -> int:
    from .data.readers.smap import read_smap_cube

    ds, report = read_smap_cube(
        args.granules,
        region=args.region,
        start=args.start,
        end=args.end,
        resolution=args.resolution,
        quality=args.quality,
        progress=not args.quiet,
    )
    _print_report(report)
    if not bool(ds["soil_moisture"].notnull().any()):
        raise ValueError(
            f"no valid soil moisture for region {args.region} in {args.start}..{args.end}: "
            f"{ds.attrs['granules_outside_region']} granule(s) outside the region, "
            f"{ds.attrs['granules_outside_period']} outside the period, "
            f"{len(report.skipped)} unreadable; nothing written"
        )
    write_netcdf(ds, args.out)
    _eprint(f"wrote {args.out}")
    print(format_description(describe(ds)))
    return 0


def _cmd_data_insitu(args: argparse.Namespace) -> int:
    from .data.readers.insitu import read_insitu_csv, read_ismn

    depth = {"min_depth": args.min_depth, "max_depth": args.max_depth}
    if args.path.suffix.lower() == ".csv":
        ds, report = read_insitu_csv(args.path, start=args.start, end=args.end, **depth)
    else:
        ds, report = read_ismn(
            args.path, network=args.network, start=args.start, end=args.end, **depth
        )
    _print_report(report)
    write_netcdf(ds, args.out)
    t = ds["time"].values
    print(
        f"wrote {args.out}: {ds.sizes['station']} station(s), {str(t[0])[:10]} .. {str(t[-1])[:10]}"
    )
    return 0


def _cmd_data_build(args: argparse.Namespace) -> int:
    from .data.readers.build import build_from_recipe

    ds, report = build_from_recipe(args.recipe, progress=lambda m: _eprint(f"  {m} ..."))
    _print_report(report)
    write_netcdf(ds, args.out)
    _eprint(f"wrote {args.out}")
    print(format_description(describe(ds)))
    return 0


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
    from .models.st_transformer.model import STTransformerImputer

    ds = open_dataset(args.data)
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
    if args.hide_evaluation:
        from .masks import apply_holdout
        from .validation import EVALUATION_HOLDOUT, evaluation_mask

        ds = apply_holdout(ds, evaluation_mask(ds, **EVALUATION_HOLDOUT).values)
    bar, callback = _training_bar(args.quiet)
    try:
        model.fit(ds, callbacks=[callback])
    finally:
        bar.close()
    if args.hide_evaluation:
        model.training_["holdout"] = dict(EVALUATION_HOLDOUT)
    command = "stimpute " + " ".join(sys.argv[1:]) if args.record_command else None
    model.save(args.out, command=command)
    best = min(h["val_mae"] for h in model.history_)
    _eprint(
        f"wrote {args.out}: {len(model.history_)} epoch(s), best validation MAE {best:.4f} m³/m³"
    )
    return 0


def _cmd_impute(args: argparse.Namespace) -> int:
    from .models.st_transformer.model import STTransformerImputer

    ds = open_dataset(args.data)
    model = STTransformerImputer.load(args.model, device=args.device)
    t0 = time.perf_counter()
    imputed = model.impute(ds)
    out = ds.assign({imputed.name: imputed})
    write_netcdf(out, args.out)
    _eprint(f"imputed {imputed.shape} in {time.perf_counter() - t0:.1f} s; wrote {args.out}")
    return 0


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import markdown_table, run_benchmark, summarise, to_records

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
        _write_text_atomic(Path(args.json), json.dumps(payload, indent=2, default=str))

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
    print(markdown_table(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stimpute`` command."""
    parser = argparse.ArgumentParser(
        prog="stimpute", description="Gap-filling of sparse satellite soil moisture."
    )
    parser.add_argument("--version", action="version", version=f"stimpute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="prepare and inspect contract Datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    demo = data_sub.add_parser(
        "demo", help="generate the built-in synthetic TxSON scenario (cached when --out is omitted)"
    )
    demo.add_argument("--out", type=Path, help="NetCDF file to write; omit to fill the cache")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--start", default=ScenarioConfig.start, help="first day (YYYY-MM-DD)")
    demo.add_argument("--end", default=ScenarioConfig.end, help="last day (YYYY-MM-DD)")
    demo.add_argument(
        "--box",
        help="ROW0,COL0,NROWS,NCOLS of the 1 km EASE-Grid 2.0 (default: the TxSON 36 km cell)",
    )
    demo.set_defaults(func=_cmd_data_demo)
    info = data_sub.add_parser("info", help="describe a contract NetCDF and check it")
    info.add_argument("file", type=Path)
    info.add_argument("--json", action="store_true", help="print the description as JSON")
    info.set_defaults(func=_cmd_data_info)

    smap = data_sub.add_parser(
        "smap", help="SPL2SMAP_S granules of a folder -> daily soil_moisture cube (NetCDF)"
    )
    smap.add_argument("granules", type=Path, help="folder of SPL2SMAP_S .h5 granules")
    smap.add_argument("--region", default="txson", help="txson or W,S,E,N in degrees")
    smap.add_argument("--start", required=True, help="first day (YYYY-MM-DD)")
    smap.add_argument("--end", required=True, help="last day (YYYY-MM-DD)")
    smap.add_argument("--resolution", choices=("1km", "3km"), default="1km")
    smap.add_argument(
        "--quality",
        choices=("recommended", "all"),
        default="recommended",
        help="recommended: drop cells whose retrieval quality flag bit 0 is set",
    )
    smap.add_argument("--out", type=Path, required=True)
    smap.add_argument("--quiet", action="store_true", help="no progress bar")
    smap.set_defaults(func=_cmd_data_smap)

    insitu = data_sub.add_parser(
        "insitu", help="ISMN archive (folder or zip) or TxSON long CSV -> daily station NetCDF"
    )
    insitu.add_argument("path", type=Path, help="ISMN folder or .zip, or a .csv")
    insitu.add_argument("--network", default="TxSON", help="ISMN network (default TxSON)")
    insitu.add_argument("--min-depth", type=float, default=0.0, help="metres (default 0)")
    insitu.add_argument("--max-depth", type=float, default=0.05, help="metres (default 0.05)")
    insitu.add_argument("--start", help="first day (YYYY-MM-DD)")
    insitu.add_argument("--end", help="last day (YYYY-MM-DD)")
    insitu.add_argument("--out", type=Path, required=True)
    insitu.set_defaults(func=_cmd_data_insitu)

    build = data_sub.add_parser(
        "build", help="merge granules, covariates and stations into one contract Dataset"
    )
    build.add_argument("recipe", type=Path, help="TOML recipe (see the README)")
    build.add_argument("--out", type=Path, required=True)
    build.set_defaults(func=_cmd_data_build)

    train = sub.add_parser("train", help="train the ST-Transformer on a contract NetCDF")
    train.add_argument("--data", type=Path, required=True, help="contract NetCDF")
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
    train.add_argument("--epochs", type=int, help="default: the profile's")
    train.add_argument("--max-minutes", type=float, help="training time budget")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    train.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    train.add_argument(
        "--record-command", action="store_true", help="store this command line in the checkpoint"
    )
    train.add_argument(
        "--hide-evaluation", action="store_true",
        help="never train on the entries the app scores on (the evaluation hold-out, see "
        "stimpute_core.validation); recorded in the checkpoint",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_train)

    impute = sub.add_parser("impute", help="fill a contract NetCDF with a trained checkpoint")
    impute.add_argument("--data", type=Path, required=True, help="contract NetCDF")
    impute.add_argument("--model", type=Path, required=True, help="checkpoint directory")
    impute.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    impute.add_argument(
        "--out", type=Path, required=True, help="NetCDF: the input plus soil_moisture_imputed"
    )
    impute.set_defaults(func=_cmd_impute)

    bench = sub.add_parser("benchmark", help="the paper's hold-out protocol over several models")
    bench.add_argument("--data", type=Path, required=True, help="contract NetCDF")
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
    bench.add_argument("--seeds", type=int, default=3, help="number of seeds (hold-out draws)")
    bench.add_argument(
        "--fraction", type=float, default=0.2, help="fraction of observations held out"
    )
    bench.add_argument(
        "--test-start", help="first day of the test period (default: last two years)"
    )
    bench.add_argument(
        "--profile", choices=PROFILE_NAMES, default="quick", help="ST-Transformer size"
    )
    bench.add_argument("--epochs", type=int, help="ST-Transformer epochs (default: the profile's)")
    bench.add_argument(
        "--max-minutes", type=float, help="ST-Transformer training time budget per fit"
    )
    bench.add_argument("--json", help="write results to this JSON file")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(func=_cmd_benchmark)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stimpute`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ContractError, ValueError, FileNotFoundError, ReaderError) as err:
        _eprint(f"stimpute: error: {err}")
        return 2
    except KeyboardInterrupt:
        _eprint("stimpute: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
