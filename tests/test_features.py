"""Derived inputs: rain memory, days since rain, season and the coarse anomaly, from covariates only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from stimpute_core.models.features import (
    API_DECAYS,
    antecedent_precipitation,
    days_since_rain,
    derived_features,
    fill_in_time,
    with_derived_features,
)


def cube(n_time: int = 40, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (n_time, 3, 4)
    prcp = np.where(rng.random(shape) < 0.2, 10 * rng.random(shape), 0.0)
    coarse = 0.2 + 0.05 * np.sin(np.arange(n_time) / 5)[:, None, None] + np.zeros(shape)
    coarse[rng.random(n_time) < 0.5] = np.nan
    target = np.where(rng.random(shape) < 0.1, 0.25, np.nan)
    return xr.Dataset(
        {
            "soil_moisture": (("time", "y", "x"), target),
            "prcp": (("time", "y", "x"), prcp),
            "sm_36km": (("time", "y", "x"), coarse),
        },
        coords={
            "time": pd.date_range("2020-12-30", periods=n_time),
            "y": [0, -1, -2],
            "x": range(4),
        },
    )


def test_days_since_rain_by_hand():
    rain = np.array([0.0, 2.0, 0.5, 0.0, np.nan, 3.0, 0.0])[:, None]
    np.testing.assert_array_equal(days_since_rain(rain)[:, 0], [1, 0, 1, 2, 3, 0, 1])


def test_api_by_hand_and_every_decay_present():
    rain = np.array([10.0, 0.0, np.nan, 5.0])[:, None]
    np.testing.assert_allclose(antecedent_precipitation(rain, 0.5)[:, 0], [10, 5, 2.5, 6.25])
    names = set(derived_features(cube()))
    assert {f"api_{d:g}" for d in API_DECAYS} <= names
    assert {"days_since_rain", "doy_sin", "doy_cos", "sm_36km_filled", "sm_36km_anomaly"} <= names


def test_season_wraps_at_new_year():
    f = derived_features(cube())
    # 2021-01-01 is day 1: angle 0.
    np.testing.assert_allclose(f["doy_sin"][2], 0.0, atol=1e-6)
    np.testing.assert_allclose(f["doy_cos"][2], 1.0, atol=1e-6)


def test_fill_in_time_interpolates_and_holds_edges():
    v = np.array([np.nan, 1.0, np.nan, 3.0, np.nan])[:, None]
    np.testing.assert_allclose(fill_in_time(v)[:, 0], [1, 1, 2, 3, 3])


def test_derived_inputs_never_read_the_target():
    ds = cube()
    other = ds.assign(soil_moisture=ds.soil_moisture.fillna(0.9) * 0 + 0.4)
    a, b = derived_features(ds), derived_features(other)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_missing_covariates_leave_their_features_out():
    f = derived_features(cube().drop_vars(["prcp", "sm_36km"]))
    assert set(f) == {"doy_sin", "doy_cos"}
    ds = with_derived_features(cube())
    assert ds["derived_api_0.7"].dims == ("time", "y", "x")
    assert ds["derived_api_0.7"].attrs["derived"] == "yes"


def test_a_window_without_coarse_values_keeps_the_fields_as_missing():
    ds = cube()
    ds["sm_36km"][:] = np.nan
    f = derived_features(ds)
    assert np.isnan(f["sm_36km_filled"]).all() and np.isnan(f["sm_36km_anomaly"]).all()
