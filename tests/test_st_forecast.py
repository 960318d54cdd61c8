"""Forecasting with the ST-Transformer (:mod:`stimpute_core.models.st_transformer.forecast`):
training hides the end of every window, nothing from the forecast start on reaches the input,
checkpoints keep the task and refuse the other, and the ``forecast`` command on a tiny case."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models.st_transformer.core import STTransformer
from stimpute_core.models.st_transformer.forecast import FORECAST_NAME, forecast, forecast_days
from stimpute_core.models.st_transformer.model import STTransformerImputer

H = 5


@pytest.fixture(scope="module")
def year():
    ds = make_scenario(ScenarioConfig(seed=3, start="2019-01-01", end="2019-12-31"))
    return ds.isel(y=slice(0, 12), x=slice(0, 12)).drop_vars("soil_moisture_true")


@pytest.fixture(scope="module")
def model(year):
    return STTransformerImputer(
        profile="tiny", mask_kind="forecast", forecast_days=H, epochs=2, seed=0
    ).fit(year)


def test_validation_days_end_the_windows():
    days = forecast_days(181, 72, 7)
    # Windows start on days 0, 72 and 109 (the last ends on the last day); the block ending
    # on day 143 would lie inside the last window with later days visible: left out.
    assert np.flatnonzero(days).tolist() == [*range(65, 72), *range(174, 181)]
    assert np.flatnonzero(forecast_days(30, 72, 7)).tolist() == list(range(23, 30))


def test_training_never_shows_the_end_of_a_window(year, monkeypatch):
    seen = []
    real = STTransformer.forward

    def spy(self, y, visible, u=None):
        seen.append((visible.clone(), None if u is None else u.clone()))
        return real(self, y, visible, u)

    monkeypatch.setattr(STTransformer, "forward", spy)
    fitted = STTransformerImputer(
        profile="tiny", mask_kind="forecast", forecast_days=H, epochs=1, seed=1
    ).fit(year)
    assert fitted.prior_model_ is None and fitted.calibration_ is None  # no prior, no bands
    windows = [(v, u) for v, u in seen if v.shape[1] == fitted.net_.cfg.window]
    assert windows and all(not v[:, -H:].any() for v, _ in windows)
    # Half the training samples lose the future's weather (value 0, missing flag 1).
    flags = [u[:, -H:, :, 1].eq(1).all(-1).all(-1) for _, u in windows]
    blanked = torch.cat(flags)
    assert blanked.any() and not blanked.all()


def test_nothing_from_the_start_on_reaches_the_forecast(year, model):
    start = "2019-11-20"
    a = forecast(model, year, H, start=start)
    assert a.name == FORECAST_NAME and a.sizes["time"] == H
    assert str(a["time"].values[0])[:10] == start and np.isfinite(a.values).all()
    changed = year.copy(deep=True)
    later = changed["time"] >= np.datetime64(start)
    changed["soil_moisture"] = changed["soil_moisture"].where(~later, 0.45)
    xr.testing.assert_identical(forecast(model, changed, H, start=start), a)
    # The file's weather on the forecast days is used, unless asked not to.
    wetter = changed.copy(deep=True)
    wetter["prcp"] = wetter["prcp"].where(~later, 80.0)
    assert not np.allclose(forecast(model, wetter, H, start=start).values, a.values)
    strict = forecast(model, year, H, start=start, future_covariates=False)
    xr.testing.assert_identical(
        forecast(model, wetter, H, start=start, future_covariates=False), strict
    )
    assert a.attrs["covariate_days"].startswith(start) and strict.attrs["covariate_days"] == "none"
    past = forecast(model, year, 3)  # after the last day: no covariates in the file
    assert (
        str(past["time"].values[0])[:10] == "2020-01-01" and past.attrs["covariate_days"] == "none"
    )


def test_forecasts_are_refused_where_they_cannot_be_made(year, model):
    imputer = STTransformerImputer(profile="tiny", epochs=1, prior=None, seed=0).fit(year)
    with pytest.raises(ValueError, match="trained to impute"):
        forecast(imputer, year, 3)
    with pytest.raises(ValueError, match=f"forecasts 1 to {H} days ahead"):
        forecast(model, year, H + 1)
    with pytest.raises(ValueError, match="start=2021-01-01"):
        forecast(model, year, 2, start="2021-01-01")
    with pytest.raises(ValueError, match="forecast_days=72"):
        STTransformerImputer(profile="tiny", mask_kind="forecast", forecast_days=72).fit(year)


def test_a_forecasting_checkpoint_round_trips(year, model, tmp_path):
    path = model.save(tmp_path / "ckpt")
    meta = json.loads((path / "config.json").read_text())
    assert meta["imputer"]["mask_kind"] == "forecast" and meta["imputer"]["forecast_days"] == H
    assert meta["training"]["forecast_days"] == H
    again = STTransformerImputer.load(path)
    np.testing.assert_allclose(
        forecast(again, year, H).values, forecast(model, year, H).values, atol=1e-6
    )


def test_forecast_command(year, model, tmp_path, capsys):
    from stimpute_core.cli import main

    data = tmp_path / "so_far.nc"
    year.sel(time=slice(None, "2019-12-20")).to_netcdf(data)
    ckpt = model.save(tmp_path / "ckpt")
    out = tmp_path / "next.nc"
    assert main(["forecast", "--data", str(data), "--model", str(ckpt), "--days", "3",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "covariates on the forecast days: none" in capsys.readouterr().err
    with xr.open_dataset(out) as got:
        assert got[FORECAST_NAME].dims == ("time", "y", "x")
        assert pd.DatetimeIndex(got["time"].values)[0] == pd.Timestamp("2019-12-21")
    assert main(["forecast", "--data", str(data), "--model", str(ckpt), "--days", "9",
                 "--out", str(out)]) == 2  # fmt: skip
    assert f"forecasts 1 to {H} days ahead" in capsys.readouterr().err


def test_a_forecaster_with_svq_round_trips(year, tmp_path):
    model = STTransformerImputer(
        profile="tiny", mask_kind="forecast", forecast_days=H, bottleneck="svq", svq_codes=32,
        epochs=1, seed=0,
    ).fit(year)  # fmt: skip
    again = STTransformerImputer.load(model.save(tmp_path / "ckpt"))
    assert again.net_.cfg.bottleneck == "svq" and again.mask_kind == "forecast"
    np.testing.assert_allclose(
        forecast(again, year, 2).values, forecast(model, year, 2).values, atol=1e-6
    )
