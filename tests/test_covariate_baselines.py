"""Covariate-aware baselines on small cubes where the target is a known function of a covariate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.metrics import mae
from stimpute_core.models import MODEL_NAMES, make_imputer
from stimpute_core.models.base import NotFittedError
from stimpute_core.models.baselines import MeanImputer
from stimpute_core.models.covariate import (
    COVARIATE_BASELINES,
    CoarseOffsetImputer,
    CovariateRegressionImputer,
    GradientBoostingImputer,
    MICEImputer,
    RandomForestImputer,
    SmoothedBoostingImputer,
)
from stimpute_core.models.features import antecedent_precipitation

SHAPE = (120, 4, 5)


def make_ds(target: np.ndarray, **covariates: np.ndarray) -> xr.Dataset:
    """A contract-like Dataset: ``target`` (time, y, x) and covariates given by name."""
    n_time, ny, nx = target.shape
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    data = {"soil_moisture": (("time", "y", "x"), target, {"units": "m3/m3"})}
    for name, values in covariates.items():
        dims = ("time", "y", "x") if values.ndim == 3 else ("y", "x")
        data[name] = (dims, values)
    return xr.Dataset(
        data,
        coords={
            "time": pd.date_range("2020-01-01", periods=n_time, freq="D"),
            "y": -1000.0 * np.arange(ny),
            "x": 1000.0 * np.arange(nx),
            "lat": (("y", "x"), 30.4 - 0.009 * jj),
            "lon": (("y", "x"), -98.9 + 0.01 * ii),
        },
    )


def observed_mask(seed: int = 0, frac: float = 0.3, whole_days: bool = True) -> np.ndarray:
    """Observed entries; with ``whole_days`` some days are entirely missing (like real gaps)."""
    rng = np.random.default_rng(seed)
    obs = rng.random(SHAPE) < frac
    if whole_days:
        obs[rng.random(SHAPE[0]) < 0.3] = False
    return obs


def weather(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(SHAPE[0])[:, None, None]
    tmax = 25 + 8 * np.sin(2 * np.pi * t / 60) + rng.normal(0, 2, SHAPE)
    srad = 200 + 80 * rng.random(SHAPE)
    return {"tmax": tmax, "srad": srad}


def test_coarse_reproduces_a_per_cell_offset_exactly():
    rng = np.random.default_rng(0)
    coarse = 0.2 + 0.1 * np.sin(np.arange(SHAPE[0]) / 9.0)[:, None, None] + np.zeros(SHAPE)
    offset = 0.05 * rng.normal(size=SHAPE[1:])
    truth = coarse + offset
    obs = observed_mask()
    ds = make_ds(np.where(obs, truth, np.nan), sm_36km=coarse)
    out = CoarseOffsetImputer().fit(ds).impute(ds)
    np.testing.assert_allclose(out.values, truth, atol=1e-6)


def test_coarse_interpolates_the_coarse_product_across_its_gaps():
    coarse = np.linspace(0.1, 0.3, SHAPE[0])[:, None, None] + np.zeros(SHAPE)
    truth = coarse + 0.02
    gappy = coarse.copy()
    gappy[10:20] = np.nan  # a gap in the 36 km product: linear in time, so interpolation is exact
    obs = observed_mask()
    obs[10:20] = False
    ds = make_ds(np.where(obs, truth, np.nan), sm_36km=gappy)
    out = CoarseOffsetImputer().fit(ds).impute(ds)
    np.testing.assert_allclose(out.values, truth, atol=1e-6)


def test_coarse_needs_the_coarse_product():
    ds = make_ds(np.where(observed_mask(), 0.2, np.nan), **weather())
    with pytest.raises(ValueError, match="sm_36km"):
        CoarseOffsetImputer().fit(ds)


def test_regression_recovers_a_per_cell_linear_relation():
    cov = weather()
    rng = np.random.default_rng(3)
    a = 0.1 + 0.05 * rng.random(SHAPE[1:])
    b = 0.004 + 0.002 * rng.random(SHAPE[1:])
    truth = a + b * cov["tmax"]
    obs = observed_mask()
    ds = make_ds(np.where(obs, truth, np.nan), **cov)
    out = CovariateRegressionImputer(alpha=0.0).fit(ds).impute(ds)
    np.testing.assert_allclose(out.values[~obs], truth[~obs], atol=1e-6)


def test_regression_penalty_shrinks_a_cell_with_few_observations_to_its_mean():
    cov = weather()
    truth = 0.1 + 0.01 * cov["tmax"]
    obs = observed_mask()
    obs[:, 0, 0] = False
    obs[[5, 50], 0, 0] = True  # two observations in this cell
    ds = make_ds(np.where(obs, truth, np.nan), **cov)
    out = CovariateRegressionImputer(alpha=1e6).fit(ds).impute(ds)
    cell = out.values[~obs[:, 0, 0], 0, 0]
    np.testing.assert_allclose(cell, truth[[5, 50], 0, 0].mean(), atol=1e-4)


@pytest.mark.parametrize("cls", [MICEImputer, RandomForestImputer, GradientBoostingImputer])
def test_tabular_methods_learn_the_relation_to_a_covariate(cls):
    cov = weather()
    # A pooled, monotone relation to one covariate, with whole days missing.
    truth = 0.05 + 0.3 / (1 + np.exp(-(cov["tmax"] - 25) / 3))
    obs = observed_mask()
    ds = make_ds(np.where(obs, truth, np.nan), **cov, clay=np.full(SHAPE[1:], 20.0))
    out = cls(seed=0).fit(ds).impute(ds)
    baseline = MeanImputer().fit(ds).impute(ds)
    err = mae(out.values, truth, ~obs)
    assert err < 0.3 * mae(baseline.values, truth, ~obs)
    np.testing.assert_allclose(out.values[obs], truth[obs], atol=1e-6)  # passed through


def test_forest_uses_land_cover():
    lc = np.array([[10, 10, 9, 9, 9]] * 4, dtype=np.int16)
    truth = np.where(lc == 9, 0.3, 0.1)[None] + np.zeros(SHAPE)
    obs = observed_mask()
    obs[:, :, 2] = False  # a savanna column never observed: only its land cover tells
    ds = make_ds(np.where(obs, truth, np.nan), land_cover=lc, **weather())
    out = RandomForestImputer(n_estimators=20, seed=0).fit(ds).impute(ds)
    np.testing.assert_allclose(out.values[:, :, 2], 0.3, atol=0.02)


def test_boosting_learns_a_nonlinear_rain_memory():
    """Soil moisture as a saturating function of a two-week rain memory: the trees find it from
    the derived inputs (the per-cell regression on one day's weather cannot)."""
    rng = np.random.default_rng(7)
    prcp = np.where(rng.random(SHAPE[:1]) < 0.15, 20 * rng.random(SHAPE[:1]), 0.0)
    prcp = np.broadcast_to(prcp[:, None, None], SHAPE).copy()
    memory = antecedent_precipitation(prcp, 0.93)
    truth = 0.08 + 0.3 * (1 - np.exp(-memory / 30))
    obs = observed_mask()
    ds = make_ds(np.where(obs, truth, np.nan), prcp=prcp, **weather())
    boosted = GradientBoostingImputer(seed=0).fit(ds).impute(ds)
    mean = MeanImputer().fit(ds).impute(ds)
    assert mae(boosted.values, truth, ~obs) < 0.2 * mae(mean.values, truth, ~obs)


def test_smoothed_boosting_finds_the_days_anomaly_from_its_observations():
    """A weather anomaly of each day that no covariate shows: on days it was not fitted on,
    boosting cannot know it, the day's other observations do; a day with no observation is
    boosting alone."""
    rng = np.random.default_rng(5)
    cov = weather()
    anomaly = rng.normal(0.0, 0.05, SHAPE[0])[:, None, None]
    truth = 0.1 + 0.004 * cov["tmax"] + anomaly
    obs = observed_mask(frac=0.6)
    hidden = obs & (rng.random(SHAPE) < 0.25)
    ds = make_ds(np.where(obs & ~hidden, truth, np.nan), **cov)
    first, later = ds.isel(time=slice(0, 60)), ds.isel(time=slice(60, None))
    plain = GradientBoostingImputer(seed=0).fit(first)
    smooth = SmoothedBoostingImputer(seed=0).fit(first)
    assert smooth.smooth_ is not None
    out = smooth.impute(later).values
    truth, hidden = truth[60:], hidden[60:]
    assert mae(out, truth, hidden) < 0.5 * mae(plain.impute(later).values, truth, hidden)
    blank = ~np.isfinite(later.soil_moisture.values).any(axis=(1, 2))
    assert blank.any()
    np.testing.assert_allclose(out[blank], plain.predict_cube(later)[blank])


def test_boosting_never_reads_the_truth_and_is_repeatable():
    cov = weather()
    truth = 0.1 + 0.004 * cov["tmax"]
    ds = make_ds(np.where(observed_mask(), truth, np.nan), **cov)
    a = GradientBoostingImputer(max_iter=20, seed=3).fit(ds).impute(ds)
    ds["soil_moisture_true"] = (("time", "y", "x"), np.full(SHAPE, 9.0))
    b = GradientBoostingImputer(max_iter=20, seed=3).fit(ds).impute(ds)
    np.testing.assert_array_equal(a.values, b.values)


def test_antecedent_precipitation_by_hand():
    rain = np.array([10.0, 0.0, np.nan, 5.0])[:, None]
    np.testing.assert_allclose(
        antecedent_precipitation(rain, 0.5)[:, 0], [10.0, 5.0, 2.5, 6.25], atol=1e-12
    )


@pytest.mark.parametrize("name", sorted(COVARIATE_BASELINES))
def test_contract_of_every_covariate_baseline(name):
    cov = weather() | {"sm_36km": 0.2 + 0.01 * weather(5)["tmax"] / 25}
    truth = 0.1 + 0.004 * cov["tmax"]
    obs = observed_mask()
    ds = make_ds(np.where(obs, truth, np.nan), **cov)
    ds["soil_moisture_true"] = (("time", "y", "x"), np.full(SHAPE, 9.0))  # never read
    imputer = make_imputer(name)
    with pytest.raises(NotFittedError):
        imputer.impute(ds)
    out = imputer.fit(ds).impute(ds)
    assert out.dims == ("time", "y", "x") and np.isfinite(out.values).all()
    assert float(out.values.max()) < 1.0
    np.testing.assert_allclose(out.values[obs], truth[obs], atol=1e-6)
    # Another period on the same grid works; a Dataset without the covariates is refused.
    imputer.impute(ds.isel(time=slice(0, 30)))
    with pytest.raises(ValueError, match=r"sm_36km|tmax"):
        imputer.impute(ds.drop_vars(["tmax", "sm_36km"]))
    with pytest.raises(ValueError, match="grid"):
        imputer.impute(ds.isel(x=slice(0, 3)))


def test_registered_by_name():
    assert set(COVARIATE_BASELINES) == {
        "coarse",
        "regression",
        "mice",
        "forest",
        "boosting",
        "boosting-smooth",
    }
    assert set(COVARIATE_BASELINES) <= set(MODEL_NAMES)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (CovariateRegressionImputer, {"alpha": -1}, "alpha"),
        (MICEImputer, {"max_iter": 0}, "max_iter"),
        (MICEImputer, {"max_rows": 3}, "max_rows"),
        (RandomForestImputer, {"n_estimators": 0}, "n_estimators"),
        (RandomForestImputer, {"max_depth": 1.5}, "max_depth"),
        (GradientBoostingImputer, {"max_iter": 0}, "max_iter"),
        (GradientBoostingImputer, {"learning_rate": 0}, "learning_rate"),
    ],
)
def test_settings_are_validated_in_fit(cls, kwargs, match):
    """The constructor stores a bad setting as given; ``fit`` refuses it, naming it."""
    model = cls(**kwargs)
    assert all(model.get_params()[k] is v for k, v in kwargs.items())
    cov = weather()
    ds = make_ds(np.where(observed_mask(), 0.2, np.nan), **cov, clay=np.full(SHAPE[1:], 20.0))
    with pytest.raises(ValueError, match=match):
        model.fit(ds)


def test_boosting_keeps_the_coarse_features_when_the_first_days_lack_them():
    """The columns come from the whole fitting period, not from its first days."""
    cov = weather() | {"sm_36km": 0.2 + 0.01 * weather(5)["tmax"] / 25}
    cov["sm_36km"][:5] = np.nan
    truth = 0.1 + 0.004 * cov["tmax"]
    ds = make_ds(np.where(observed_mask(), truth, np.nan), **cov)
    model = GradientBoostingImputer(max_iter=10).fit(ds)
    assert "derived:sm_36km_filled" in model.columns_
    # A window with no coarse value at all is predicted with those fields missing.
    window = ds.isel(time=slice(0, 5))
    assert np.isfinite(model.impute(window).values).all()
