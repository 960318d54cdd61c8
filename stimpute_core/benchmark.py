"""The benchmark harness: the paper's hold-out protocol applied to any set of imputers.

Protocol (Yao, Huang and Zhu 2023): hide 20 % of the observed entries with the chosen mask
(``time_slice``: whole days, the paper's "MNAR"; ``point``: random entries, "MCAR"); fit each
imputer on the training period with those entries hidden; score on the hidden entries of the
training period ("validation") and of a later period never used for fitting ("test", by default
the last two years), where the model sees the test period's remaining observations as input.
Each seed draws a new hold-out mask. Results are MAE and MRE as mean ± sd over seeds, plus wall
times of fit and impute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from . import masks, metrics, uncertainty
from .data.contract import TARGET, TRUTH
from .data.selection import select_time
from .models import is_probabilistic, make_imputer
from .models.base import OUTPUT_NAME, QUANTILE_NAME

PERIODS = ("validation", "test")
#: Scores of a probabilistic model (see :func:`run_benchmark`), against the held-out
#: observations and, with a truth, against it.
PROB_COLS = (
    "crps", "cover50", "cover90", "width50", "width90", "pit_dev",
    "crps_truth", "cover50_truth", "cover90_truth", "pit_dev_truth",
)  # fmt: skip


@dataclass(frozen=True)
class Split:
    """Training ("validation") and test periods as inclusive ISO dates."""

    train: tuple[str, str]
    test: tuple[str, str]


def default_split(ds: xr.Dataset, test_start: str | None = None) -> Split:
    """Test = the last two years (or from ``test_start``); training = everything before it."""
    t = pd.DatetimeIndex(ds["time"].values)
    if test_start is None:
        start = t[-1] - pd.DateOffset(years=2) + pd.Timedelta(days=1)
    else:
        start = pd.Timestamp(test_start)
    if not (t[0] < start <= t[-1]):
        # A suggestion: the last fifth of the data as the test period.
        hint = t[0] + (t[-1] - t[0]) * 0.8 if len(t) > 1 else None
        hint = f" (e.g. {hint:%Y-%m-%d})" if hint is not None and hint > t[0] else ""
        raise ValueError(
            (
                f"the data span {t[0]:%Y-%m-%d} .. {t[-1]:%Y-%m-%d}, two years or less: the "
                "default test period (the last two years) leaves no training period; choose "
                f"the first test day with --test-start{hint}"
            )
            if test_start is None
            else f"test start {start:%Y-%m-%d} must fall after the first day {t[0]:%Y-%m-%d} "
            f"and on or before the last day {t[-1]:%Y-%m-%d} of the data"
        )
    before = start - pd.Timedelta(days=1)
    return Split(
        train=(f"{t[0]:%Y-%m-%d}", f"{before:%Y-%m-%d}"),
        test=(f"{start:%Y-%m-%d}", f"{t[-1]:%Y-%m-%d}"),
    )


def run_benchmark(
    ds: xr.Dataset,
    models: Sequence[str],
    holdouts: Sequence[str] = ("time_slice",),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    fraction: float = 0.2,
    test_start: str | None = None,
    st_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Run the protocol; one row per (model, holdout, period, seed) with scores and timings.

    When ``ds`` holds ``soil_moisture_true`` (synthetic data), the truth-based MAE on the same
    held-out entries is reported too (``mae_truth``): held-out observations carry retrieval noise,
    so the observation-based MAE has a floor near the noise level.

    ST-Transformer models get ``st_options`` (``profile``, ``epochs``, ``max_minutes``, ...), the
    seed, and self-supervised masking of the same kind as the hold-out (whole days for
    ``time_slice``, random entries otherwise).

    A probabilistic model (``is_probabilistic``) imputes its quantiles at
    :data:`~stimpute_core.uncertainty.SCORE_QUANTILES` too, and its rows add CRPS, the coverage
    of the 50 % and 90 % central intervals, the 90 % width and the PIT histogram's largest
    departure from flat (:func:`~stimpute_core.uncertainty.distribution_scores`): the intervals
    of a new observation against the held-out observations, and (suffix ``_truth``) those of
    the noise-free soil moisture (``target="soil_moisture"``) against the truth; ``impute_s``
    times the field and the observation quantiles.

    A model that fails is recorded with its ``error`` and the run goes on; ``on_result`` receives
    all rows so far after each model (to save partial results of a long run).
    """
    report = progress or (lambda _msg: None)
    split = default_split(ds, test_start)
    periods = {
        "validation": select_time(ds, *split.train),
        "test": select_time(ds, *split.test),
    }
    for name in models:  # fail on unknown names before any work
        make_imputer(name)
    # Every hold-out is drawn before any model runs: a period with nothing to score fails now.
    drawn = {
        (holdout, seed): _hold_out(periods, split, holdout, fraction, seed)
        for holdout in holdouts
        for seed in seeds
    }
    rows = []
    total = len(holdouts) * len(seeds) * len(models)
    done = 0
    for holdout in holdouts:
        for seed in seeds:
            hidden = drawn[holdout, seed]
            inputs = {p: masks.apply_holdout(periods[p], hidden[p]) for p in periods}
            for name in models:
                done += 1
                report(f"[{done}/{total}] {name} · {holdout} · seed {seed}")
                mask_kind = "time_slice" if holdout == "time_slice" else "point"
                imputer = make_imputer(name, mask_kind=mask_kind, seed=seed, **(st_options or {}))
                try:
                    t0 = time.perf_counter()
                    imputer.fit(inputs["validation"])
                    fit_s = time.perf_counter() - t0
                    preds = {p: _predict(imputer, inputs[p]) for p in PERIODS}
                except Exception as err:  # one failing model must not lose the other results
                    report(f"{name} · {holdout} · seed {seed} failed: {err}")
                    for period in PERIODS:
                        rows.append({"model": name, "holdout": holdout, "period": period,
                                     "seed": seed, "error": f"{type(err).__name__}: {err}"})  # fmt: skip
                    if on_result is not None:
                        on_result(pd.DataFrame(rows))
                    continue
                for period, (pred, pred_q, impute_s) in preds.items():
                    target = periods[period][TARGET].values
                    row = {
                        "model": name,
                        "holdout": holdout,
                        "period": period,
                        "seed": seed,
                        "start": split.train[0] if period == "validation" else split.test[0],
                        "end": split.train[1] if period == "validation" else split.test[1],
                        **metrics.score(pred, target, hidden[period]),
                        "fit_s": fit_s,
                        "impute_s": impute_s,
                    }
                    levels, where = uncertainty.SCORE_QUANTILES, hidden[period]
                    if pred_q is not None:
                        row |= uncertainty.distribution_scores(pred_q, levels, target, where)
                    if TRUTH in periods[period]:
                        truth = periods[period][TRUTH].values
                        row["mae_truth"] = metrics.mae(pred, truth, where)
                        if pred_q is not None:  # the interval meant for the noise-free value
                            value_q = _soil_moisture_quantiles(imputer, inputs[period])
                            row |= uncertainty.distribution_scores(
                                value_q, levels, truth, where, suffix="_truth"
                            )
                    if period == "validation" and getattr(imputer, "history_", None):
                        row["history"] = imputer.history_  # the learning curve of a network
                    rows.append(row)
                if on_result is not None:
                    on_result(pd.DataFrame(rows))
    return pd.DataFrame(rows)


