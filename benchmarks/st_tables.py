"""Tables of the README's ST-Transformer section from the benchmark JSON files.

Run: ``.venv/bin/python benchmarks/st_tables.py RUNS.json [RUNS.json ...] [--models a,b]
[--seeds 0,1] [--curves]``: the runs of every file (same data, masks and seeds) are pooled, summarised over
seeds, and printed as one Markdown table per hold-out and period with each method's MAE as a
ratio to the best reference (``stimpute_core.benchmark.markdown_table``). ``--curves`` prints
the learning curves (validation MAE against training time and samples seen) stored with the
network runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from stimpute_core.benchmark import best_references, markdown_table, summarise, with_ratios


def load_runs(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.DataFrame(json.loads(p.read_text())["runs"]) for p in paths]
    runs = pd.concat(frames, ignore_index=True)
    # A model run in several files keeps its latest run.
    return runs.drop_duplicates(["model", "holdout", "period", "seed"], keep="last")


def curves(runs: pd.DataFrame) -> str:
    lines = ["| model | holdout | seed | epoch | minutes | samples seen | validation MAE |"]
    lines.append("|---|---|---|---|---|---|---|")
    if "history" not in runs:
        return "\n".join(lines)
    for r in runs.dropna(subset=["history"]).itertuples():
        for h in r.history:
            lines.append(
                f"| {r.model} | {r.holdout} | {r.seed} | {h['epoch']} | "
                f"{h['elapsed_s'] / 60:.1f} | {h.get('samples_seen', '')} | {h['val_mae']:.4f} |"
            )
    return "\n".join(lines)


def compact(runs: pd.DataFrame, model: str = "st-transformer") -> str:
    """One line per hold-out and period: the best reference and ``model``, against the held-out
    observations and against the truth, with the ratios."""
    table = with_ratios(summarise(runs))
    best = best_references(summarise(runs)).set_index(["holdout", "period"])
    lines = [
        "| hold-out | period | best reference | its MAE | ST-Transformer MAE | × best | "
        "best vs truth | its MAE vs truth | ST-Transformer vs truth | × best (truth) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table[table["model"] == model].itertuples():
        b = best.loc[(r.holdout, r.period)]
        lines.append(
            f"| {r.holdout.replace('_', '-')} | {r.period} | {b['model']} | {b['mae']:.4f} | "
            f"{r.mae:.4f} ± {r.mae_sd:.4f} | **{r.mae_ratio:.2f}** | {b['model_truth']} | "
            f"{b['mae_truth']:.4f} | {r.mae_truth:.4f} ± {r.mae_truth_sd:.4f} | "
            f"**{r.mae_truth_ratio:.2f}** |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--models", help="comma list of models to show (default: all)")
    parser.add_argument("--seeds", help="comma list of seeds to keep (default: all)")
    parser.add_argument("--curves", action="store_true")
    parser.add_argument(
        "--compact", action="store_true", help="only the ST-Transformer against the best reference"
    )
    args = parser.parse_args()
    runs = load_runs(args.files)
    if args.models:
        runs = runs[runs["model"].isin(args.models.split(","))]
    if args.seeds:
        runs = runs[runs["seed"].isin([int(s) for s in args.seeds.split(",")])]
    print(compact(runs) if args.compact else markdown_table(summarise(runs)))
    if args.curves:
        print()
        print(curves(runs))


if __name__ == "__main__":
    main()
