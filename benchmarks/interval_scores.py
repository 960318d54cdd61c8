"""Interval scores of every probabilistic method under the benchmark's protocol
(:func:`stimpute_core.benchmark.run_benchmark`): CRPS, 50 % and 90 % coverage, width and PIT, on
the held-out entries of the training ("validation") and test periods, against the held-out
observations and the truth, over seeds, on one or both study areas.

    python benchmarks/interval_scores.py --area txson \
        --models regression-conformal,idw-conformal,coarse-conformal,st-transformer \
        --max-minutes 3
    # writes benchmarks/results/intervals_<area>.json (partial results after every model)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stimpute_core import __version__
from stimpute_core.benchmark import (
    interval_table,
    markdown_table,
    run_benchmark,
    summarise,
    to_records,
)
from stimpute_core.data.io import atomic_write
from stimpute_core.data.scenario import make_scenario

sys.path.insert(0, str(Path(__file__).parent))
from study_areas import AREAS

DEFAULT_MODELS = "regression-conformal,idw-conformal,coarse-conformal,st-transformer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area", choices=[*AREAS, "both"], default="txson")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--holdouts", default="time_slice,point")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--max-minutes", type=float, default=None, help="per network fit")
    parser.add_argument("--tag", default="", help="suffix of the result file")
    args = parser.parse_args()
    models, holdouts = args.models.split(","), args.holdouts.split(",")
    options = {"profile": args.profile, "max_minutes": args.max_minutes}
    for area in AREAS if args.area == "both" else [args.area]:
        ds = make_scenario(AREAS[area]).load()
        out = Path(__file__).parent / "results" / f"intervals_{area}{args.tag}.json"
        t0 = time.perf_counter()

        def save(results, area=area, out=out, t0=t0) -> None:
            payload = {
                "stimpute_version": __version__,
                "area": area,
                "models": models,
                "holdouts": holdouts,
                "seeds": args.seeds,
                "options": options,
                "machine": "2 CPU cores, no GPU",
                "wall_s": time.perf_counter() - t0,
                "results": to_records(summarise(results)),
                "runs": to_records(results.drop(columns=["history"], errors="ignore")),
            }
            text = json.dumps(payload, indent=1, default=str)
            atomic_write(out, lambda tmp: tmp.write_text(text))

        results = run_benchmark(
            ds, models, holdouts, range(args.seeds), st_options=options,
            progress=lambda msg: print(msg, flush=True), on_result=save,
        )  # fmt: skip
        save(results)
        summary = summarise(results)
        print(f"## {area}\n\n{markdown_table(summary)}\n\n{interval_table(summary)}\n", flush=True)


if __name__ == "__main__":
    main()
