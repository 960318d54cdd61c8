"""Does the SVQ bottleneck help the ST-Transformer impute? Step cost and an equal-budget ablation.

``--steps``: one `quick` training step (forward and backward, batch 8 x 72 days x 12 x 12
cells, the built-in scenario's inputs) with and without SVQ, for several codebook sizes and
both placements: seconds per step (median of 5 after a warm-up) and the step's peak memory
above the process's resting size, each configuration in a fresh process.

``--ablation``: the benchmark's protocol (3 seeds, the hold-out given, both periods, against
the held-out observations and the truth) for the ST-Transformer with each variant, at the same
training budget per fit (``--minutes``), in one process so that the variants share its load.

    python benchmarks/svq_ablation.py --steps            # benchmarks/results/svq_steps.json
    OMP_NUM_THREADS=1 python benchmarks/svq_ablation.py --ablation --variants none,pre-512 \\
        --tag _a                                         # benchmarks/results/svq_ablation_a.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path

from stimpute_core import __version__
from stimpute_core.data.atomic import atomic_write

HERE = Path(__file__).parent
DATA = HERE / "out" / "txson.nc"


def _variant(text: str) -> dict:
    """``none``, or ``PLACEMENT-CODES`` (``pre-512``, ``post-2048``): imputer settings."""
    if text == "none":
        return {}
    placement, codes = text.split("-")
    return {"bottleneck": "svq", "svq_placement": placement, "svq_codes": int(codes)}


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _one_step(variant: str, queue) -> None:
    """In a fresh process: time and memory of a quick training step with ``variant``."""
    import numpy as np
    import torch

    from stimpute_core.data import open_dataset
    from stimpute_core.models.st_transformer.core import STTransformer
    from stimpute_core.models.st_transformer.data import Normalizer, encode
    from stimpute_core.models.st_transformer.model import STTransformerImputer

    ds = open_dataset(DATA).isel(time=slice(0, 365))
    model = STTransformerImputer(profile="quick", epochs=1, prior=None, **_variant(variant))
    model._validate_params()

    ds = model._with_inputs(ds)
    extra, _ = model._extra(ds)  # the cell context (no prior here)
    norm = Normalizer.fit(ds, use_covariates=True, extra=list(extra))
    cfg, _ = model._configs(norm.n_covariates)
    y, u = encode(ds, norm, cfg.patch, extra, None)
    net = STTransformer(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    w, p = cfg.window, cfg.patch

    def batch():
        t0 = rng.integers(0, y.shape[0] - w)
        r0, c0 = rng.integers(0, 3, size=2) * p
        ys = np.stack([y[t0 : t0 + w, r0 : r0 + p, c0 : c0 + p].reshape(w, -1)] * 8)
        us = np.stack([u[t0 : t0 + w, r0 : r0 + p, c0 : c0 + p].reshape(w, p * p, -1)] * 8)
        vis = np.isfinite(ys) & (rng.random(ys.shape) < 0.8)
        hid = np.isfinite(ys) & ~vis
        return [torch.as_tensor(a) for a in (np.nan_to_num(ys), vis, us, hid)]

    def step():
        yt, vis, ut, hid = batch()
        pred, _ = net(yt.float(), vis, ut.float())
        loss = ((pred - yt).abs() * hid).sum() / hid.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    rest = _rss_mb()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    queue.put(
        {
            "variant": variant,
            "tokens_per_step": 8 * w * p * p,
            "parameters": sum(q.numel() for q in net.parameters()),
            "step_s": round(statistics.median(times), 3),
            "step_peak_mb_above_rest": round(_peak_rss_mb() - rest),
            "threads": torch.get_num_threads(),
        }
    )


def steps(variants: list[str]) -> None:
    rows = []
    ctx = mp.get_context("spawn")
    for v in variants:
        queue = ctx.Queue()
        proc = ctx.Process(target=_one_step, args=(v, queue))
        proc.start()
        proc.join()
        row = queue.get() if proc.exitcode == 0 else {"variant": v, "error": proc.exitcode}
        rows.append(row)
        print(json.dumps(row), flush=True)
    payload = {"stimpute_version": __version__, "machine": "2 CPU cores, no GPU", "rows": rows}
    target = HERE / "results" / "svq_steps.json"
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


def ablation(
    variants: list[str], holdout: str, minutes: float, seeds: int, tag: str, no_prior: bool
) -> None:
    import pandas as pd

    from stimpute_core.benchmark import run_benchmark, to_records
    from stimpute_core.data import open_dataset

    ds = open_dataset(DATA)
    frames = []
    target = HERE / "results" / f"svq_ablation{tag}.json"

    def save(rows: pd.DataFrame) -> None:
        payload = {
            "stimpute_version": __version__, "machine": "2 CPU cores, no GPU",
            "minutes_per_fit": minutes, "runs": to_records(rows),
        }  # fmt: skip
        atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))

    for v in variants:
        # The registered variants fix what None cannot ask for (make_imputer reads None as
        # "the default"): st-transformer-noprior is the network alone.
        name = "st-transformer-noprior" if no_prior else "st-transformer"
        options = {"profile": "quick", "max_minutes": minutes, **_variant(v)}
        label = "st-transformer" if v == "none" else f"st-transformer-svq-{v}"
        label += "-noprior" if no_prior else ""

        def partial(rows: pd.DataFrame, label: str = label) -> None:  # after every model run
            save(pd.concat([*frames, rows.assign(model=label)], ignore_index=True))

        res = run_benchmark(
            ds, [name], holdouts=[h.replace("-", "_") for h in holdout.split(",")],
            seeds=range(seeds), st_options=options, progress=print, on_result=partial,
        )  # fmt: skip
        frames.append(res.assign(model=label))
        save(pd.concat(frames, ignore_index=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--variants", default="none,pre-512,post-512,pre-2048")
    parser.add_argument("--holdout", default="point,time-slice")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tag", default="")
    parser.add_argument("--no-prior", action="store_true", help="the ST-Transformer without prior")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if args.steps:
        steps(variants)
    if args.ablation:
        ablation(variants, args.holdout, args.minutes, args.seeds, args.tag, args.no_prior)


if __name__ == "__main__":
    main()
