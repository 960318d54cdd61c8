"""The data contract's validator: one clear message per problem."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import ContractError, covariate_names, land_cover_classes, validate


def make_ds(nt=10, ny=3, nx=4):
    rng = np.random.default_rng(0)
    sm = rng.uniform(0.05, 0.4, (nt, ny, nx)).astype("float32")
    sm[rng.random(sm.shape) < 0.8] = np.nan
    sm[0, 0, 0] = 0.2
    x = -9548038.0 + 1000.9 * np.arange(nx)
    y = 3710818.0 - 1000.9 * np.arange(ny)
    lon = np.broadcast_to(-98.9 + 0.01 * np.arange(nx), (ny, nx))
    lat = np.broadcast_to((30.4 - 0.01 * np.arange(ny))[:, None], (ny, nx))
    return xr.Dataset(
        {
            "soil_moisture": (("time", "y", "x"), sm, {"units": "m3/m3"}),
            "prcp": (("time", "y", "x"), np.zeros((nt, ny, nx))),
            "clay": (("y", "x"), np.full((ny, nx), 25.0)),
            "land_cover": (
                ("y", "x"),
                np.full((ny, nx), 10, "int16"),
                {"flag_values": np.array([9, 10]), "flag_meanings": "savannas grasslands"},
            ),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=nt),
            "y": y,
            "x": x,
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
        },
    )


def problems_of(ds, **kw):
    with pytest.raises(ContractError) as info:
        validate(ds, **kw)
    return info.value.problems


def test_valid_dataset_passes_and_names_covariates():
    ds = make_ds()
    validate(ds)
    assert covariate_names(ds) == (["prcp"], ["clay"])
    assert land_cover_classes(ds) == {9: "savannas", 10: "grasslands"}


def test_missing_target():
    (problem,) = problems_of(make_ds().drop_vars("soil_moisture"))
    assert "'soil_moisture' is missing" in problem


def test_wrong_dims():
    ds = make_ds()
    ds["soil_moisture"] = ds["soil_moisture"].transpose("y", "x", "time")
    assert any("expected ('time', 'y', 'x')" in p for p in problems_of(ds))


def test_non_daily_time():
    ds = make_ds()
    ds = ds.assign_coords(time=pd.date_range("2020-01-01", periods=ds.sizes["time"], freq="2D"))
    (problem,) = problems_of(ds)
    assert "not daily" in problem and "2020-01-01" in problem


def test_duplicated_time():
    ds = make_ds()
    t = pd.DatetimeIndex(ds.time.values).tolist()
    t[3] = t[2]
    (problem,) = problems_of(ds.assign_coords(time=t))
    assert "duplicated" in problem and "2020-01-03" in problem


def test_time_not_midnight():
    ds = make_ds()
    ds = ds.assign_coords(time=pd.date_range("2020-01-01 06:00", periods=ds.sizes["time"]))
    assert any("not at midnight" in p for p in problems_of(ds))


def test_values_out_of_range_named():
    ds = make_ds()
    ds["soil_moisture"][0, 0, 0] = 25.0  # percent, not m3/m3
    (problem,) = problems_of(ds)
    assert "'soil_moisture'" in problem and "0.0..0.8" in problem and "25" in problem


def test_wrong_units():
    ds = make_ds()
    ds["soil_moisture"].attrs["units"] = "%"
    (problem,) = problems_of(ds)
    assert "units '%'" in problem


def test_covariate_on_another_grid():
    ds = make_ds().assign(sm_36km=(("time", "y36", "x36"), np.zeros((10, 1, 1))))
    (problem,) = problems_of(ds)
    assert "'sm_36km'" in problem and "target grid" in problem


def test_no_observed_values_in_selection():
    ds = make_ds()
    ds["soil_moisture"][:] = np.nan
    (problem,) = problems_of(ds)
    assert "no observed" in problem
    validate(ds, require_observed=False)


def test_land_cover_checks():
    ds = make_ds()
    ds["land_cover"].attrs.pop("flag_meanings")
    assert any("flag_meanings" in p for p in problems_of(ds))
    ds = make_ds()
    ds["land_cover"][0, 0] = 13
    assert any("[13]" in p for p in problems_of(ds))
    ds = make_ds()
    ds["land_cover"] = ds["land_cover"].astype(float)
    ds["land_cover"].attrs.update(flag_values=[9, 10], flag_meanings="savannas grasslands")
    assert any("integer" in p for p in problems_of(ds))


def test_station_variables_required_together():
    ds = make_ds().assign(insitu=(("station", "time"), np.full((2, 10), 0.2)))
    problems = problems_of(ds)
    assert any("station_lat" in p for p in problems)


def test_all_problems_listed_and_source_named():
    ds = make_ds().drop_vars(["lat"])
    ds["soil_moisture"][0, 0, 0] = 3.0
    with pytest.raises(ContractError) as info:
        validate(ds, source="cube.nc")
    assert len(info.value.problems) == 2
    assert "cube.nc" in str(info.value)


def test_not_a_dataset():
    with pytest.raises(ContractError, match=r"xarray\.Dataset"):
        validate(np.zeros(3))
