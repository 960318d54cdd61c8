"""The ST-Transformer's added inputs: prior, derived inputs and cell context. No held-out or
validation entry may reach them, and checkpoints must record and refuse what they need."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from stimpute_core import masks
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models import make_imputer
from stimpute_core.models.smoothing import SMOOTHERS, smoothed_departures
from stimpute_core.models.st_transformer import model as model_module
from stimpute_core.models.st_transformer.core import STTransformer, STTransformerConfig
from stimpute_core.models.st_transformer.data import IncompatibleDataError
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.models.st_transformer.prior import CrossFittedPrior, cell_context, fold_of


@pytest.fixture(scope="module")
def small():
    ds = make_scenario(ScenarioConfig(seed=3, start="2019-01-01", end="2019-12-31"))
    return ds.isel(y=slice(0, 10), x=slice(0, 14)).drop_vars("soil_moisture_true")


@pytest.mark.parametrize("readout", ["concat", "deep"])
def test_a_residual_network_starts_at_the_prior(readout):
    cfg = STTransformerConfig(n_covariates=3, hidden=8, n_layers=2, window=12, readout=readout, residual=True)  # fmt: skip
    net = STTransformer(cfg)
    y = torch.randn(2, 12, 144)
    pred, aux = net(y, torch.rand(2, 12, 144) < 0.2, torch.randn(2, 12, 144, 3))
    assert torch.count_nonzero(pred) == 0 and all(torch.count_nonzero(a) == 0 for a in aux)


def _one_excluded(ds):
    """The target values, the indices of the observed entries, and a mask excluding one."""
    values = ds.soil_moisture.values
    obs = np.argwhere(np.isfinite(values))
    exclude = np.zeros(values.shape, dtype=bool)
    exclude[tuple(obs[5])] = True
    return values, obs, exclude


def _with_values(ds, values):
    out = ds.copy(deep=True)
    out["soil_moisture"].values[:] = values
    return out


def test_cross_fitted_prior_never_knows_the_day_it_estimates(small):
    """Changing one observed value leaves the estimates of its day unchanged; changing an
    excluded (validation) value changes no estimate at all."""
    values, obs, exclude = _one_excluded(small)

    def prior(v):
        ds = _with_values(small, v)
        return CrossFittedPrior.fit(ds, "regression", exclude).estimate(ds)

    base = prior(values)
    probe = tuple(obs[40])
    bumped = values.copy()
    bumped[probe] += 0.3
    moved = prior(bumped)
    np.testing.assert_allclose(moved[probe[0]], base[probe[0]], atol=1e-12)  # its whole day
    assert not np.allclose(moved, base)  # the value does inform the other groups' days
    bumped = values.copy()
    bumped[tuple(obs[5])] += 0.3
    np.testing.assert_array_equal(prior(bumped), base)


def test_a_smoothed_prior_knows_the_rest_of_the_day_but_never_the_entry(small):
    """With the same-day smoother, an observed value moves the prior of its day's other
    entries but never its own; an excluded value moves nothing. (The kernel, one of a few
    widths chosen on all the observations like any fitted setting, is held fixed here.)"""
    values, obs, exclude = _one_excluded(small)

    def prior(v):
        ds = _with_values(small, v)
        fitted = CrossFittedPrior.fit(ds, "regression", exclude)
        fitted.smooth = (3.0, 0.02)
        return fitted.estimate(ds.assign(soil_moisture=ds.soil_moisture.where(~exclude)))

    base = prior(values)
    probe = tuple(obs[40])
    bumped = values.copy()
    bumped[probe] += 0.3
    moved = prior(bumped)
    assert moved[probe] == pytest.approx(base[probe], abs=1e-12)
    same_day = np.isfinite(values[probe[0]])
    same_day[probe[1:]] = False
    assert not np.allclose(moved[probe[0]][same_day], base[probe[0]][same_day])
    bumped = values.copy()
    bumped[tuple(obs[5])] += 0.3
    np.testing.assert_array_equal(prior(bumped), base)
    chosen = CrossFittedPrior.fit(small, "regression", exclude, smooth=True).smooth
    assert chosen in SMOOTHERS


def test_smoothed_departures_leave_each_entry_out():
    rng = np.random.default_rng(0)
    dep = np.where(rng.random((3, 9, 11)) < 0.4, rng.normal(size=(3, 9, 11)), np.nan)
    dep[2] = np.nan  # a day without observations adds nothing
    got = smoothed_departures(dep, 2.0, 0.1)
    seen = np.isfinite(dep)
    # By hand: the same weights from the filter of a delta, the entry itself removed.
    from scipy import ndimage

    for t, r, c in [(0, 4, 5), (1, 0, 0), (0, 8, 10)]:
        num = den = 0.0
        for rr, cc in zip(*np.nonzero(seen[t]), strict=True):
            if (rr, cc) == (r, c):
                continue
            delta = np.zeros((1, 9, 11))
            delta[0, rr, cc] = 1.0
            w = ndimage.gaussian_filter(delta, (0, 2.0, 2.0), mode="constant", truncate=3.0)[
                0, r, c
            ]
            num, den = num + w * dep[t, rr, cc], den + w
        assert got[t, r, c] == pytest.approx(num / (den + 0.1), rel=1e-9, abs=1e-12)
    np.testing.assert_array_equal(got[2], 0.0)


def test_what_the_fit_never_saw_gets_the_full_reference(small, tmp_path):
    """Days without a usable observation (held out whole, or another period) are estimated by
    the reference fitted on everything; a saved prior gives the same estimates."""
    fit_part = small.isel(time=slice(0, 250))
    later = small.isel(time=slice(250, None))
    exclude = np.zeros(fit_part.soil_moisture.shape, dtype=bool)
    exclude[10:20] = True  # ten days held out whole
    prior = CrossFittedPrior.fit(fit_part, "boosting", exclude)
    full = prior.full.predict_cube(later, check_grid=False)
    np.testing.assert_allclose(prior.estimate(later), full)
    inside = prior.estimate(fit_part)
    np.testing.assert_allclose(inside[10:20], prior.full.predict_cube(fit_part)[10:20])
    assert not np.allclose(inside[30:40], prior.full.predict_cube(fit_part)[30:40])
    prior.save(tmp_path / "prior.skops")
    again = CrossFittedPrior.load(tmp_path / "prior.skops")
    np.testing.assert_array_equal(again.estimate(small), prior.estimate(small))
    prior.smooth = (4.0, 0.2)
    prior.save(tmp_path / "smooth.skops")
    assert CrossFittedPrior.load(tmp_path / "smooth.skops").smooth == (4.0, 0.2)


def test_a_boosting_prior_gives_each_day_its_own_fold_reference(small):
    """The one-pass prediction of all the fold references equals each reference predicting
    the days of its own group (and the full one the days no fold saw)."""
    from stimpute_core.models.covariate.boosting import predict_by_day
    from stimpute_core.models.features import derived_features
    from stimpute_core.models.st_transformer.prior import _day_keys

    exclude = np.zeros(small.soil_moisture.shape, dtype=bool)
    exclude[40:50] = True  # days no fold reference saw
    prior = CrossFittedPrior.fit(small, "boosting", exclude, folds=3)
    keys = _day_keys(small)
    group = np.where(np.isin(keys, prior.seen), (keys % np.uint64(3)).astype(int), -1)
    assert (group[40:50] == -1).all() and set(group[group >= 0]) == {0, 1, 2}
    expect = np.empty(small.soil_moisture.shape)
    for k, model in [(-1, prior.full), *enumerate(prior.models)]:
        expect[group == k] = model.predict_cube(small, check_grid=False)[group == k]
    np.testing.assert_allclose(prior.estimate(small), expect)
    derived = derived_features(small)
    ours = predict_by_day(prior.models, small, np.where(group < 0, -1, group), derived)
    assert np.isnan(ours[40:50]).all()  # -1: no model, left NaN
    other = make_imputer("boosting").fit(small.drop_vars("tmax"))
    with pytest.raises(ValueError, match="different columns"):
        predict_by_day([prior.models[0], other], small, group.clip(0, 1), derived)


def test_a_prior_saved_before_the_full_reference_keeps_its_day_groups(small, tmp_path):
    import skops.io as sio

    prior = CrossFittedPrior.fit(small, "regression", np.zeros(small.soil_moisture.shape, bool))
    sio.dump(list(prior.models), tmp_path / "old.skops")
    old = CrossFittedPrior.load(tmp_path / "old.skops")
    assert old.full is None and old.scheme == "multiplicative"
    group = fold_of(pd.DatetimeIndex(small.time.values), 3, "multiplicative")
    expect = np.empty(small.soil_moisture.shape)
    for k, model in enumerate(prior.models):
        expect[group == k] = model.impute(small.assign(soil_moisture=small.soil_moisture.where(False))).values[group == k]  # fmt: skip
    np.testing.assert_allclose(old.estimate(small), expect)


def test_day_groups_follow_the_date():
    times = pd.date_range("2019-01-01", periods=400)
    groups = fold_of(times, 3)
    np.testing.assert_array_equal(fold_of(times[100:], 3), groups[100:])  # any Dataset
    assert set(np.bincount(groups)) and min(np.bincount(groups)) > 100
    ten = fold_of(times, 10)
    for lag in (1, 6, 12):  # revisits fall in unrelated groups
        assert (ten[lag:] == ten[:-lag]).mean() < 0.16


def test_cell_context_by_hand():
    v = np.full((4, 1, 3), np.nan)
    v[:, 0, 0] = [0.1, 0.3, np.nan, 0.2]
    v[1, 0, 1] = 0.5
    coarse = np.full(v.shape, 0.2)
    ctx = cell_context(v, coarse)
    np.testing.assert_allclose(ctx[0, 0], [0.2, 0.1, 0.0], atol=1e-12)
    pooled = np.nanstd(v)
    np.testing.assert_allclose(ctx[0, 1], [0.5, pooled, 0.3], atol=1e-12)
    np.testing.assert_allclose(ctx[0, 2, 0], np.nanmean(v))  # never observed: the overall mean


def _capture_training(monkeypatch):
    """Replace the training loop by one that records what it is given."""
    seen = {}

    def fake_train(net, samples, val_mask, settings, **kwargs):
        seen.update(y=samples.y.copy(), u=samples.u.copy(), val=val_mask.copy())
        return [{"epoch": 1, "train_loss": 0.0, "val_mae": 0.0, "elapsed_s": 0.0}], False

    monkeypatch.setattr(model_module, "train_network", fake_train)
    return seen


@pytest.mark.parametrize("mask_kind", ["time_slice", "point"])
def test_validation_entries_reach_no_input_statistic_or_prior(small, monkeypatch, mask_kind):
    """Two fits that differ only in the values of the validation entries give the network the
    same inputs (covariates, derived inputs, prior, cell context) and the same normalisation."""
    seen = _capture_training(monkeypatch)
    settings = {"profile": "tiny", "prior": "regression", "mask_kind": mask_kind, "seed": 1}
    first = STTransformerImputer(**settings).fit(small)
    a = dict(seen)
    val = a["val"][:, : small.sizes["y"], : small.sizes["x"]]
    assert val.any()
    changed = small.copy(deep=True)
    changed["soil_moisture"].values[val] += 0.25
    second = STTransformerImputer(**settings).fit(changed)
    np.testing.assert_array_equal(a["val"], seen["val"])
    np.testing.assert_array_equal(a["u"], seen["u"])
    outside = ~a["val"]
    np.testing.assert_array_equal(a["y"][outside], seen["y"][outside])
    assert first.normalizer_ == second.normalizer_
    assert first.normalizer_.extra == ["prior", "cell_mean", "cell_sd", "cell_coarse_offset"]
    # Once the weights are chosen, the full reference learns from every given observation.
    blank = small.assign(soil_moisture=small.soil_moisture.where(False))
    after = [m.prior_model_.full.impute(blank).values for m in (first, second)]
    assert not np.allclose(after[0], after[1])
    by_hand = make_imputer("regression").fit(small).impute(blank).values
    np.testing.assert_allclose(after[0], by_hand)


def test_held_out_entries_reach_no_imputation_input(small):
    """Entries hidden by the benchmark are absent from the Dataset: whatever their value, the
    imputation is the same (the prior and the context are refitted on what is given)."""
    hidden = masks.holdout_mask(small, "time_slice", 0.2, seed=0)
    model = STTransformerImputer(profile="tiny", prior="regression", epochs=1, seed=0)
    model.fit(masks.apply_holdout(small, hidden))
    a = model.impute(masks.apply_holdout(small, hidden)).values
    other = small.copy(deep=True)
    other["soil_moisture"].values[hidden] = 0.45
    b = model.impute(masks.apply_holdout(other, hidden)).values
    np.testing.assert_array_equal(a, b)


def test_checkpoint_records_its_inputs_and_refuses_data_without_them(small, tmp_path):
    model = STTransformerImputer(profile="tiny", prior="regression", epochs=1, seed=0).fit(small)
    path = model.save(tmp_path / "ckpt")
    meta = json.loads((path / "config.json").read_text())
    assert meta["imputer"]["prior"] == "regression" and meta["imputer"]["derived_inputs"]
    assert meta["network"]["residual"] is True
    assert meta["normalizer"]["extra"][0] == "prior"
    assert (path / "prior.skops").is_file()
    again = STTransformerImputer.load(path)
    np.testing.assert_allclose(again.impute(small).values, model.impute(small).values, atol=1e-6)
    with pytest.raises(IncompatibleDataError, match="prcp"):
        again.impute(small.drop_vars("prcp"))
    (path / "prior.skops").unlink()
    with pytest.raises(ValueError, match=r"prior\.skops"):
        STTransformerImputer.load(path)


def test_a_saved_prior_with_an_unexpected_type_is_refused(tmp_path):
    """skops would rebuild any class it is told to trust; the loader trusts a fixed list."""
    import skops.io as sio

    path = tmp_path / "prior.skops"
    sio.dump([STTransformerConfig(), STTransformerConfig()], path)
    with pytest.raises(ValueError, match="STTransformerConfig"):
        CrossFittedPrior.load(path)


def test_the_boosting_prior_serves_another_grid(small):
    """The default prior is pointwise: a model fitted on one box imputes a part of it."""
    model = STTransformerImputer(profile="tiny", epochs=1, seed=0).fit(small)
    part = small.isel(y=slice(2, 9), x=slice(1, 12))
    out = model.impute(part)
    assert out.shape == part.soil_moisture.shape and np.isfinite(out.values).all()


def test_without_covariates_no_covariate_input_is_left(small):
    model = make_imputer("st-transformer-nocov", profile="tiny", epochs=1).fit(small)
    norm = model.normalizer_
    assert norm.dynamic == [] and norm.static == [] and norm.land_cover_classes == []
    assert "prior" not in norm.extra and model.net_.cfg.residual is False
    paper = make_imputer("st-transformer-paper", profile="tiny", epochs=1).fit(small)
    assert paper.normalizer_.extra == [] and not any(
        n.startswith("derived_") for n in paper.normalizer_.dynamic
    )


def test_prior_must_name_a_reference(small):
    with pytest.raises(ValueError, match="prior"):
        STTransformerImputer(prior="st-transformer").fit(small)
    with pytest.raises(ValueError, match="prior_folds"):
        STTransformerImputer(prior_folds=1).fit(small)
    with pytest.raises(ValueError, match="expected one of the references"):
        STTransformerImputer(profile="tiny", prior="nonsense", epochs=1).fit(small)
