"""The PyPOTS adapter: windowing round trip always; the real models when PyPOTS is installed."""

import numpy as np
import pytest
import xarray as xr

from stimpute_core import masks
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models import make_imputer
from stimpute_core.models.pypots import from_windows, to_windows


def test_windows_round_trip_and_average():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(100, 5))
    w, starts = to_windows(m, 30, 12)
    assert w.shape == (len(starts), 30, 5) and starts[-1] == 70
    np.testing.assert_allclose(from_windows(w, starts, 100), m)
    # Overlaps are averaged: windows of constant k give the mean of the k covering each day.
    const = np.stack([np.full((30, 5), float(k)) for k in range(len(starts))])
    out = from_windows(const, starts, 100)
    assert out[0, 0] == 0.0 and out[13, 0] == pytest.approx(0.5)  # days 12..29: windows 0, 1


def test_short_series_is_padded():
    w, starts = to_windows(np.ones((10, 2)), 30, 12)
    assert w.shape == (1, 30, 2) and np.isnan(w[0, 10:]).all()
    assert from_windows(np.zeros((1, 30, 2)), starts, 10).shape == (10, 2)


def small_cube(end: str, cells: int):
    """A short scenario on ``cells`` x ``cells`` cells and the same with 20 % of points hidden."""
    pytest.importorskip("pypots")
    ds = make_scenario(ScenarioConfig(start="2020-01-01", end=end)).isel(
        y=slice(0, cells), x=slice(0, cells)
    )
    return ds, masks.apply_holdout(ds, masks.holdout_mask(ds, "point", 0.2, seed=0))


def test_saits_imputes_the_cube():
    ds, inputs = small_cube("2020-06-30", 6)
    model = make_imputer("saits", seed=0, epochs=2)
    out = model.fit(inputs).impute(inputs)
    assert out.shape == ds.soil_moisture.shape and not np.isnan(out.values).any()


def test_csdi_imputes_the_cube_with_the_median_of_its_draws():
    ds, inputs = small_cube("2020-04-30", 4)
    model = make_imputer("csdi", seed=0, epochs=1, n_samples=3)  # a few draws keep it short
    out = model.fit(inputs).impute(inputs)
    assert out.shape == ds.soil_moisture.shape and np.isfinite(out.values).all()
    observed = np.isfinite(inputs.soil_moisture.values)
    np.testing.assert_allclose(out.values[observed], inputs.soil_moisture.values[observed])


def test_each_peer_is_its_own_registered_model():
    """Each PyPOTS model is one class named by its registry key, its sizes in the constructor."""
    from stimpute_core.models.pypots import PEERS, CSDIImputer

    assert {name: cls.name for name, cls in PEERS.items()} == {n: n for n in PEERS}
    assert make_imputer("csdi", n_samples=3).get_params()["n_samples"] == 3
    with pytest.raises(ValueError, match="d_model"):
        make_imputer("brits", d_model=64)  # a SAITS size, not a BRITS one
    model = CSDIImputer(n_samples=0)  # stored as given; fit refuses it before any work
    assert model.n_samples == 0
    with pytest.raises(ValueError, match="n_samples"):
        model.fit(xr.Dataset())
