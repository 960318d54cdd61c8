"""ST-Transformer learning curves at several CPU budgets, and the long profile, on one study area.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/st_learning_curves.py --data
benchmarks/out/txson.nc --budgets 10,30,60 --holdout time-slice --json
benchmarks/results/st_curves_txson.json``.

Each budget is a separate fit (the learning-rate schedule runs over the budget, so the first ten
minutes of a 60-minute run are not a 10-minute run) through the benchmark's own protocol (same
hold-outs, seed 0 unless ``--seeds``), with early stopping switched off (``patience`` larger
than any run's epochs), so the curve covers the whole budget. The validation MAE in each epoch's
record is on the 10 % of training observations the network never sees; the test scores are the
benchmark's, against the held-out observations and the truth. Results are written after every
fit, so a stopped run keeps what it finished.

``--report CURVES.json [...] --with RUNS.json [...]`` prints the README's table instead: one
line per budget (from these files, and the ``st-transformer`` runs of benchmark files given
with ``--with``, such as the 3-minute final tables), with the validation MAE at epoch 0 (the
prior alone), at a quarter, half and three quarters of the budget and at its best, the samples
seen, and the scores against the truth as a ratio to the best reference of the same seed in
the ``--with`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from stimpute_core.benchmark import run_benchmark
from stimpute_core.data import atomic_write, open_dataset

#: Larger than the number of epochs any budget here reaches: no early stop.
NO_EARLY_STOP = 10**6


def _curve_rows(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    if "budget_min" in json.dumps(data["runs"][:1]):  # this script's files
        return [
            {**row, "budget_min": run["budget_min"], "profile": data["profile"]}
            for run in data["runs"]
            for row in run["rows"]
        ]
    options = data.get("st_options") or {}  # a benchmark file
    return [
        {**row, "budget_min": options.get("max_minutes"), "profile": options.get("profile")}
        for row in data["runs"]
        if row["model"] == "st-transformer"
    ]


def _at(history: list[dict], minutes: float) -> float:
    """Best validation MAE reached by ``minutes`` of training."""
    seen = [h["val_mae"] for h in history if h["elapsed_s"] <= 60 * minutes]
    return min(seen) if seen else float("nan")


def report(curve_files: list[Path], with_files: list[Path]) -> str:
    import pandas as pd

    rows = [r for p in [*curve_files, *with_files] for r in _curve_rows(p) if "mae" in r]
    frame = pd.DataFrame(rows)
    refs = pd.concat(
        [pd.DataFrame(json.loads(p.read_text())["runs"]) for p in with_files], ignore_index=True
    )
    refs = refs[~refs["model"].str.startswith("st-transformer") & refs["mae"].notna()]
    lines = [
        "| profile | hold-out | budget (min) | seed | epochs | samples seen | validation MAE: "
        "epoch 0 | ¼ | ½ | ¾ | best | best below epoch 0 | vs truth, training period "
        "(× best) | vs truth, test period (× best) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (profile, holdout, budget, seed), g in frame.groupby(
        ["profile", "holdout", "budget_min", "seed"], sort=True
    ):
        by_period = g.set_index("period")
        hist = by_period.loc["validation", "history"]
        first, best = hist[0]["val_mae"], min(h["val_mae"] for h in hist)
        cells = []
        for period in ("validation", "test"):
            mine = by_period.loc[period, "mae_truth"]
            pool = refs[(refs["holdout"] == holdout) & (refs["period"] == period)]
            pool = pool[pool["seed"] == seed]
            best_ref = pool.groupby("model")["mae_truth"].mean().min() if len(pool) else None
            ratio = f" ({mine / best_ref:.2f})" if best_ref else ""
            cells.append(f"{mine:.4f}{ratio}")
        lines.append(
            f"| {profile} | {holdout.replace('_', '-')} | {budget:g} | {seed} | "
            f"{hist[-1]['epoch']} | {hist[-1].get('samples_seen', '')} | {first:.5f} | "
            + " | ".join(f"{_at(hist, budget * q):.5f}" for q in (0.25, 0.5, 0.75))
            + f" | {best:.5f} | {100 * (first - best) / first:.2f} % | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    if "--report" in __import__("sys").argv:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--report", nargs="+", type=Path, required=True)
        parser.add_argument("--with", dest="with_files", nargs="*", type=Path, default=[])
        args = parser.parse_args()
        print(report(args.report, args.with_files))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--budgets", default="10,30,60", help="minutes, comma list")
    parser.add_argument("--holdout", default="time-slice")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--early-stop", action="store_true", help="keep the profile's patience")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    ds = open_dataset(args.data)
    holdout = args.holdout.replace("-", "_")
    runs: list[dict] = []

    def save(rows_of_fit=None) -> None:
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
            "data": args.data.name,
            "profile": args.profile,
            "holdout": holdout,
            "runs": runs + ([rows_of_fit] if rows_of_fit else []),
        }
        text = json.dumps(result, indent=1, default=float)
        atomic_write(args.json, lambda tmp: tmp.write_text(text))

    for minutes in [float(b) for b in args.budgets.split(",")]:
        options = {"profile": args.profile, "max_minutes": minutes, "epochs": NO_EARLY_STOP}
        if not args.early_stop:
            options["patience"] = NO_EARLY_STOP

        def partial(frame, minutes=minutes) -> None:
            save({"budget_min": minutes, "rows": frame.to_dict("records")})

        frame = run_benchmark(
            ds,
            ["st-transformer"],
            holdouts=[holdout],
            seeds=range(args.seeds),
            st_options=options,
            progress=lambda msg: print(msg, flush=True),
            on_result=partial,
        )
        runs.append({"budget_min": minutes, "rows": frame.to_dict("records")})
        save()
        for row in frame.drop(columns=["history"], errors="ignore").to_dict("records"):
            print(json.dumps(row, default=float), flush=True)


if __name__ == "__main__":
    main()
