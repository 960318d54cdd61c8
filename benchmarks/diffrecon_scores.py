"""Accuracy and calibration of DiffRecon (``stimpute_core.models.diffrecon``) on one year of the
built-in scenario: both hold-outs (20 % of the observations, whole days or single entries), 3
seeds; each fit sees the observations left after the hold-out, and is scored on the held-out
entries against the observations and the truth: MAE of the median, CRPS, coverage of the 50 %
and 90 % intervals (raw sample quantiles and calibrated), mean 90 % width, and the seconds spent
training and sampling.

    python benchmarks/diffrecon_scores.py --max-minutes 2.5 --threads 1
    # writes benchmarks/results/diffrecon_scores.json (atomically)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from stimpute_core import uncertainty as unc
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.io import atomic_write
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout, holdout_mask
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.diffrecon.model import DiffReconImputer

METRICS = ("mae_obs", "mae_truth", "crps", "crps_raw", "cover50", "cover90", "cover50_raw",
           "cover90_raw", "cover90_truth", "width90", "width90_raw", "train_s", "sample_s")  # fmt: skip


def score(model: DiffReconImputer, ds, given, hidden) -> dict:
    """The row of one fitted model (module text)."""
    t0 = time.perf_counter()
    cal = model.impute_distribution(given, unc.SCORE_QUANTILES)[QUANTILE_NAME].values
    sample_s = time.perf_counter() - t0
    raw = model.impute_distribution(given, unc.SCORE_QUANTILES, calibrated=False)
    raw = raw[QUANTILE_NAME].values
    obs, truth = ds[TARGET].values, ds[TRUTH].values
    median = cal[unc.SCORE_QUANTILES.index(0.5)]
    row = {"mae_obs": float(np.mean(np.abs(median - obs)[hidden])),
           "mae_truth": float(np.mean(np.abs(median - truth)[hidden]))}  # fmt: skip
    row |= unc.distribution_scores(cal, unc.SCORE_QUANTILES, obs, hidden)
    row |= unc.distribution_scores(cal, unc.SCORE_QUANTILES, truth, hidden, suffix="_truth")
    raw_scores = unc.distribution_scores(raw, unc.SCORE_QUANTILES, obs, hidden)
    row |= {f"{k}_raw": v for k, v in raw_scores.items()}
    row["sample_s"] = sample_s
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--max-minutes", type=float, default=2.5, help="training budget per fit")
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--sampling-steps", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "diffrecon_scores.json")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = make_scenario(ScenarioConfig(seed=0, start=args.start, end=args.end)).load()
    rows = []
    for holdout in ("time_slice", "point"):
        for seed in range(args.seeds):
            hidden = holdout_mask(ds, holdout, fraction=0.2, seed=seed)
            given = apply_holdout(ds, hidden)
            model = DiffReconImputer(profile=args.profile, mask_kind=holdout, seed=seed,
                                     max_minutes=args.max_minutes, n_samples=args.n_samples,
                                     sampling_steps=args.sampling_steps)  # fmt: skip
            t0 = time.perf_counter()
            model.fit(given)
            row = {"holdout": holdout, "seed": seed, "train_s": time.perf_counter() - t0,
                   "epochs": len(model.history_["fine"]),
                   "validation_mae": model.history_["validation_mae"]}  # fmt: skip
            row |= score(model, ds, given, hidden)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("holdout", "seed", *METRICS)}), flush=True)
    mean = {}
    for holdout in ("time_slice", "point"):
        part = [r for r in rows if r["holdout"] == holdout]
        mean[holdout] = {m: float(np.mean([r[m] for r in part])) for m in METRICS}
        mean[holdout] |= {f"{m}_sd": float(np.std([r[m] for r in part])) for m in METRICS}
    result = {
        "command": "python benchmarks/diffrecon_scores.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if v is not None and k != "out"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                   f"torch {torch.__version__}",
        "period": [args.start, args.end],
        "settings": model.get_params(),
        "rows": rows,
        "mean": mean,
    }  # fmt: skip
    atomic_write(args.out, lambda p: p.write_text(json.dumps(result, indent=1)))
    for holdout, v in mean.items():
        print(f"{holdout}: MAE obs {v['mae_obs']:.4f} truth {v['mae_truth']:.4f}, CRPS "
              f"{v['crps']:.4f} (raw {v['crps_raw']:.4f}), cover50 {v['cover50']:.3f} (raw "
              f"{v['cover50_raw']:.3f}), cover90 {v['cover90']:.3f} (raw {v['cover90_raw']:.3f}),"
              f" width90 {v['width90']:.4f}, train {v['train_s']:.0f} s, sample "
              f"{v['sample_s']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
