"""Probabilistic imputation: the quantile scores against hand-computed values, split-conformal
calibration on a case with a known answer, and the quantile output of a conformal imputer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from stimpute_core import uncertainty as unc
from stimpute_core.data.contract import INSITU, TARGET, TRUTH
from stimpute_core.data.grid import TXSON_BOX, GridBox, xy_to_lonlat
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout, holdout_mask
from stimpute_core.models import make_imputer
from stimpute_core.models.base import QUANTILE_NAME, check_quantiles, is_probabilistic
from stimpute_core.models.conformal import (
    MIN_COUNT,
    Conformal,
    ResidualQuantiles,
    gap_days,
    strata,
)
from stimpute_core.validation import IN_BAND_COLUMNS, station_in_band


def _cube(values):
    return np.asarray(values, dtype=float).reshape(-1, 1, 1)


def test_crps_coverage_width_and_pit_by_hand():
    levels = (0.25, 0.5, 0.75)
    pred = np.stack([_cube([0.1, 0.1]), _cube([0.2, 0.2]), _cube([0.3, 0.3])])  # (3, 2, 1, 1)
    target = _cube([0.2, 0.4])
    mask = np.ones(target.shape, bool)
    # Pinball losses: entry 1 (y = 0.2): 0.25*0.1, 0, 0.25*0.1 -> 0.05; entry 2 (y = 0.4):
    # 0.25*0.3, 0.5*0.2, 0.75*0.1 -> 0.25. CRPS = 2 * mean of the six = 2 * 0.3 / 6 = 0.1.
    assert unc.crps(pred, levels, target, mask) == pytest.approx(0.1)
    assert unc.coverage(pred, levels, target, mask, 0.5) == pytest.approx(0.5)  # 0.2 in, 0.4 out
    assert unc.width(pred, levels, mask, 0.5) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"lack 0\.05"):
        unc.coverage(pred, levels, target, mask, 0.9)
    deciles = tuple(k / 10 for k in range(1, 10))
    grid = np.stack([_cube([q, q, q, q]) for q in deciles])  # a uniform's deciles
    hist = unc.pit_histogram(grid, deciles, _cube([0.05, 0.15, 0.15, 0.95]), np.ones((4, 1, 1)))
    assert hist.tolist() == [0.25, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.25]


def test_quantile_levels_are_checked():
    assert check_quantiles([0.95, 0.05, 0.5]) == (0.05, 0.5, 0.95)
    for bad, message in (([0.0], "strictly between"), ([0.5, 0.5], "once"), ([], "at least")):
        with pytest.raises(ValueError, match=message):
            check_quantiles(bad)


def test_gap_days_and_strata():
    observed = np.zeros((7, 1, 2), bool)
    observed[[1, 5], 0, 0] = True
    assert gap_days(observed)[:, 0, 0].tolist() == [1, 0, 1, 2, 1, 0, 1]
    assert (gap_days(observed)[:, 0, 1] >= 10**6).all()  # never observed
    classes = strata(observed)
    # Day 2: gap 1 (class 0), no observation that day; day 3: gap 2 (class 1).
    assert classes[2, 0, 0] == 0 and classes[3, 0, 0] == 2 and classes[1, 0, 1] == 11


def test_conformal_quantiles_of_known_gaussian_noise_hold_their_coverage():
    rng = np.random.default_rng(0)
    sd = 0.02
    calib = rng.normal(0.0, sd, 4000)
    bands = ResidualQuantiles.fit(calib, np.zeros(calib.size, int))
    lo, mid, hi = bands.offsets((0.05, 0.5, 0.95), np.zeros(1, int))[:, 0]
    assert lo == pytest.approx(norm.ppf(0.05) * sd, rel=0.08)
    assert hi == pytest.approx(norm.ppf(0.95) * sd, rel=0.08)
    assert abs(mid) < 0.002
    fresh = rng.normal(0.0, sd, 20000)
    assert 0.88 < np.mean((fresh >= lo) & (fresh <= hi)) < 0.92
    # A class with too few residuals borrows the pooled quantiles; the dict form round-trips.
    few = ResidualQuantiles.fit(np.r_[calib, 5 * calib[: MIN_COUNT - 1]], np.r_[
        np.zeros(calib.size, int), np.full(MIN_COUNT - 1, 2)
    ])  # fmt: skip
    assert few.counts[2] == MIN_COUNT - 1 and few._row(2) == len(few.counts) - 3
    again = ResidualQuantiles.from_dict(few.to_dict())
    assert np.allclose(
        again.offsets((0.1, 0.9), np.array([0, 2])), few.offsets((0.1, 0.9), np.array([0, 2]))
    )
    broken = few.to_dict()
    broken["table"][-1][3] = 9.0
    with pytest.raises(ValueError, match=r"calibration\.table"):
        ResidualQuantiles.from_dict(broken)


@pytest.fixture(scope="module")
def small():
    ds = make_scenario(ScenarioConfig(start="2019-01-01", end="2019-06-30", n_stations=4))
    return ds.isel(x=slice(0, 12), y=slice(0, 12)).load()


def test_conformal_imputer_quantiles(small):
    hidden = holdout_mask(small, "point", fraction=0.2, seed=3)
    train = apply_holdout(small, hidden)
    model = Conformal(base="idw", mask_kind="point", seed=1).fit(train)
    assert is_probabilistic(model) and not is_probabilistic(make_imputer("idw"))
    out = model.impute_distribution(train, quantiles=(0.95, 0.05, 0.5, 0.25, 0.75))
    q = out[QUANTILE_NAME]
    assert q.dims == ("quantile", "time", "y", "x") and q["quantile"].values.tolist() == [
        0.05, 0.25, 0.5, 0.75, 0.95
    ]  # fmt: skip
    assert (q.diff("quantile") >= 0).all()
    obs = np.isfinite(train[TARGET].values)
    for k in range(q.sizes["quantile"]):
        assert np.array_equal(q.values[k][obs], train[TARGET].values[obs].astype(np.float32))
    assert np.array_equal(out["soil_moisture_imputed"].values, model.impute(train).values)
    again = Conformal(base="idw", mask_kind="point", seed=1).fit(train)
    assert np.array_equal(again.impute_distribution(train)[QUANTILE_NAME].values,
                          model.impute_distribution(train)[QUANTILE_NAME].values)  # fmt: skip
    # The held-out observations fall inside the 90 % interval about as often as stated.
    inside = unc.coverage(q.values, (0.05, 0.25, 0.5, 0.75, 0.95), small[TARGET].values, hidden,
                          0.9)  # fmt: skip
    assert 0.8 < inside < 0.98
    grid = model.impute_distribution(train, quantiles=unc.SCORE_QUANTILES)[QUANTILE_NAME].values
    scores = unc.distribution_scores(grid, unc.SCORE_QUANTILES, small[TARGET].values, hidden)
    assert scores["cover90"] == pytest.approx(inside) and scores["crps"] > 0
    # The truth is never read: the same quantiles without it.
    blind = Conformal(base="idw", mask_kind="point", seed=1).fit(train.drop_vars(TRUTH))
    assert np.array_equal(blind.impute_distribution(train)[QUANTILE_NAME].values,
                          model.impute_distribution(train)[QUANTILE_NAME].values)  # fmt: skip


def test_a_deterministic_model_refuses_quantiles_and_bad_settings_are_named(small):
    with pytest.raises(TypeError, match="idw gives one value per cell-day"):
        make_imputer("idw").fit(small).impute_distribution(small)
    with pytest.raises(ValueError, match="base='nope'"):
        Conformal(base="nope").fit(small)
    with pytest.raises(ValueError, match=r"folds=1\b"):
        Conformal(folds=1).fit(small)


def test_calibration_residuals_come_from_a_fit_that_never_saw_them(small, monkeypatch):
    """Cross-fitting: each fold's fit sees the observations less that fold, and whole days at
    that (time-slice); every observation gives exactly one residual; the last fit sees every
    observation."""
    from stimpute_core.models import conformal

    seen = []
    real = conformal.REFERENCES["idw"]

    def spy(**options):
        model = real(**options)
        fit = model.fit
        model.fit = lambda ds: (seen.append(np.isfinite(ds[TARGET].values)), fit(ds))[1]
        return model

    monkeypatch.setitem(conformal.REFERENCES, "idw", spy)
    model = Conformal(base="idw", folds=4, mask_kind="time_slice", seed=2).fit(small)
    observed = np.isfinite(small[TARGET].values)
    *per_fold, last = seen
    assert len(per_fold) == 4 and np.array_equal(last, observed)
    held = [observed & ~given for given in per_fold]
    assert all(
        not (given & ~observed).any() and h.any() for given, h in zip(per_fold, held, strict=True)
    )
    assert np.array_equal(np.sum(held, axis=0), observed.astype(int))  # each entry in one fold
    for h in held:  # whole days: a day is held out entirely or not at all
        day_held = h.any(axis=(1, 2))
        assert np.array_equal(h[day_held], observed[day_held])
    assert model.bands_.counts[-1] == observed.sum()  # one residual per observation, no more


def test_folds_split_days_or_entries_evenly():
    from stimpute_core.models.conformal import fold_of_entries

    rng = np.random.default_rng(0)
    observed = rng.random((40, 5, 6)) < 0.3
    observed[::7] = False
    days = fold_of_entries(observed, 3, "time_slice", seed=1)
    assert ((days >= 0) == observed).all()
    per_day = [np.unique(days[t][observed[t]]) for t in range(40) if observed[t].any()]
    assert all(u.size == 1 for u in per_day)
    counts = np.bincount([u[0] for u in per_day], minlength=3)
    assert counts.max() - counts.min() <= 1
    entries = fold_of_entries(observed, 3, "point", seed=1)
    sizes = np.bincount(entries[observed], minlength=3)
    assert ((entries >= 0) == observed).all() and sizes.max() - sizes.min() <= 1
    assert np.array_equal(entries, fold_of_entries(observed, 3, "point", seed=1))


# --- what the workbench draws: calibration curve, width map, band, stations in the band ------


def test_calibration_curve_by_hand():
    levels = unc.SCORE_QUANTILES
    # Every entry's quantiles are those of a uniform on [0, 1]: level q has the value q.
    pred = np.stack([_cube([q] * 4) for q in levels])  # (19, 4, 1, 1)
    target = _cube([0.5, 0.42, 0.2, 0.97])  # inside the 10 %, 20 %, 60 % and no interval
    mask = np.ones(target.shape, bool)
    curve = unc.calibration_curve(pred, levels, target, mask)
    assert unc.CALIBRATION_LEVELS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    # Central interval c spans [0.5 - c/2, 0.5 + c/2]: 0.5 is in all; 0.42 from c = 0.2 on
    # (0.4 <= 0.42); 0.2 from c = 0.6 on (0.2 <= 0.2); 0.97 never (the 90 % one ends at 0.95).
    expected = [1, 2, 2, 2, 2, 3, 3, 3, 3]
    np.testing.assert_allclose(curve, np.array(expected) / 4)
    np.testing.assert_allclose(unc.calibration_curve(pred, levels, target, mask, (0.9,)), [0.75])
    masked = np.array([True, False, False, True]).reshape(target.shape)
    np.testing.assert_allclose(unc.calibration_curve(pred, levels, target, masked), 0.5)
    assert np.isnan(unc.calibration_curve(pred, levels, target, ~mask)).all()
    with pytest.raises(ValueError, match=r"lack 0\.45"):
        unc.calibration_curve(pred[[0, -1]], (0.05, 0.95), target, mask)


def test_interval_width_map_and_bounds_by_hand():
    levels = (0.05, 0.5, 0.95)
    lower = np.array([[0.1, 0.2], [0.3, 0.3]])
    widths = np.array([[0.2, 0.1], [0.0, 0.4]])
    pred = np.stack([lower, lower + 0.05, lower + widths])
    np.testing.assert_allclose(unc.interval_width_map(pred, levels), widths)
    lo, hi = unc.interval_bounds(pred, levels, 0.9)
    np.testing.assert_allclose(lo, lower)
    np.testing.assert_allclose(hi, [[0.3, 0.3], [0.3, 0.7]])
    with pytest.raises(ValueError, match=r"lack 0\.25"):
        unc.interval_width_map(pred, levels, 0.5)


def test_in_band_by_hand():
    values = np.array([0.1, 0.2, 0.3, np.nan, 0.25])
    lower = np.array([0.15, 0.15, 0.15, 0.15, np.nan])
    upper = np.full(5, 0.3)
    share, n = unc.in_band(values, lower, upper)  # 0.1 out, 0.2 in, 0.3 in (ends count)
    assert n == 3 and share == pytest.approx(2 / 3)
    share, n = unc.in_band(values[3:4], lower[3:4], upper[3:4])
    assert n == 0 and np.isnan(share)
    with pytest.raises(ValueError, match="differ in shape"):
        unc.in_band(values, lower[:2], upper)


def _station_dataset() -> xr.Dataset:
    """A 2 x 2 grid over 4 days with station A at cell (0, 0) and B at cell (1, 1)."""
    box = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=2, ncols=2)
    x, y = box.coords()
    lon, lat = xy_to_lonlat(*np.meshgrid(x, y))
    slon, slat = xy_to_lonlat(x[[0, 1]], y[[0, 1]])
    insitu = np.array([[0.1, 0.2, 0.3, np.nan], [0.2, 0.2, 0.2, 0.2]])
    return xr.Dataset(
        {
            TARGET: (("time", "y", "x"), np.full((4, 2, 2), np.nan)),
            INSITU: (("station", "time"), insitu),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=4),
            "y": y,
            "x": x,
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
            "station": ["A", "B"],
            "station_lat": ("station", slat),
            "station_lon": ("station", slon),
        },
    )


def test_station_in_band_by_hand():
    ds = _station_dataset()
    lower, upper = np.full((4, 2, 2), 0.15), np.full((4, 2, 2), 0.25)
    lower[:, 1, 1], upper[:, 1, 1] = 0.1, 0.3
    upper[0, 1, 1] = np.nan  # no band on B's first day
    table = station_in_band(ds, {"m": (lower, upper)}, min_pairs=3)
    assert list(table.columns) == IN_BAND_COLUMNS
    rows = table.set_index("station")
    # A: 0.1 out, 0.2 in, 0.3 out (day 4 has no in-situ value); B: 3 days, all in.
    assert rows.loc["A", "n_band"] == 3 and rows.loc["A", "in_band"] == pytest.approx(1 / 3)
    assert rows.loc["B", "n_band"] == 3 and rows.loc["B", "in_band"] == pytest.approx(1.0)
    assert rows.loc["all", "n_band"] == 6 and rows.loc["all", "in_band"] == pytest.approx(4 / 6)
    strict = station_in_band(ds, {"m": (lower, upper)}, min_pairs=4).set_index("station")
    assert strict["in_band"].isna().all() and strict.loc["all", "n_band"] == 0
    assert station_in_band(ds.drop_vars(INSITU), {"m": (lower, upper)}).empty
