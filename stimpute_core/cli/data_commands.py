"""``stimpute data ...``: make, read and describe contract Datasets.

Outputs are checked before any long read: ``--out`` must not be a folder, and ``data demo``
never replaces anything already at ``--out`` (it refuses; delete or rename it yourself).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..data import ContractError, open_dataset, write_dataset
from ..data.grid import TXSON_BOX, GridBox
from ..data.readers.formats import GRANULES_DESCRIPTION
from ..data.scenario import ScenarioConfig, load_scenario, make_scenario, scenario_path
from ..data.summary import describe, describe_problems, format_description, station_file_summary
from .common import check_output_file
from .common import eprint as _eprint
from .tiled import add_region_command


def _check_out(path: Path, *, replace: bool = True) -> None:
    """Refuse an ``--out`` that is a folder other than a Zarr store (or, without ``replace``,
    that exists at all)."""
    if not replace and (path.exists() or path.is_symlink()):
        what = "a folder" if path.is_dir() else "a file"
        raise ValueError(
            f"--out {path} already exists ({what}): `stimpute data demo` never replaces "
            "anything; delete or rename it, or give another --out"
        )
    check_output_file(path, "--out")


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
    if args.out is not None:
        _check_out(args.out, replace=False)
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
    write_dataset(ds, args.out)
    _eprint(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    print(format_description(describe(ds)))
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    """Describe and check; a file that cannot be described gets its problems, not a traceback."""
    from ..data import validate

    ds = open_dataset(args.file, check=False)
    stations = station_file_summary(ds)
    if stations is not None:
        raise ValueError(f"{args.file}: {stations}")
    problems = describe_problems(ds)
    if problems:
        try:
            validate(ds, source=str(args.file))
        except ContractError as err:
            problems += [p for p in err.problems if p not in problems]
        if args.json:
            print(json.dumps({"contract_problems": problems}, indent=2))
        else:
            print(f"contract    {ContractError(problems, str(args.file))}")
        return 1
    info = describe(ds)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_description(info))
    try:
        validate(ds, source=str(args.file))
        print("contract    OK")
    except ContractError as err:
        print(f"contract    {err}")
        return 1
    return 0


def _print_report(report) -> None:
    _eprint(report.summary())


def _streamed(path: Path) -> bool:
    """Whether ``--out`` names a Zarr store, which the readers write a batch of days at a time."""
    from ..data.zarr_io import SUFFIX

    return path.suffix.lower() == SUFFIX


def _description(ds) -> str:
    """:func:`describe` of ``ds`` as text (a lazily opened store: without loading the cube)."""
    return format_description(describe(ds))


def _cmd_data_smap(args: argparse.Namespace) -> int:
    from ..data.grid import box_for_region
    from ..data.readers.smap import read_smap_cube
    from ..data.readers.smap_common import check_cube_memory, period_days
    from ..data.readers.smap_stream import stream_smap_cube
    from ..data.selection import parse_region

    _check_out(args.out)

    def require_data(ds, report) -> None:
        """Print the report; refuse a cube without any valid value (nothing is written)."""
        _print_report(report)
        if not bool(ds["soil_moisture"].notnull().any()):
            raise ValueError(
                f"no valid soil moisture for region {args.region} in {args.start}..{args.end}: "
                f"{ds.attrs['granules_outside_region']} granule(s) outside the region, "
                f"{ds.attrs['granules_outside_period']} outside the period, "
                f"{len(report.skipped)} unreadable; nothing written"
            )

    read = {
        "region": args.region,
        "start": args.start,
        "end": args.end,
        "resolution": args.resolution,
        "quality": args.quality,
        "progress": not args.quiet,
    }
    if _streamed(args.out):  # a batch of days at a time, never the whole cube
        ds, report = stream_smap_cube(args.granules, args.out, check=require_data, **read)
    else:
        box = box_for_region(*parse_region(args.region))
        check_cube_memory(
            len(period_days(args.start, args.end)),
            box.nrows,
            box.ncols,
            6,  # the running sum (float32) and count (uint16) the reader holds
            what=f"the soil-moisture cube of region {args.region}",
            advice="give a smaller --region or a shorter --start..--end period (several cubes "
            "can be built one after the other), or write a Zarr store (--out NAME.zarr), which "
            "is built a batch of days at a time",
        )
        ds, report = read_smap_cube(args.granules, **read)
        require_data(ds, report)
        write_dataset(ds, args.out)
    _eprint(f"wrote {args.out}")
    print(_description(ds))
    return 0


def _cmd_data_insitu(args: argparse.Namespace) -> int:
    from ..data.readers.formats import CSV_SUFFIX, has_suffix
    from ..data.readers.insitu import read_insitu_csv, read_ismn

    _check_out(args.out)
    depth = {"min_depth": args.min_depth, "max_depth": args.max_depth}
    if has_suffix(args.path, [CSV_SUFFIX]):
        ds, report = read_insitu_csv(args.path, start=args.start, end=args.end, **depth)
    else:
        ds, report = read_ismn(
            args.path, network=args.network, start=args.start, end=args.end, **depth
        )
    _print_report(report)
    write_dataset(ds, args.out)
    t = ds["time"].values
    print(
        f"wrote {args.out}: {ds.sizes['station']} station(s), {str(t[0])[:10]} .. {str(t[-1])[:10]}"
    )
    return 0


def _cmd_data_build(args: argparse.Namespace) -> int:
    from ..data.readers.build import build_from_recipe

    _check_out(args.out)
    out = args.out if _streamed(args.out) else None  # a store: streamed a batch of days at a time
    ds, report = build_from_recipe(args.recipe, progress=lambda m: _eprint(f"  {m} ..."), out=out)
    _print_report(report)
    if out is None:
        write_dataset(ds, args.out)
    _eprint(f"wrote {args.out}")
    print(_description(ds))
    return 0


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """The ``data`` command and its subcommands."""
    data = sub.add_parser("data", help="prepare and inspect contract Datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    demo = data_sub.add_parser(
        "demo", help="generate the built-in synthetic TxSON scenario (cached when --out is omitted)"
    )
    demo.add_argument(
        "--out", type=Path, help="NetCDF file (or .zarr store) to write; omit to fill the cache"
    )
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
        "smap",
        help="SPL2SMAP_S granules of a folder -> daily soil_moisture cube (NetCDF, or a Zarr "
        "store written a batch of days at a time when --out ends .zarr)",
    )
    smap.add_argument("granules", type=Path, help=f"folder of {GRANULES_DESCRIPTION}")
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
    add_region_command(data_sub)
