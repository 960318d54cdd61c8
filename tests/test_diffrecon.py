"""DiffRecon (two-stage conditional diffusion): tiny runs of its mechanics, checkpoints, refusals
and the proof that held-out entries and the truth never reach its inputs or statistics."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.grid import GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout
from stimpute_core.models import MODEL_NAMES, SLOW_ON_CPU, make_imputer
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.diffrecon import model as dr_model
from stimpute_core.models.diffrecon.model import DiffReconImputer
from stimpute_core.models.st_transformer.training import validation_mask
from stimpute_core.validation import evaluation_mask

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


@functools.cache
def small():
    ds = make_scenario(
        ScenarioConfig(
            seed=5, start="2019-03-01", end="2019-06-08",
            box=GridBox(row0=3400, col0=7600, nrows=9, ncols=8), n_stations=3,
        )
    )  # fmt: skip
    return apply_holdout(ds, evaluation_mask(ds).values)


def tiny(**kw) -> DiffReconImputer:
    return DiffReconImputer(**{"profile": "tiny", "seed": 0, "epochs": 1, **kw})


@functools.cache
def fitted() -> DiffReconImputer:
    return tiny().fit(small())


def test_registered():
    assert "diffrecon" in MODEL_NAMES and "diffrecon" in SLOW_ON_CPU
    model = make_imputer("diffrecon", seed=0, profile="tiny", epochs=1, impute_stride=3)
    assert isinstance(model, DiffReconImputer) and model.probabilistic


def test_samples_quantiles_and_observations():
    ds, model = small(), fitted()
    out = model.impute_distribution(ds, LEVELS)
    q = out[QUANTILE_NAME].values
    assert q.shape == (len(LEVELS), *ds[TARGET].shape) and np.isfinite(q).all()
    assert (np.diff(q, axis=0) >= 0).all()
    obs = np.isfinite(ds[TARGET].values)
    assert (q[:, obs] == ds[TARGET].values[obs].astype(np.float32)).all()
    raw = model.impute_distribution(ds, LEVELS, calibrated=False)[QUANTILE_NAME].values
    assert (np.diff(raw, axis=0) >= 0).all() and (raw[:, obs] == q[:, obs]).all()
    assert np.array_equal(out["soil_moisture_imputed"].values, model.impute(ds).values)
    assert model.samples(ds).shape == (4, *ds[TARGET].shape)


def test_same_seed_repeats_other_seed_differs():
    ds = small()
    a = fitted().impute_distribution(ds, LEVELS)[QUANTILE_NAME].values
    b = tiny().fit(ds).impute_distribution(ds, LEVELS)[QUANTILE_NAME].values
    c = tiny(seed=1).fit(ds).impute_distribution(ds, LEVELS)[QUANTILE_NAME].values
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_round_trip(tmp_path):
    ds, model = small(), fitted()
    path = model.save(tmp_path / "ckpt")
    loaded = DiffReconImputer.load(path, device="cpu")
    a = model.impute_distribution(ds, LEVELS)[QUANTILE_NAME].values
    assert np.array_equal(a, loaded.impute_distribution(ds, LEVELS)[QUANTILE_NAME].values)
    with pytest.raises(ValueError, match="holds a checkpoint already"):
        model.save(path)
    model.save(path, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a diffrecon checkpoint"):
        model.save(tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def _edit(path, change):
    meta = json.loads((path / "config.json").read_text())
    change(meta)
    (path / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format="other/1"), "key 'format'"),
        (lambda m: m["imputer"].update(profile="huge"), "key 'imputer': profile='huge'"),
        (lambda m: m["scales"].update(y_std=0.0), r"key 'scales'\.y_std"),
        (lambda m: m["fine_network"].update(hidden=10_000), "key 'fine_network': hidden"),
        (lambda m: m["fine_network"].update(hidden=16), "tensor fine"),
        (lambda m: m["calibration"].update(table=[[1]]), "key 'calibration'.table"),
        (lambda m: m["grid"].update(x=["a"]), r"key 'grid\.x'"),
        (lambda m: m["scales"].update(y_mean=0.3), "not the one saved"),
        (lambda m: m.pop("history"), "missing key"),
    ],
)
def test_bad_checkpoints_refused(tmp_path, change, message):
    path = fitted().save(tmp_path / "ckpt")
    _edit(path, change)
    with pytest.raises(ValueError, match=message) as err:
        DiffReconImputer.load(path)
    assert "config.json" in str(err.value) or "model.safetensors" in str(err.value)


def test_broken_files_refused(tmp_path):
    path = fitted().save(tmp_path / "ckpt")
    (path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match=r"model\.safetensors"):
        DiffReconImputer.load(path)
    (path / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"config\.json: not a readable JSON"):
        DiffReconImputer.load(path)
    with pytest.raises(ValueError, match="not a diffrecon checkpoint"):
        DiffReconImputer.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"profile": "huge"}, "profile='huge'"),
        ({"mask_kind": "block"}, "mask_kind='block'"),
        ({"n_samples": 1}, "n_samples=1"),
        ({"sampling_steps": 0}, "sampling_steps must be a positive integer"),
        ({"sampling_steps": 80}, "sampling_steps=80"),
        ({"epochs": 1.5}, "epochs must be"),
        ({"max_minutes": -1}, "max_minutes=-1"),
        ({"seed": -2}, "seed=-2"),
        ({"device": "tpu"}, "device 'tpu'"),
    ],
)
def test_bad_settings_refused(setting, message):
    with pytest.raises(ValueError, match=message):
        tiny(**setting).fit(small())


def test_needs_the_coarse_product():
    with pytest.raises(ValueError, match="sm_36km"):
        tiny().fit(small().drop_vars("sm_36km"))


def test_validation_entries_and_truth_never_reach_inputs_or_statistics(monkeypatch):
    """Changing the values of the validation entries (hidden from training, used only to score
    epochs and calibrate) and the truth leaves every input, statistic and weight as it was."""
    ds = small()
    observed = np.isfinite(ds[TARGET].values)
    val = validation_mask(observed, "time_slice", 0.1, seed=7)  # as fit draws it (seed + 7)
    other = ds.copy(deep=True)
    other[TARGET].values[val] = 0.77
    other[TRUTH].values[:] = 0.5
    seen = []
    original = dr_model.train_fine

    def spy(net, a, val_mask, val_values, inputs, *args):
        seen.append((a.copy(), inputs, val_mask.copy()))
        return original(net, a, val_mask, val_values, inputs, *args)

    monkeypatch.setattr(dr_model, "train_fine", spy)
    fits = [tiny().fit(d) for d in (ds, other)]
    (a0, in0, v0), (a1, in1, v1) = seen
    assert np.array_equal(v0, val) and np.array_equal(v1, val)
    assert np.isnan(a0[val]).all()
    np.testing.assert_array_equal(a0, a1)
    for name in ("u", "c_med", "c_dep", "c_seen"):
        np.testing.assert_array_equal(getattr(in0, name), getattr(in1, name))
    assert fits[0].normalizer_.to_dict() == fits[1].normalizer_.to_dict()
    assert fits[0].scales_ == fits[1].scales_
    for net in ("coarse_net_", "fine_net_"):
        s0, s1 = (getattr(f, net).state_dict() for f in fits)
        assert all(torch.equal(s0[k], s1[k]) for k in s0)
    # Only the validation scores see them (as they should).
    assert fits[0].history_["validation_mae"] != fits[1].history_["validation_mae"]
