"""What the workbench shows, scored: the shipped checkpoint against every reference, as the app
computes it.

Run: ``.venv/bin/python benchmarks/st_quality.py [--json benchmarks/results/st_quality.json]``.

On the built-in scenario with the app's evaluation hold-out hidden (whole days, 20 %, seed 0:
the entries the shipped checkpoint never saw), for the whole period and the app's default
window (the last calendar year), each method imputes the hidden input (the references are
fitted on it, as the app does) and gets:

- MAE on the held-out entries against the observations and against the truth;
- roughness: mean absolute day-to-day change on days without rain (< 1 mm), on pairs of days
  that were both gap-filled (the model's own jitter) and on every pair (what a series shows,
  the noisy observations passed through included); the truth's is the target shape;
- against the 40 stations: pooled ubRMSD of the field imputed with every observation, next to
  the truth's own (the floor: point-scale gain, offset and sensor noise) and the 0.04 target.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from stimpute_core import metrics
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.scenario import load_scenario
from stimpute_core.data.selection import select_time
from stimpute_core.models import make_imputer
from stimpute_core.models.pretrained import Pretrained
from stimpute_core.models.st_transformer.model import STTransformerImputer, pretrained_path
from stimpute_core.protocol import hide_evaluation, impute_for_evaluation
from stimpute_core.validation import EVALUATION_HOLDOUT, evaluation_mask

REFERENCES = ("mean", "idw", "coarse", "regression", "boosting", "boosting-smooth")


def score_window(ds, evaluation, name, model=None) -> dict:
    """Scores of one method on ``ds`` under the app's protocol (``evaluation``: its hold-out)."""
    hidden, mask = hide_evaluation(ds, mask=evaluation)
    make = (lambda: make_imputer(name)) if model is None else (lambda: Pretrained(model))
    t0 = time.perf_counter()
    full, held = (f.values for f in impute_for_evaluation(make, ds, mask=evaluation))
    seconds = time.perf_counter() - t0
    gaps = ~np.isfinite(hidden[TARGET].values)
    both_gaps = gaps & np.roll(gaps, 1, axis=0)
    stations = metrics.station_table(ds, full)
    pooled = stations[stations["station"] == "all"].iloc[0]
    return {
        "method": name,
        "mae": metrics.mae(held, ds[TARGET].values, mask),
        "mae_truth": metrics.mae(held, ds[TRUTH].values, mask),
        "roughness_gaps": metrics.roughness(held, ds["prcp"], pairs=both_gaps),
        "roughness_all": metrics.roughness(held, ds["prcp"]),
        "station_ubrmsd": float(pooled["ubrmsd"]),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped one")
    args = parser.parse_args()
    ds = load_scenario()
    model = STTransformerImputer.load(args.checkpoint or pretrained_path())
    mask_all = evaluation_mask(ds, **EVALUATION_HOLDOUT)
    last = ds["time"].values[-1].astype("datetime64[Y]").astype(str)
    windows = {"2016-2022": (None, None), f"{last}": (f"{last}-01-01", f"{last}-12-31")}
    out = {}
    for label, (start, end) in windows.items():
        part = ds if start is None else select_time(ds, start, end)
        rows = [score_window(part, mask_all, "st-transformer", model)]
        rows += [score_window(part, mask_all, name) for name in REFERENCES]
        truth = part[TRUTH].values
        rows.append(
            {
                "method": "truth",
                "roughness_gaps": metrics.roughness(truth, part["prcp"]),
                "roughness_all": metrics.roughness(truth, part["prcp"]),
                "station_ubrmsd": float(
                    metrics.station_table(part, truth).query("station == 'all'")["ubrmsd"].iloc[0]
                ),
            }
        )
        out[label] = rows
        print(f"\n**{label}**\n")
        print("| method | MAE | MAE vs truth | roughness (gap days) | roughness (all days) | "
              "station ubRMSD | time (s) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            cells = [r["method"]]
            for key in ("mae", "mae_truth", "roughness_gaps", "roughness_all", "station_ubrmsd"):
                cells.append(f"{r[key]:.4f}" if key in r else "–")
            cells.append(f"{r['seconds']:.1f}" if "seconds" in r else "–")
            print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
