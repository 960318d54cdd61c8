"""ST-Transformer speed: training throughput (cell-days per second) and whole-cube imputation time.

Run: ``.venv/bin/python benchmarks/st_transformer_speed.py [--device cuda] [--profile paper]``.
Training throughput counts the cell-days of the samples processed per second of optimisation
steps (forward, backward, update) on the default scenario; imputation is the whole 2016-2022
cube with overlapping windows. Prints JSON and a Markdown table row for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from stimpute_core.data.scenario import load_scenario
from stimpute_core.models.st_transformer.core import STTransformer, STTransformerConfig
from stimpute_core.models.st_transformer.data import Normalizer, encode
from stimpute_core.models.st_transformer.model import PROFILES, STTransformerImputer
from stimpute_core.training import SampleSet, hide_entries, pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = pick_device(args.device)
    ds = load_scenario()
    prof = PROFILES[args.profile]
    norm = Normalizer.fit(ds)
    cfg = STTransformerConfig(n_covariates=norm.n_covariates, **prof["net"])
    y, u = encode(ds, norm, cfg.patch)
    samples = SampleSet(y, u, cfg.window, 12, cfg.patch)
    net = STTransformer(cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    bs = prof["train"]["batch_size"]
    rng = np.random.default_rng(0)
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16

    def step() -> None:
        ids = rng.choice(len(samples), size=bs, replace=False)
        ys, us = zip(*(samples.get(int(i)) for i in ids), strict=True)
        obs = np.isfinite(np.stack(ys))
        hid = np.stack([hide_entries(o, "time_slice", 0.5, rng) for o in obs])
        yt = torch.as_tensor(np.nan_to_num(np.stack(ys)), device=device)
        ut = torch.as_tensor(np.stack(us), device=device)
        vis = torch.as_tensor(obs & ~hid, device=device)
        hidden = torch.as_tensor(hid, device=device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            pred, _ = net(yt, vis, ut)
            loss = (pred.float() - yt).abs()[hidden].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = (time.perf_counter() - t0) / args.steps
    cell_days = bs * cfg.window * cfg.patch * cfg.patch
    model = STTransformerImputer(profile=args.profile, device=str(device))
    model.net_, model.normalizer_ = net.eval(), norm
    t0 = time.perf_counter()
    model.impute(ds)
    impute_s = time.perf_counter() - t0
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "profile": args.profile,
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_step_s": train_s,
        "train_cell_days_per_s": cell_days / train_s,
        "impute_whole_cube_s": impute_s,
        "cube": list(ds["soil_moisture"].shape),
    }
    print(json.dumps(result, indent=2))
    print(
        f"| {args.profile} | {result['device']} | {result['parameters']:,} | "
        f"{train_s:.2f} s | {result['train_cell_days_per_s']:,.0f} | {impute_s:.1f} s |"
    )


if __name__ == "__main__":
    main()
