"""Give the shipped ``txson-quick`` checkpoint the calibration its training would have stored
(it was trained before checkpoints kept one), without touching its weights or its prior.

The checkpoint was trained by the command recorded in it, on the built-in scenario with the
evaluation hold-out hidden (``--hide-evaluation``). This script rebuilds exactly that input,
draws the validation entries as ``fit`` drew them and imputes them with the prior that training
used (:func:`stimpute_core.models.st_transformer.intervals.calibrate_trained`). As a check that
the reconstruction is the training's own, the MAE at those entries is printed beside the best
validation MAE the training recorded; the two must agree closely. The scenario's truth then
scores the soil-moisture interval at those entries (how often the 50 % and 90 % intervals hold
the noise-free value): a check of the noise removal only, as the residual quantiles came from
the same entries.

    python benchmarks/calibrate_shipped.py            # rewrites stimpute_core/pretrained/txson-quick
"""

from __future__ import annotations

import json

import numpy as np

from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.scenario import load_scenario
from stimpute_core.models.conformal import STORED_LEVELS, strata
from stimpute_core.models.st_transformer.intervals import calibrate_trained
from stimpute_core.models.st_transformer.model import STTransformerImputer, pretrained_path
from stimpute_core.protocol import hide_evaluation


def main() -> None:
    path = pretrained_path()
    model = STTransformerImputer.load(path, device="cpu")
    command = json.loads((path / "config.json").read_text()).get("command")
    hidden, _ = hide_evaluation(load_scenario())
    bands, estimate, val = calibrate_trained(model, hidden, with_estimate=True)
    pooled = bands.table[-1]  # the residual quantiles of every calibration entry
    mae = float(np.mean(np.abs(pooled)))  # the mean |residual|, from its quantiles
    best = min(h["val_mae"] for h in model.history_)
    print(f"{int(bands.counts[-1])} calibration entries: MAE {mae:.5f} (from the quantiles); "
          f"the training's best validation MAE {best:.5f}")  # fmt: skip
    low, mid, high = np.interp([0.05, 0.5, 0.95], STORED_LEVELS, pooled)
    print(f"residual quantiles 5 / 50 / 95 %: {low:.4f} / {mid:.4f} / {high:.4f}")
    model.calibration_ = bands
    error = hidden[TRUTH].values[val] - estimate[val]
    classes = strata(np.isfinite(hidden[TARGET].where(~val).values))[val]
    for width in (0.5, 0.9):
        lo, hi = bands.offsets((0.5 - width / 2, 0.5 + width / 2), classes, "soil_moisture")
        print(f"{width:.0%} soil-moisture interval holds the truth at "
              f"{np.mean((error >= lo) & (error <= hi)):.1%} of the calibration entries")  # fmt: skip
    model.save(path, command=command, overwrite=True)
    print(f"wrote {path.name} with its calibration")


if __name__ == "__main__":
    main()
