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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from stimpute_core.benchmark import run_benchmark
from stimpute_core.data import open_dataset

#: Larger than the number of epochs any budget here reaches: no early stop.
NO_EARLY_STOP = 10**6


def main() -> None:
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
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(result, indent=1, default=float))
        os.replace(tmp, args.json)

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
