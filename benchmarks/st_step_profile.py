"""Where one training step of the ST-Transformer spends its time, and how much of it is useful.

Run: ``.venv/bin/python benchmarks/st_step_profile.py [--profile quick] [--steps 10]``.

On the default scenario, with the imputer's own inputs (derived inputs, cell context, prior
channel: the prior is replaced by zeros here, its cost is paid once per fit, before training),
it times the parts of a training step: assembling the batch in numpy, the forward pass, the
backward pass and the optimiser; then prints torch's profile of one forward and backward pass
by operator, and the share of the tokens that carry an observation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from stimpute_core.data.scenario import load_scenario
from stimpute_core.models.features import with_derived_features
from stimpute_core.models.st_transformer.core import STTransformer, STTransformerConfig
from stimpute_core.models.st_transformer.data import Normalizer, encode
from stimpute_core.models.st_transformer.model import PROFILES
from stimpute_core.models.st_transformer.prior import CONTEXT_NAMES
from stimpute_core.models.st_transformer.training import SampleSet, hide_entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    ds = with_derived_features(load_scenario())
    names = ["prior", *CONTEXT_NAMES]
    norm = Normalizer.fit(ds, extra=names)
    shape = ds["soil_moisture"].shape
    extra = {n: np.zeros(shape if n == "prior" else shape[1:]) for n in names}
    prof = PROFILES[args.profile]
    cfg = STTransformerConfig(
        n_covariates=norm.n_covariates, residual=True, day_pool=True, **prof["net"]
    )
    y, u = encode(ds, norm, cfg.patch, extra)
    samples = SampleSet(y, u, cfg.window, 12, cfg.patch)
    net = STTransformer(cfg)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    rng = np.random.default_rng(0)
    bs = prof["train"]["batch_size"]
    parts = dict.fromkeys(("batch assembly (numpy)", "forward", "backward", "optimiser"), 0.0)
    observed_share = []
    for step in range(args.steps + 2):
        t0 = time.perf_counter()
        ids = rng.choice(len(samples), size=bs, replace=False)
        ys, us = zip(*(samples.get(int(i)) for i in ids), strict=True)
        obs = np.isfinite(np.stack(ys))
        hid = np.stack([hide_entries(o, "time_slice", 0.5, rng) for o in obs])
        yt = torch.as_tensor(np.nan_to_num(np.stack(ys)))
        ut = torch.as_tensor(np.stack(us))
        vis, hidden = torch.as_tensor(obs & ~hid), torch.as_tensor(hid)
        t1 = time.perf_counter()
        pred, _ = net(yt, vis, ut)
        loss = (pred - yt).abs()[hidden].mean()
        t2 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if step >= 2:  # warm-up
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[key] += dt / args.steps
            observed_share.append(obs.mean())
    total = sum(parts.values())
    print(f"profile {args.profile}, batch {bs}, {torch.get_num_threads()} threads")
    print("| part | seconds per step | share |")
    print("|---|---|---|")
    for key, dt in parts.items():
        print(f"| {key} | {dt:.3f} | {100 * dt / total:.0f} % |")
    print(f"| step | {total:.3f} | 100 % |")
    print(f"\nobserved tokens: {100 * float(np.mean(observed_share)):.1f} % of the batch")
    with profile(activities=[ProfilerActivity.CPU]) as prof_run:
        pred, _ = net(yt, vis, ut)
        (pred - yt).abs()[hidden].mean().backward()
    print(prof_run.key_averages().table(sort_by="cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
