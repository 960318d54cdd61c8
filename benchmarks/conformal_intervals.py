"""Coverage and CRPS of split-conformal intervals (``stimpute_core.models.conformal``) under the
benchmark's protocol: both study areas, both hold-outs, 3 seeds, scored on the held-out entries
of the training ("validation") and test periods against the held-out observations and the
truth.

    python benchmarks/conformal_intervals.py --base regression
    # writes benchmarks/results/conformal_<base>.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from stimpute_core import uncertainty as unc
from stimpute_core.benchmark import _hold_out, default_split
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.scenario import make_scenario
from stimpute_core.data.selection import select_time
from stimpute_core.masks import apply_holdout
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.conformal import Conformal

sys.path.insert(0, str(Path(__file__).parent))
from study_areas import AREAS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="regression")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for area, cfg in AREAS.items():
        ds = make_scenario(cfg).load()
        split = default_split(ds)
        periods = {
            "validation": select_time(ds, *split.train),
            "test": select_time(ds, *split.test),
        }
        for holdout in ("time_slice", "point"):
            for seed in range(args.seeds):
                hidden = _hold_out(periods, split, holdout, 0.2, seed)
                given = {p: apply_holdout(periods[p], hidden[p]) for p in periods}
                t0 = time.perf_counter()
                model = Conformal(base=args.base, mask_kind=holdout, seed=seed).fit(
                    given["validation"]
                )
                fit_s = time.perf_counter() - t0
                for period in periods:
                    out = model.impute_distribution(given[period], unc.SCORE_QUANTILES)
                    q = out[QUANTILE_NAME].values
                    row = {"area": area, "holdout": holdout, "seed": seed, "period": period,
                           "fit_s": fit_s}  # fmt: skip
                    row |= unc.distribution_scores(
                        q, unc.SCORE_QUANTILES, periods[period][TARGET].values, hidden[period]
                    )
                    row |= unc.distribution_scores(
                        q,
                        unc.SCORE_QUANTILES,
                        periods[period][TRUTH].values,
                        hidden[period],
                        suffix="_truth",
                    )
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    out = Path(__file__).parent / "results" / f"conformal_{args.base}.json"
    summary = {}
    for r in rows:
        key = f"{r['area']} {r['holdout']} {r['period']}"
        summary.setdefault(key, []).append(r)
    keys = ("area", "holdout", "seed", "period")
    table = {
        k: {m: float(np.mean([r[m] for r in v])) for m in v[0] if m not in keys}
        for k, v in summary.items()
    }
    out.write_text(json.dumps({"base": args.base, "rows": rows, "mean": table}, indent=1))
    for k, v in table.items():
        print(
            f"{k}: cover90 {v['cover90']:.3f} (truth {v['cover90_truth']:.3f}), cover50 "
            f"{v['cover50']:.3f}, width90 {v['width90']:.4f}, CRPS {v['crps']:.4f} "
            f"(truth {v['crps_truth']:.4f})"
        )


if __name__ == "__main__":
    main()
