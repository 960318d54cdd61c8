"""Sparsity summaries: the observed fraction per cell, the daily coverage and the revisit."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import TARGET
from stimpute_core.data.summary import (
    daily_coverage,
    describe,
    format_description,
    observed_fraction,
    sparsity,
)


def _cube() -> xr.Dataset:
    values = np.full((4, 2, 3), np.nan, dtype="float32")
    values[0] = 0.2  # a full pass
    values[2, 0, 0] = 0.3  # one cell on another day
    time = pd.date_range("2020-01-01", periods=4)
    sm = xr.DataArray(values, dims=("time", "y", "x"), coords={"time": time})
    return xr.Dataset({TARGET: sm.assign_attrs(units="m3/m3", long_name="soil moisture")})


def test_observed_fraction_per_cell_with_its_own_attributes():
    frac = observed_fraction(_cube())
    np.testing.assert_allclose(frac.values, [[0.5, 0.25, 0.25], [0.25, 0.25, 0.25]])
    assert frac.name == "observed_fraction"
    assert frac.attrs == {"long_name": "fraction of days observed", "units": "1"}


def test_daily_coverage_is_the_fraction_of_cells_per_day():
    cover = daily_coverage(_cube())
    assert list(cover.index) == list(pd.date_range("2020-01-01", periods=4))
    np.testing.assert_allclose(cover.values, [1.0, 0.0, 1 / 6, 0.0])


def test_sparsity_gives_the_missing_rate_and_the_revisit_gap():
    info = sparsity(_cube())
    assert info["missing_percent"] == pytest.approx(100 * (1 - 7 / 24))
    assert info["days_with_observations"] == 2 and info["days"] == 4
    assert info["median_gap_days"] == 2.0  # observed on the 1st and the 3rd


def test_sparsity_gap_is_nan_with_fewer_than_two_observed_days():
    one_day = _cube().isel(time=[0, 1, 3])
    info = sparsity(one_day)
    assert info["days_with_observations"] == 1 and info["days"] == 3
    assert np.isnan(info["median_gap_days"])
    assert np.isnan(sparsity(one_day.isel(time=[1]))["median_gap_days"])


def _contract_cube():
    from stimpute_core.data.grid import GridBox
    from stimpute_core.data.scenario import ScenarioConfig, make_scenario

    box = GridBox(row0=3400, col0=7600, nrows=5, ncols=4)
    return make_scenario(ScenarioConfig(seed=2, start="2020-01-01", end="2020-03-31", box=box))


def test_describe_reports_the_grid_period_sparsity_and_inputs():
    ds = _contract_cube()
    info = describe(ds)
    assert (info["grid"]["ny"], info["grid"]["nx"]) == (5, 4)
    assert info["grid"]["dx_m"] == pytest.approx(1000.9, abs=0.1)
    assert info["period"] == {"start": "2020-01-01", "end": "2020-03-31", "days": 91}
    gaps = sparsity(ds)
    assert info["missing_percent"] == gaps["missing_percent"]
    assert info["median_gap_days"] == gaps["median_gap_days"]
    assert info["observed_values"] == int(np.isfinite(ds[TARGET].values).sum())
    assert info["has_truth"] and info["stations"] == ds.sizes["station"]
    assert sum(info["land_cover"].values()) == 20 and "prcp" in info["dynamic_covariates"]
    text = format_description(info)
    assert "91 days" in text and f"{info['missing_percent']:.2f} %" in text
    # Without observations on two days there is no revisit to report.
    blank = ds.assign({TARGET: ds[TARGET].where(False)})
    assert describe(blank)["median_gap_days"] is None