def _predict(imputer, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The field, the quantiles at the scoring levels (None for a deterministic model) and the
    seconds they took."""
    t0 = time.perf_counter()
    if is_probabilistic(imputer):
        out = imputer.impute_distribution(ds, uncertainty.SCORE_QUANTILES)
        point, pred_q = out[OUTPUT_NAME].values, out[QUANTILE_NAME].values
    else:
        point, pred_q = imputer.impute(ds).values, None
    return point, pred_q, time.perf_counter() - t0


def _soil_moisture_quantiles(imputer, ds: xr.Dataset) -> np.ndarray:
    """The quantiles of the noise-free soil moisture (``target="soil_moisture"``); a model
    whose intervals are of an observation only gives those."""
    target = "soil_moisture" if "soil_moisture" in imputer.interval_targets else "observation"
    out = imputer.impute_distribution(ds, uncertainty.SCORE_QUANTILES, target)
    return out[QUANTILE_NAME].values


def _hold_out(
    periods: dict[str, xr.Dataset], split: Split, holdout: str, fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """The held-out entries of each period for one hold-out and seed; ValueError saying what to
    change when a period has none (nothing could be scored there)."""
    out = {}
    for k, (period, part) in enumerate(periods.items()):
        start, end = split.train if period == "validation" else split.test
        observed = np.isfinite(part[TARGET].values)
        days = int(observed.any(axis=(1, 2)).sum())
        mask = None
        if observed.any():
            mask = masks.holdout_mask(part, holdout, fraction=fraction, seed=seed + 1000 * k)
        if mask is None or not mask.any():
            raise ValueError(
                f"the {period} period {start} .. {end} has {int(observed.sum())} observed "
                f"entries on {days} day(s): the {holdout.replace('_', '-')} hold-out of "
                f"{fraction:g} hides none of them, so nothing could be scored there; choose "
                "another --test-start (a longer period), a larger --fraction or a point hold-out"
            )
        out[period] = mask
    return out


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (model, holdout, period), in the order models were run.

    Failed runs (rows with an ``error``) are left out; ``n_seeds`` counts the successful ones.
    """
    if "error" in results:
        results = results[results["error"].isna()]
    if results.empty or "mae" not in results:  # every run failed (or none ran)
        return pd.DataFrame(columns=["model", "holdout", "period", "mae", "n_points", "n_seeds"])
    value_cols = [c for c in ("mae", "mre", "rmse", "mae_truth", "fit_s", "impute_s", *PROB_COLS)
                  if c in results]  # fmt: skip
    grouped = results.groupby(["model", "holdout", "period"], sort=False)
    mean = grouped[value_cols].mean()
    sd = grouped[value_cols].std(ddof=1).fillna(0.0).add_suffix("_sd")
    out = pd.concat([mean, sd], axis=1)
    out["start"] = grouped["start"].first()
    out["end"] = grouped["end"].first()
    out["n_points"] = grouped["n"].mean().round().astype(int)
    out["n_seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def to_records(summary: pd.DataFrame) -> list[dict]:
    """JSON-ready records (one per model, holdout and period)."""
    records = []
    for row in summary.to_dict(orient="records"):
        records.append({k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()})
    return records


def is_reference(model: str) -> bool:
    """Whether ``model`` is a reference for the ST-Transformer (anything but one of its variants)."""
    return not model.startswith("st-transformer")


def best_references(summary: pd.DataFrame) -> pd.DataFrame:
    """The best reference per (holdout, period): lowest MAE and, on synthetic data, lowest MAE
    against the truth (each may be another model). Columns ``holdout``, ``period``, ``model``,
    ``mae``, and with a truth ``model_truth``, ``mae_truth``."""
    refs = summary[[is_reference(m) for m in summary["model"]]]
    rows = []
    for (holdout, period), group in refs.groupby(["holdout", "period"], sort=False):
        best = group.loc[group["mae"].idxmin()]
        row = {"holdout": holdout, "period": period, "model": best["model"], "mae": best["mae"]}
        if "mae_truth" in group and group["mae_truth"].notna().any():
            by_truth = group.loc[group["mae_truth"].idxmin()]
            row |= {"model_truth": by_truth["model"], "mae_truth": by_truth["mae_truth"]}
        rows.append(row)
    return pd.DataFrame(rows)


def with_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``mae_ratio`` (MAE / the best reference's MAE for that holdout and period)
    and, with a truth, ``mae_truth_ratio``: below 1 beats every reference."""
    best = best_references(summary)
    if best.empty:  # no reference was run: nothing to compare with
        out = summary.assign(mae_ratio=np.nan)
        return out.assign(mae_truth_ratio=np.nan) if "mae_truth" in summary else out
    keyed = best.set_index(["holdout", "period"])
    out = summary.copy()
    keys = list(zip(out["holdout"], out["period"], strict=True))
    # NaN where a hold-out and period has no reference (or none scored against the truth).
    for col, ratio in (("mae", "mae_ratio"), ("mae_truth", "mae_truth_ratio")):
        if col not in summary:
            continue
        ref = keyed[col] if col in keyed else pd.Series(np.nan, index=keyed.index)
        out[ratio] = [value / ref.get(k, np.nan) for value, k in zip(out[col], keys, strict=True)]
    return out


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table, grouped by holdout and period, each group closed by its
    best reference: MAE and MRE as mean ± sd, MAE against the truth on synthetic data, and each
    MAE as a ratio to the best reference's (``× best``)."""
    has_truth = "mae_truth" in summary and summary["mae_truth"].notna().any()
    table = with_ratios(summary)
    best = best_references(summary)
    header = ["model", "holdout", "period", "MAE (m³/m³)", "MRE (%)", "× best"]
    if has_truth:
        header += ["MAE vs truth", "× best (truth)"]
    header += ["fit (s)", "impute (s)", "points"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (holdout, period), group in table.groupby(["holdout", "period"], sort=False):
        for r in group.itertuples(index=False):
            cells = [
                r.model,
                r.holdout.replace("_", "-"),
                r.period,
                f"{r.mae:.4f} ± {r.mae_sd:.4f}",
                f"{100 * r.mre:.2f} ± {100 * r.mre_sd:.2f}",
                f"{r.mae_ratio:.2f}",
            ]
            if has_truth:
                cells += [f"{r.mae_truth:.4f} ± {r.mae_truth_sd:.4f}", f"{r.mae_truth_ratio:.2f}"]
            cells += [f"{r.fit_s:.2f}", f"{r.impute_s:.2f}", f"{r.n_points}"]
            lines.append("| " + " | ".join(cells) + " |")
        ref = best[(best["holdout"] == holdout) & (best["period"] == period)] if len(best) else best
        if len(ref):
            b = ref.iloc[0]
            cells = [f"**best reference**: {b['model']}", holdout.replace("_", "-"), period]
            cells += [f"{b['mae']:.4f}", "", "1.00"]
            if has_truth:
                truth, by = b.get("mae_truth", np.nan), b.get("model_truth", np.nan)
                cells += [f"{truth:.4f} ({by})" if pd.notna(truth) else "", "1.00"]
            cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Stated coverage of the 90 % interval and the band a calibrated method falls in (the issue's
#: target): a coverage outside it is flagged in :func:`interval_table`.
COVERAGE_OK = (0.85, 0.95)


def interval_table(summary: pd.DataFrame) -> str:
    """The probabilistic methods' scores as a Markdown table ('' when none ran): CRPS, coverage
    of the 50 % and 90 % intervals against the held-out observations and the truth, the 90 %
    width and the PIT's largest departure from flat. A 90 % coverage outside
    :data:`COVERAGE_OK` is marked ✗, so an interval that holds less (or more) often than it
    says stands out."""
    if "crps" not in summary or summary["crps"].isna().all():
        return ""
    rows = summary[summary["crps"].notna()]
    has_truth = "crps_truth" in rows and rows["crps_truth"].notna().any()
    header = ["model", "holdout", "period", "CRPS", "50 % cover", "90 % cover", "90 % width"]
    header += ["PIT dev"]
    if has_truth:
        header += ["CRPS vs truth", "50 % cover (truth)", "90 % cover (truth)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cover(value: float) -> str:
        ok = COVERAGE_OK[0] <= value <= COVERAGE_OK[1]
        return f"{100 * value:.1f} %" + ("" if ok else " ✗")

    for r in rows.to_dict(orient="records"):
        cells = [r["model"], r["holdout"].replace("_", "-"), r["period"]]
        cells += [f"{r['crps']:.4f} ± {r['crps_sd']:.4f}", f"{100 * r['cover50']:.1f} %"]
        cells += [cover(r["cover90"]), f"{r['width90']:.4f}", f"{r['pit_dev']:.3f}"]
        if has_truth:
            cells += [f"{r['crps_truth']:.4f} ± {r['crps_truth_sd']:.4f}"]
            cells += [f"{100 * r['cover50_truth']:.1f} %", cover(r["cover90_truth"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
