"""Sparsity summaries: the observed fraction per cell and the daily coverage."""

import numpy as np
import pandas as pd
import xarray as xr

from stimpute_core.data import TARGET
from stimpute_core.data.summary import daily_coverage, observed_fraction


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
