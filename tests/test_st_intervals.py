"""The ST-Transformer's calibrated intervals: computed in fit from entries hidden from its input,
kept in checkpoints, refused (clearly) by a checkpoint saved without them."""

import json

import numpy as np
import pytest

from stimpute_core.data.contract import TARGET
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models import is_probabilistic
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.st_transformer import intervals
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.models.st_transformer.training import validation_mask

LEVELS = (0.05, 0.5, 0.95)


@pytest.fixture(scope="module")
def small():
    ds = make_scenario(ScenarioConfig(seed=3, start="2019-01-01", end="2019-12-31"))
    return ds.isel(y=slice(0, 10), x=slice(0, 9))


@pytest.fixture(scope="module")
def fitted(small):
    return STTransformerImputer(profile="tiny", prior="regression", prior_folds=2, seed=0).fit(
        small
    )


def test_fit_calibrates_on_entries_hidden_from_the_input(small, monkeypatch):
    seen = []
    real = intervals.calibrate

    def spy(model, known, values, val_mask):
        seen.append((np.isfinite(known[TARGET].values), val_mask.copy()))
        return real(model, known, values, val_mask)

    monkeypatch.setattr("stimpute_core.models.st_transformer.model.calibrate", spy)
    model = STTransformerImputer(profile="tiny", prior=None, seed=1).fit(small)
    (visible, val), = seen  # fmt: skip
    observed = np.isfinite(small[TARGET].values)
    fraction = model.training_["val_fraction"]
    assert np.array_equal(val, validation_mask(observed, "time_slice", fraction, seed=8))
    assert val.any() and not (visible & val).any()  # the calibration entries were hidden
    assert np.array_equal(visible, observed & ~val)  # and nothing else was
    assert model.calibration_.counts[-1] == int(val.sum())


def test_quantiles_bracket_the_field_and_keep_observations(small, fitted):
    assert is_probabilistic(fitted)
    out = fitted.impute_distribution(small, LEVELS)
    q = out[QUANTILE_NAME].values
    assert out[QUANTILE_NAME].dims == ("quantile", "time", "y", "x")
    assert (np.diff(q, axis=0) >= 0).all()
    assert np.array_equal(out["soil_moisture_imputed"].values, fitted.impute(small).values)
    obs = np.isfinite(small[TARGET].values)
    assert (q[:, obs] == small[TARGET].values[obs].astype(np.float32)).all()
    assert (q[2] - q[0])[~obs].mean() > 0.005  # a real interval where nothing is seen


def test_calibration_survives_a_checkpoint(small, fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = STTransformerImputer.load(tmp_path / "m")
    a = fitted.impute_distribution(small, LEVELS)[QUANTILE_NAME].values
    b = loaded.impute_distribution(small, LEVELS)[QUANTILE_NAME].values
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_checkpoint_without_calibration_gives_no_quantiles(small, fitted, tmp_path):
    fitted.save(tmp_path / "old")
    cfg = tmp_path / "old" / "config.json"
    meta = json.loads(cfg.read_text())
    del meta["calibration"]  # as saved before intervals existed
    cfg.write_text(json.dumps(meta))
    loaded = STTransformerImputer.load(tmp_path / "old")
    assert not is_probabilistic(loaded)
    assert loaded.impute(small).shape == small[TARGET].shape
    with pytest.raises(ValueError, match=r"without a calibration.*stimpute train"):
        loaded.impute_distribution(small)


def test_edited_calibration_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "bad")
    cfg = tmp_path / "bad" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["calibration"]["table"][-1] = list(reversed(meta["calibration"]["table"][-1]))
    cfg.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"calibration\.table.*decreasing"):
        STTransformerImputer.load(tmp_path / "bad")


def test_a_model_trained_before_calibrations_gets_the_one_fit_would_have_stored(small, fitted):
    again = intervals.calibrate_trained(fitted, small)
    np.testing.assert_array_equal(again.counts, fitted.calibration_.counts)
    np.testing.assert_allclose(again.table, fitted.calibration_.table, atol=1e-7)
    # The prior's full reference (refitted with the validation entries) is put back.
    before = fitted.predict_cube(small)
    intervals.calibrate_trained(fitted, small)
    np.testing.assert_array_equal(fitted.predict_cube(small), before)
