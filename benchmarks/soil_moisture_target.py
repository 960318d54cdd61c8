"""Why the soil-moisture interval misses the truth: the 90 % soil-moisture interval of each
conformal reference on the built-in scenario, scored three ways at the held-out entries.

- against the truth (what the benchmark reports);
- against the truth plus each cell's static retrieval bias, estimated here from the truth as the
  cell's mean of (observation - truth) over all its observed days: the noise-free retrieval,
  which is what the interval can know of from retrievals alone (the scenario's retrievals carry
  such a bias, sd 0.01, spatially smooth; on real data only in-situ stations reveal it);
- against the truth again, but with the generator's own noise variance in place of the nugget
  estimate, to show how much of the miss is the noise estimate.

The truth and the bias estimate serve only to score; the models see the held-out data alone.

    python benchmarks/soil_moisture_target.py   # writes benchmarks/results/soil_moisture_target.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from stimpute_core import __version__
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.io import atomic_write
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout, holdout_mask
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.conformal import Conformal
from stimpute_core.uncertainty import coverage

sys.path.insert(0, str(Path(__file__).parent))
from study_areas import AREAS

LEVELS = (0.05, 0.95)
BASES = ("regression", "idw", "coarse")


def main() -> None:
    ds = make_scenario(AREAS["txson"]).load()
    truth, obs = ds[TRUTH].values, ds[TARGET].values
    cell_bias = np.nanmean(obs - truth, axis=0)  # noise averages out over a cell's many days
    retrieval = truth + cell_bias[None]
    noise_var = ScenarioConfig().retrieval_noise ** 2
    rows = []
    for kind in ("time_slice", "point"):
        for seed in range(3):
            hidden = holdout_mask(ds, kind, fraction=0.2, seed=seed)
            given = apply_holdout(ds, hidden)
            for base in BASES:
                t0 = time.perf_counter()
                model = Conformal(base=base, mask_kind=kind, seed=seed).fit(given)

                def cover(reference, model=model, given=given, hidden=hidden):
                    q = model.impute_distribution(given, LEVELS, "soil_moisture")
                    return coverage(q[QUANTILE_NAME].values, LEVELS, reference, hidden, 0.9)

                row = {"holdout": kind, "seed": seed, "model": f"{base}-conformal"}
                row["noise_sd_estimated"] = float(np.sqrt(model.bands_.noise_var))
                row["truth"], row["retrieval"] = cover(truth), cover(retrieval)
                model.bands_.noise_var = noise_var
                row["truth_generator_noise"] = cover(truth)
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                print(json.dumps(row), flush=True)
    payload = {"stimpute_version": __version__, "levels": LEVELS, "rows": rows}
    out = Path(__file__).parent / "results" / "soil_moisture_target.json"
    atomic_write(out, lambda p: p.write_text(json.dumps(payload, indent=1)))
    print("| model | holdout | vs truth | vs noise-free retrieval | vs truth, generator's noise |")
    print("|---|---|---|---|---|")
    for kind in ("time_slice", "point"):
        for base in BASES:
            sel = [r for r in rows if r["holdout"] == kind and r["model"] == f"{base}-conformal"]
            cells = [
                f"{100 * np.mean([r[k] for r in sel]):.1f} %"
                for k in ("truth", "retrieval", "truth_generator_noise")
            ]
            print(f"| {base}-conformal | {kind.replace('_', '-')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
