"""The benchmark harness: protocol, periods and failure handling."""

import json

import numpy as np
import pytest

import stimpute_core.benchmark as bench
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models.baselines import MeanImputer


@pytest.fixture(scope="module")
def ds():
    return make_scenario(ScenarioConfig(start="2019-01-01", end="2021-12-31")).isel(
        y=slice(0, 8), x=slice(0, 8)
    )


def test_default_split_is_the_last_two_years(ds):
    split = bench.default_split(ds)
    assert split.train == ("2019-01-01", "2019-12-31") and split.test == (
        "2020-01-01",
        "2021-12-31",
    )
    with pytest.raises(ValueError, match="must fall after the first day"):
        bench.default_split(ds, "2018-01-01")


def test_failing_model_is_recorded_and_the_run_goes_on(ds, monkeypatch):
    class Broken(MeanImputer):
        def fit(self, ds):
            raise RuntimeError("out of memory")

    real = bench.make_imputer
    monkeypatch.setattr(
        bench, "make_imputer", lambda name, **kw: Broken() if name == "broken" else real(name)
    )
    seen = []
    results = bench.run_benchmark(ds, ["broken", "mean"], seeds=(0,), on_result=seen.append)
    errors = results[results["model"] == "broken"]["error"]
    assert len(errors) == 2 and errors.str.contains("out of memory").all()
    summary = bench.summarise(results)
    assert list(summary["model"]) == ["mean", "mean"]
    assert np.isfinite(summary["mae"]).all()
    assert len(seen) == 2  # after each model, failed or not


def _summary():
    import pandas as pd

    rows = []
    for holdout, period, model, mae, truth in [
        ("time_slice", "validation", "mean", 0.06, 0.055),
        ("time_slice", "validation", "coarse", 0.04, 0.030),
        ("time_slice", "validation", "linear", 0.07, 0.020),  # best against the truth only
        ("time_slice", "validation", "st-transformer", 0.05, 0.040),
        ("point", "validation", "idw", 0.03, 0.010),
        ("point", "validation", "st-transformer", 0.036, 0.015),
    ]:
        rows.append({"model": model, "holdout": holdout, "period": period, "mae": mae,
                     "mae_sd": 0.001, "mre": 0.3, "mre_sd": 0.01, "mae_truth": truth,
                     "mae_truth_sd": 0.001, "fit_s": 1.0, "impute_s": 0.5, "n_points": 100})  # fmt: skip
    return pd.DataFrame(rows)


def test_best_reference_per_holdout_and_period_excludes_the_st_transformer():
    best = bench.best_references(_summary()).set_index("holdout")
    assert best.loc["time_slice", "model"] == "coarse" and best.loc["time_slice", "mae"] == 0.04
    assert best.loc["time_slice", "model_truth"] == "linear"
    assert best.loc["point", "model"] == "idw"


def test_ratios_to_the_best_reference():
    table = bench.with_ratios(_summary()).set_index(["holdout", "model"])
    assert table.loc[("time_slice", "st-transformer"), "mae_ratio"] == pytest.approx(1.25)
    assert table.loc[("time_slice", "st-transformer"), "mae_truth_ratio"] == pytest.approx(2.0)
    assert table.loc[("point", "st-transformer"), "mae_ratio"] == pytest.approx(1.2)
    assert table.loc[("time_slice", "coarse"), "mae_ratio"] == pytest.approx(1.0)


def test_records_are_plain_json():
    """``to_records`` gives one plain dict per row, numpy numbers as Python ones."""
    summary = bench.with_ratios(_summary())
    records = bench.to_records(summary)
    assert len(records) == len(summary)
    assert set(records[0]) == set(summary.columns)
    assert all(type(v) is float for r in records for v in r.values() if isinstance(v, float))
    again = json.loads(json.dumps(records))
    assert again[0]["model"] == summary.iloc[0]["model"]
    assert again[0]["mae"] == pytest.approx(float(summary.iloc[0]["mae"]))


def test_markdown_table_closes_each_group_with_its_best_reference():
    text = bench.markdown_table(_summary())
    lines = text.splitlines()
    assert "× best" in lines[0] and "MAE vs truth" in lines[0]
    refs = [i for i, line in enumerate(lines) if "**best reference**" in line]
    assert len(refs) == 2
    assert "coarse" in lines[refs[0]] and "0.0200 (linear)" in lines[refs[0]]
    assert (
        "| st-transformer | time-slice | validation | 0.0500 ± 0.0010 | 30.00 ± 1.00 | 1.25 |"
        in text
    )


def test_a_table_of_the_network_alone_has_no_ratios_and_no_reference_row():
    alone = _summary()
    alone = alone[alone["model"] == "st-transformer"]
    text = bench.markdown_table(alone)
    assert "**best reference**" not in text
    assert (
        "| st-transformer | time-slice | validation | 0.0500 ± 0.0010 | 30.00 ± 1.00 | nan |"
        in text
    )


def test_truth_scores_are_reported_on_synthetic_data(ds):
    results = bench.run_benchmark(ds, ["mean", "coarse"], seeds=(0,))
    assert results["mae_truth"].notna().all()
    # The truth carries no retrieval noise: scores against it are lower than against the
    # held-out observations.
    assert (results["mae_truth"] < results["mae"]).all()
    no_truth = bench.run_benchmark(ds.drop_vars("soil_moisture_true"), ["mean"], seeds=(0,))
    assert "mae_truth" not in no_truth or no_truth["mae_truth"].isna().all()


def test_probabilistic_methods_get_interval_scores_and_a_flagged_table(ds, monkeypatch):
    from stimpute_core.models.conformal import Conformal

    results = bench.run_benchmark(ds, ["coarse", "coarse-conformal"], seeds=(0, 1))
    prob = results[results["model"] == "coarse-conformal"]
    plain = results[results["model"] == "coarse"]
    assert prob[list(bench.PROB_COLS)].notna().all().all()
    assert "crps" not in plain or plain["crps"].isna().all()
    # The point field is the base's: the same MAE as the plain reference.
    np.testing.assert_allclose(prob["mae"].values, plain["mae"].values)
    assert ((prob["cover50"] < prob["cover90"]) & (prob["width50"] < prob["width90"])).all()

    summary = bench.summarise(results)
    assert {"crps", "crps_sd", "cover90_truth"} <= set(summary)
    table = bench.interval_table(summary)
    assert table.startswith("| model | holdout | period | CRPS") and "coarse-conformal" in table
    assert "| coarse |" not in table and bench.interval_table(bench.summarise(plain)) == ""

    # Intervals a third as wide cover far less than 90 %: the table marks them.
    real = Conformal.impute_distribution

    def narrow(self, ds, quantiles, target="observation"):
        out = real(self, ds, quantiles, target)
        point = out["soil_moisture_imputed"]
        q = out["soil_moisture_quantile"]
        return out.assign(soil_moisture_quantile=(point + (q - point) / 3).transpose(*q.dims))

    monkeypatch.setattr(Conformal, "impute_distribution", narrow)
    squeezed = bench.summarise(bench.run_benchmark(ds, ["coarse-conformal"], seeds=(0,)))
    assert (squeezed["cover90"] < 0.85).all() and "✗" in bench.interval_table(squeezed)
