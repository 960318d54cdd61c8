"""The benchmark harness: protocol, periods and failure handling."""

import numpy as np
import pytest

import stimpute_core.benchmark as bench
from stimpute_core.baselines import MeanImputer
from stimpute_core.data.scenario import ScenarioConfig, make_scenario


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
