"""``stimpute forecast``: the next days past the data, from a checkpoint trained to forecast."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..data import open_dataset
from ..data.atomic import atomic_write
from .common import check_output_file, day, device, positive_int
from .common import eprint as _eprint


def _cmd_forecast(args: argparse.Namespace) -> int:
    from ..models.st_transformer.forecast import forecast
    from ..models.st_transformer.model import STTransformerImputer

    check_output_file(args.out, "--out")
    if args.out.suffix.lower() != ".nc":
        raise ValueError(f"--out {args.out}: expected a NetCDF file (.nc)")
    if args.out.absolute() == args.data.absolute():
        raise ValueError(f"--out {args.out} is the input file: give another path")
    ds = open_dataset(args.data)
    model = STTransformerImputer.load(args.model, device=args.device)
    t0 = time.perf_counter()
    field = forecast(
        model, ds, args.days, start=args.start, future_covariates=not args.no_future_covariates
    )
    coords = {k: ds[k] for k in ("lat", "lon") if k in ds.coords or k in ds}
    out = field.to_dataset().assign_coords(coords)
    out.attrs = {"source": str(args.data.name), "model": str(Path(args.model).name)}
    atomic_write(args.out, lambda tmp: out.to_netcdf(tmp))
    days = field["time"].values
    _eprint(
        f"forecast {args.days} day(s), {str(days[0])[:10]} to {str(days[-1])[:10]}, in "
        f"{time.perf_counter() - t0:.1f} s; covariates on the forecast days: "
        f"{field.attrs['covariate_days']}; wrote {args.out}"
    )
    return 0


def add_forecast_command(sub: argparse._SubParsersAction) -> None:
    """The ``forecast`` command."""
    fc = sub.add_parser("forecast", help="forecast the next days with a forecasting checkpoint")
    fc.add_argument("--data", type=Path, required=True, help="contract NetCDF: the data so far")
    fc.add_argument(
        "--model", type=Path, required=True,
        help="checkpoint trained with `stimpute train --mask forecast`",
    )  # fmt: skip
    fc.add_argument("--days", type=positive_int, required=True, help="days ahead, 1 or more")
    fc.add_argument("--out", type=Path, required=True, help="NetCDF: soil_moisture_forecast")
    fc.add_argument(
        "--start", type=day,
        help="first forecast day (default: the day after the data's last); observations from "
        "it on are not used, the file's covariates on the forecast days are",
    )  # fmt: skip
    fc.add_argument(
        "--no-future-covariates", action="store_true",
        help="do not use the time-varying covariates of the forecast days even where the file "
        "has them (a forecast without the future's weather)",
    )  # fmt: skip
    fc.add_argument("--device", type=device, help="cpu, cuda or cuda:N")
    fc.set_defaults(func=_cmd_forecast)
