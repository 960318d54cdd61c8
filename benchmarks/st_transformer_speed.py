"""ST-Transformer speed, the paper's inputs and this package's defaults side by side in one run.

Run: ``.venv/bin/python benchmarks/st_transformer_speed.py [--profile quick] [--minutes 1]
[--device cuda] [--json benchmarks/results/st_speed.json]``.

For each variant it trains for ``--minutes`` on the whole default scenario (2016-2022) and
reports the optimisation steps per second, the training throughput in all cell-days and in
*useful* cell-days per second (observed entries, the only ones that carry information: about
5 % of the tokens), the time spent before training (the cross-fitted prior), and the time to
impute the whole cube (in the default precision and in the other, and the prior's share).
Prints JSON and Markdown table rows for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from stimpute_core.data.scenario import load_scenario
from stimpute_core.models import make_imputer
from stimpute_core.models.st_transformer.model import PROFILES
from stimpute_core.models.st_transformer.training import autocast_dtype, pick_device

VARIANTS = {"paper inputs": "st-transformer-paper", "defaults": "st-transformer"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--device", default=None)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = pick_device(args.device)
    ds = load_scenario()
    rows = []
    for label, name in VARIANTS.items():
        model = make_imputer(
            name, profile=args.profile, max_minutes=args.minutes, seed=0, device=str(device)
        )
        t0 = time.perf_counter()
        model.fit(ds)
        fit_s = time.perf_counter() - t0
        train_s = model.history_[-1]["elapsed_s"]
        cfg = model.net_.cfg
        samples = model.history_[-1]["samples_seen"]
        observed = model.history_[-1]["observed_seen"]
        t0 = time.perf_counter()
        model.impute(ds)
        impute_s = time.perf_counter() - t0
        # The same imputation in the other precision (the default is bfloat16 on a GPU that
        # has it, float32 on the CPU), and the prior's share of it.
        other = "float32" if autocast_dtype("auto", device) else "bfloat16"
        model.impute_precision = other
        t0 = time.perf_counter()
        model.impute(ds)
        impute_fp32_s = time.perf_counter() - t0
        model.impute_precision = "auto"
        prior_s = 0.0
        if model.prior_model_ is not None:
            t0 = time.perf_counter()
            model.prior_model_.estimate(model._with_inputs(ds))
            prior_s = time.perf_counter() - t0
        rows.append(
            {
                "variant": label,
                "model": name,
                "profile": args.profile,
                "device": str(device)
                if device.type == "cpu"
                else torch.cuda.get_device_name(device),
                "parameters": sum(p.numel() for p in model.net_.parameters()),
                "before_training_s": fit_s - train_s,
                "train_s": train_s,
                "samples_per_s": samples / train_s,
                "cell_days_per_s": samples * cfg.window * cfg.patch**2 / train_s,
                "useful_cell_days_per_s": observed / train_s,
                "impute_precision": str(autocast_dtype("auto", device) or torch.float32),
                "impute_whole_cube_s": impute_s,
                "impute_other_precision": other,
                "impute_whole_cube_other_precision_s": impute_fp32_s,
                "impute_prior_s": prior_s,
            }
        )
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{torch.get_num_threads()} torch threads",
        "cube": list(ds["soil_moisture"].shape),
        "rows": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    for r in rows:
        print(
            f"| {r['variant']} | {r['profile']} | {r['device']} | {r['parameters']:,} | "
            f"{r['before_training_s']:.0f} s | {r['samples_per_s']:.1f} | "
            f"{r['cell_days_per_s']:,.0f} | {r['useful_cell_days_per_s']:,.0f} | "
            f"{r['impute_whole_cube_s']:.1f} s ({r['impute_precision']}) | "
            f"{r['impute_whole_cube_other_precision_s']:.1f} s ({r['impute_other_precision']}) | {r['impute_prior_s']:.1f} s |"
        )


if __name__ == "__main__":
    main()
