"""Intervals of the noise-free soil moisture: the observations' noise variance (the nugget of
the same-day semivariogram) on cases with a known answer, and the narrower interval it gives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout, holdout_mask
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.conformal import Conformal, ResidualQuantiles, noise_variance
from stimpute_core.uncertainty import coverage


def test_noise_variance_is_the_nugget_of_a_smooth_field_plus_white_noise():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:30, 0:30]
    days = np.arange(40)[:, None, None]
    smooth = 0.25 + 0.05 * np.sin(xx / 7 + days / 5) * np.cos(yy / 9)  # no variance at lag 0
    z = smooth + rng.normal(0, 0.03, smooth.shape)
    z[rng.random(z.shape) < 0.6] = np.nan  # gaps do not bias it
    assert noise_variance(z) == pytest.approx(0.03**2, rel=0.1)
    assert noise_variance(smooth) == pytest.approx(0.0, abs=2e-5)
    assert noise_variance(np.full((3, 2, 2), np.nan)) == 0.0  # no pairs: no noise claimed


def test_the_soil_moisture_interval_removes_the_noise_from_the_residuals():
    rng = np.random.default_rng(0)
    error, noise = rng.normal(0, 0.02, 20000), rng.normal(0, 0.03, 20000)
    bands = ResidualQuantiles.fit(error + noise, noise_var=0.03**2)
    one = np.zeros(1, int)
    _, obs_hi = bands.offsets((0.05, 0.95), one)[:, 0]
    lo, hi = bands.offsets((0.05, 0.95), one, "soil_moisture")[:, 0]
    assert obs_hi == pytest.approx(norm.ppf(0.95) * np.hypot(0.02, 0.03), rel=0.05)
    assert hi == pytest.approx(norm.ppf(0.95) * 0.02, rel=0.08)
    assert lo == pytest.approx(-hi, rel=0.1)
    fresh = rng.normal(0, 0.02, 20000)
    assert 0.87 < np.mean((fresh >= lo) & (fresh <= hi)) < 0.93
    # Without a noise estimate (older calibrations) both intervals are the observation's.
    old = ResidualQuantiles.fit(error + noise)
    assert np.array_equal(old.offsets((0.95,), one, "soil_moisture"), old.offsets((0.95,), one))
    again = ResidualQuantiles.from_dict(bands.to_dict())
    assert again.noise_var == bands.noise_var
    legacy = {k: v for k, v in bands.to_dict().items() if k != "noise_var"}
    assert ResidualQuantiles.from_dict(legacy).noise_var == 0.0
    with pytest.raises(ValueError, match=r"noise_var = -1"):
        ResidualQuantiles.from_dict({**bands.to_dict(), "noise_var": -1})
    with pytest.raises(ValueError, match="target='truth'"):
        bands.offsets((0.5,), one, "truth")


def test_a_small_model_error_under_large_noise_is_recovered_from_the_residual_variance():
    # v - n is a small difference here: the stored quantiles' variance (5 % short for Gaussian
    # residuals) would leave about half of it and intervals covering under 80 %.
    rng = np.random.default_rng(1)
    error, noise = rng.normal(0, 0.01, 200_000), rng.normal(0, 0.03, 200_000)
    bands = ResidualQuantiles.fit(error + noise, noise_var=0.03**2)
    one = np.zeros(1, int)
    lo, hi = bands.offsets((0.05, 0.95), one, "soil_moisture")[:, 0]
    assert hi - lo == pytest.approx(2 * norm.ppf(0.95) * 0.01, rel=0.05)
    fresh = rng.normal(0, 0.01, 100_000)
    assert 0.88 < np.mean((fresh >= lo) & (fresh <= hi)) < 0.92
    again = ResidualQuantiles.from_dict(bands.to_dict())
    assert np.array_equal(
        again.offsets((0.95,), one, "soil_moisture"), bands.offsets((0.95,), one, "soil_moisture")
    )
    legacy = {k: v for k, v in bands.to_dict().items() if k != "variances"}
    assert ResidualQuantiles.from_dict(legacy).variances is None  # then the quantiles' variance
    for bad in ([0.1], [-1.0] * len(bands.counts), "x"):
        with pytest.raises(ValueError, match=r"calibration\.variances"):
            ResidualQuantiles.from_dict({**bands.to_dict(), "variances": bad})


def test_conformal_soil_moisture_intervals_cover_the_truth_as_stated():
    ds = make_scenario(ScenarioConfig(start="2019-01-01", end="2020-12-31"))
    ds = ds.isel(y=slice(0, 16), x=slice(0, 16))
    hidden = holdout_mask(ds, "point", fraction=0.2, seed=4)
    given = apply_holdout(ds, hidden)
    model = Conformal(base="idw", mask_kind="point", seed=0).fit(given)
    # The noise the scenario adds to its retrievals (0.035) is found from the observations.
    assert np.sqrt(model.bands_.noise_var) == pytest.approx(0.035, rel=0.15)
    levels = (0.05, 0.95)
    obs = model.impute_distribution(given, levels)
    value = model.impute_distribution(given, levels, "soil_moisture")
    assert value[QUANTILE_NAME].attrs["interval_target"] == "soil_moisture"
    width = lambda q: float((q[1] - q[0])[hidden].mean())  # noqa: E731
    assert width(value[QUANTILE_NAME].values) < 0.7 * width(obs[QUANTILE_NAME].values)
    truth, target = ds[TRUTH].values, ds[TARGET].values
    # IDW's errors at single hidden entries are very unequal (a neighbour seen that day or not),
    # so a width set by their variance holds more than 90 % of them (measured 96 %).
    assert 0.85 <= coverage(value[QUANTILE_NAME].values, levels, truth, hidden, 0.9) <= 0.98
    assert 0.85 <= coverage(obs[QUANTILE_NAME].values, levels, target, hidden, 0.9) <= 0.95
    assert coverage(obs[QUANTILE_NAME].values, levels, truth, hidden, 0.9) > 0.95  # too wide
