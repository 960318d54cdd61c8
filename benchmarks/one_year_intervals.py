"""Probabilistic methods on the setup of ``diffrecon_scores.py`` (one year of the built-in
scenario, 20 % held out as whole days or single entries, 3 seeds, each fit on what is left and
scored on the held-out entries), so that diffrecon's numbers have the ST-Transformer's and the
references' beside them: MAE of the field against the observations and the truth, CRPS,
50 % / 90 % coverage and the 90 % width of the observation intervals against the observations,
the 90 % coverage of the soil-moisture intervals against the truth, fit and quantile seconds.

    python benchmarks/one_year_intervals.py --models st-transformer,regression-conformal,idw-conformal
    # writes benchmarks/results/one_year_intervals.json (after every fit)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from stimpute_core import uncertainty as unc
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.io import atomic_write
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout, holdout_mask
from stimpute_core.models import make_imputer
from stimpute_core.models.base import OUTPUT_NAME, QUANTILE_NAME

LEVELS = unc.SCORE_QUANTILES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="st-transformer,regression-conformal,idw-conformal")
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--max-minutes", type=float, default=2.5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "one_year_intervals.json"
    ds = make_scenario(ScenarioConfig(seed=0, start=args.start, end=args.end)).load()
    obs, truth = ds[TARGET].values, ds[TRUTH].values
    rows = []
    for holdout in ("time_slice", "point"):
        for seed in range(args.seeds):
            hidden = holdout_mask(ds, holdout, fraction=0.2, seed=seed)  # diffrecon_scores' draw
            given = apply_holdout(ds, hidden)
            for name in args.models.split(","):
                model = make_imputer(name, mask_kind=holdout, seed=seed,
                                     max_minutes=args.max_minutes)  # fmt: skip
                t0 = time.perf_counter()
                model.fit(given)
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                dist = model.impute_distribution(given, LEVELS)
                sample_s = time.perf_counter() - t0
                q, field = dist[QUANTILE_NAME].values, dist[OUTPUT_NAME].values
                kind = "soil_moisture" if "soil_moisture" in model.interval_targets else None
                value_q = (
                    q
                    if kind is None
                    else (model.impute_distribution(given, LEVELS, kind)[QUANTILE_NAME].values)
                )
                row = {"model": name, "holdout": holdout, "seed": seed, "fit_s": fit_s,
                       "sample_s": sample_s,
                       "mae_obs": float(np.mean(np.abs(field - obs)[hidden])),
                       "mae_truth": float(np.mean(np.abs(field - truth)[hidden]))}  # fmt: skip
                row |= unc.distribution_scores(q, LEVELS, obs, hidden)
                row |= unc.distribution_scores(value_q, LEVELS, truth, hidden, suffix="_truth")
                rows.append(row)
                print(json.dumps(row), flush=True)
                payload = {"command": "python benchmarks/one_year_intervals.py " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
                    "machine": "2 CPU cores (shared with other jobs), no GPU", "rows": rows}  # fmt: skip
                text = json.dumps(payload, indent=1)
                atomic_write(out, lambda p, text=text: p.write_text(text))


if __name__ == "__main__":
    main()
