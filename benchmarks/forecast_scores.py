"""Forecasting 1-7 days ahead on the built-in scenario's last year, against the truth.

The ST-Transformer is trained to forecast (``mask_kind="forecast"``, 7 days, `quick`,
``--minutes`` per fit) on 2016-2021, with and without the SVQ bottleneck, and forecasts 7 days
from every 7th day of 2022 (the data up to the day before each start; nothing of 2022 was
trained on). Two settings:

- *strict*: no information from the forecast days (the ST-Transformer without their
  covariates; persistence; climatology);
- *re-analysis*: the forecast days' weather and coarse product are known (the ST-Transformer
  with them; ``coarse``, the coarse product plus each cell's offset).

References: persistence (each cell's last observation before the start; the climatology where
a cell has none), climatology and coarse (the registered references, fitted on 2016-2021).
MAE against the truth over every cell, per lead day.

    python benchmarks/forecast_scores.py [--minutes 5] [--seed 0]
    # writes benchmarks/results/forecast_scores.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stimpute_core import __version__
from stimpute_core.data import open_dataset
from stimpute_core.data.atomic import atomic_write
from stimpute_core.models import make_imputer
from stimpute_core.models.st_transformer.forecast import forecast
from stimpute_core.models.st_transformer.model import STTransformerImputer

HERE = Path(__file__).parent
DATA = HERE / "out" / "txson.nc"
TRUTH = "soil_moisture_true"
LEADS = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ds = open_dataset(DATA)
    truth = ds[TRUTH]
    data = ds.drop_vars(TRUTH)
    train = data.sel(time=slice(None, "2021-12-31"))
    starts = pd.date_range("2022-01-01", "2022-12-25", freq="7D")
    rows, errors = [], {}

    def score(name: str, setting: str, per_start) -> None:
        err = np.zeros(LEADS)
        for start in starts:
            est = per_start(start)  # (LEADS, y, x)
            days = pd.date_range(start, periods=LEADS)
            err += np.nanmean(np.abs(est - truth.sel(time=days).values), axis=(1, 2))
        errors[name] = err / len(starts)
        rows.append({"method": name, "setting": setting,
                     "mae_by_lead": [round(float(e), 4) for e in errors[name]],
                     "mae_mean": round(float(errors[name].mean()), 4)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)

    clim = make_imputer("climatology").fit(train)
    clim_field = clim.impute(data.sel(time=slice("2022-01-01", None)))
    coarse = make_imputer("coarse").fit(train)
    coarse_field = coarse.impute(data.sel(time=slice("2022-01-01", None)))
    values = data["soil_moisture"].values
    times = pd.DatetimeIndex(data["time"].values)

    def persistence(start):
        past = values[times < start]
        seen = np.isfinite(past)
        last = np.where(seen.any(0), past.shape[0] - 1 - np.argmax(seen[::-1], axis=0), -1)
        value = np.take_along_axis(past, np.maximum(last, 0)[None], axis=0)[0]
        fallback = clim_field.sel(time=start).values
        return np.broadcast_to(np.where(last >= 0, value, fallback), (LEADS, *value.shape))

    def from_field(field):
        return lambda start: field.sel(time=pd.date_range(start, periods=LEADS)).values

    score("persistence", "strict", persistence)
    score("climatology", "strict", from_field(clim_field))
    score("coarse", "re-analysis", from_field(coarse_field))
    fits = {}
    for label, extra in (("st-transformer", {}), ("st-transformer-svq", {"bottleneck": "svq"})):
        model = STTransformerImputer(
            profile="quick", mask_kind="forecast", forecast_days=LEADS,
            max_minutes=args.minutes, seed=args.seed, **extra,
        )  # fmt: skip
        t0 = time.perf_counter()
        model.fit(train)
        fits[label] = {"fit_s": round(time.perf_counter() - t0, 1),
                       "epochs": sum(h["epoch"] > 0 for h in model.history_),
                       "best_val_mae": round(min(h["val_mae"] for h in model.history_), 4),
                       "load_average": round(os.getloadavg()[0], 1)}  # fmt: skip
        print(label, json.dumps(fits[label]), flush=True)
        for setting, future in (("strict", False), ("re-analysis", True)):

            def st(start, model=model, future=future):
                # A year and a window of history: the derived inputs' longest memory is weeks.
                past = data.sel(
                    time=slice(start - pd.Timedelta(days=440), start + pd.Timedelta(days=LEADS - 1))
                )
                return forecast(model, past, LEADS, start=start, future_covariates=future).values

            t0 = time.perf_counter()
            score(f"{label} ({setting})", setting, st)
            rows[-1]["forecast_s_per_start"] = round((time.perf_counter() - t0) / len(starts), 2)
    payload = {
        "stimpute_version": __version__, "machine": "2 CPU cores, no GPU",
        "data": "built-in TxSON scenario, trained on 2016-2021, forecasts from every 7th day of 2022",
        "minutes_per_fit": args.minutes, "seed": args.seed, "fits": fits, "rows": rows,
    }  # fmt: skip
    target = HERE / "results" / "forecast_scores.json"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


if __name__ == "__main__":
    main()
