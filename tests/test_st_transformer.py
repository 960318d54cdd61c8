"""The ST-Transformer: network shapes, masking rules, stitching, training control, checkpoints."""

import itertools
import threading

import numpy as np
import pytest
import torch

from stimpute_core import masks, metrics
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models import MODEL_NAMES, make_imputer
from stimpute_core.models.baselines import MeanImputer
from stimpute_core.models.st_transformer import training
from stimpute_core.models.st_transformer.attention import spatial_on_grid, temporal_on_days
from stimpute_core.models.st_transformer.core import (
    Attention,
    STTransformer,
    STTransformerConfig,
    WindowAttention,
)
from stimpute_core.models.st_transformer.data import (
    IncompatibleDataError,
    Normalizer,
    encode,
)
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.models.st_transformer.training import (
    SampleSet,
    TrainingSettings,
    hide_entries,
    train_network,
)
from stimpute_core.models.windows import window_starts


@pytest.fixture(scope="module")
def small():
    """Two years on a 13 x 15 corner of the scenario: odd sizes, two patches each way."""
    ds = make_scenario(ScenarioConfig(seed=2, start="2019-01-01", end="2020-12-31"))
    return ds.isel(y=slice(0, 13), x=slice(0, 15))


@pytest.fixture(scope="module")
def trained(small):
    model = STTransformerImputer(profile="tiny", mask_kind="point", seed=0)
    return model.fit(small)


def _inputs(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = cfg.patch * cfg.patch
    y = torch.randn(b, cfg.window, n, generator=g)
    visible = torch.rand(b, cfg.window, n, generator=g) < 0.1
    u = torch.randn(b, cfg.window, n, cfg.n_covariates, generator=g) if cfg.n_covariates else None
    return y, visible, u


@pytest.mark.parametrize("spatial", ["swin", "full", "none"])
@pytest.mark.parametrize("readout", ["concat", "deep"])
def test_network_shapes(spatial, readout):
    cfg = STTransformerConfig(n_covariates=3, hidden=16, n_layers=2, spatial=spatial, readout=readout, window=24)  # fmt: skip
    net = STTransformer(cfg)
    pred, aux = net(*_inputs(cfg))
    assert pred.shape == (2, 24, 144)
    assert len(aux) == (1 if readout == "deep" else 0)


def test_no_temporal_and_no_covariates_variants():
    cfg = STTransformerConfig(n_covariates=0, hidden=16, n_layers=1, temporal=False, window=24)
    pred, _ = STTransformer(cfg)(*_inputs(cfg))
    assert pred.shape == (2, 24, 144)


@pytest.mark.parametrize("day_pool", [False, True])
def test_hidden_values_never_reach_the_network(day_pool):
    """Changing a value that is not visible leaves every output unchanged."""
    cfg = STTransformerConfig(n_covariates=2, hidden=16, n_layers=1, window=24, day_pool=day_pool)
    net = STTransformer(cfg).eval()
    y, visible, u = _inputs(cfg)
    with torch.no_grad():
        a, _ = net(y, visible, u)
        y2 = torch.where(visible, y, y + 100.0)
        b, _ = net(y2, visible, u)
    torch.testing.assert_close(a, b)


def test_swin_windows_and_shift_mask():
    shift0 = WindowAttention(8, 1, patch=12, window=4, shift=0, dropout=0.0)
    shift2 = WindowAttention(8, 1, patch=12, window=4, shift=2, dropout=0.0)
    cells = lambda rows, cols: sorted(r * 12 + c for r in rows for c in cols)  # noqa: E731
    assert sorted(shift0.window_of(0).tolist()) == cells(range(4), range(4))
    assert sorted(shift2.window_of(2 * 12 + 2).tolist()) == cells(range(2, 6), range(2, 6))
    # The cyclic shift wraps: cell (0, 0) shares a window with the far corner...
    assert sorted(shift2.window_of(0).tolist()) == cells([10, 11, 0, 1], [10, 11, 0, 1])
    # ...but the shift mask keeps cells that were not neighbours from attending to each other.
    shift2.attn.capture = True
    shift2(torch.randn(1, 144, 8))
    pos = int(shift2.inverse[0])
    weights = shift2.attn.weights[pos // 16, 0, pos % 16]  # (16,) over that window
    members = shift2.order[pos // 16 * 16 : pos // 16 * 16 + 16].tolist()
    for cell, w in zip(members, weights.tolist(), strict=True):
        near = cell // 12 in (0, 1) and cell % 12 in (0, 1)
        assert (w > 1e-6) == near


def test_hide_entries_rules():
    rng = np.random.default_rng(0)
    obs = rng.random((72, 144)) < 0.1
    days = hide_entries(obs, "time_slice", 0.5, rng)
    assert not (days & ~obs).any()
    touched = days.any(axis=1)
    assert (days[touched] == obs[touched]).all()  # whole days
    assert touched.sum() == round(0.5 * obs.any(axis=1).sum())
    points = hide_entries(obs, "point", 0.2, rng)
    assert not (points & ~obs).any() and points.sum() == round(0.2 * obs.sum())


def test_validation_entries_never_reach_a_training_input():
    """Validation entries carry a sentinel; the network must never see it as visible."""
    rng = np.random.default_rng(1)
    y = np.where(rng.random((120, 12, 12)) < 0.2, rng.normal(size=(120, 12, 12)), np.nan)
    y = y.astype(np.float32)
    val = masks.point_mask(np.isfinite(y), 0.2, seed=3)
    y[val] = 1e6
    u = np.zeros((120, 12, 12, 0), np.float32)
    cfg = STTransformerConfig(n_covariates=0, hidden=8, n_layers=1, window=24)
    net = STTransformer(cfg)
    seen = []
    original = net.forward

    def spy(yb, visible, ub=None):
        if net.training:
            seen.append(bool((yb[visible] > 1e5).any()))
        return original(yb, visible, ub)

    net.forward = spy
    settings = TrainingSettings(
        epochs=2, batch_size=4, batches_per_epoch=3, stride=12, mask_kind="point"
    )
    history, _ = train_network(net, SampleSet(y, u, 24, 12, 12), val, settings, y_std=1.0)
    assert seen and not any(seen)
    # ...and validation scores exactly those entries: predictions are O(1), targets 1e6.
    assert history[0]["val_mae"] == pytest.approx(1e6, rel=1e-3)


def test_time_budget_ends_training_and_decays_the_learning_rate(monkeypatch):
    """``max_minutes`` stops training after the epoch in which it runs out, whatever ``epochs``
    says, and the learning rate follows the budget (it has decayed when the time is up)."""
    rng = np.random.default_rng(2)
    y = np.where(rng.random((96, 12, 12)) < 0.3, rng.normal(size=(96, 12, 12)), np.nan)
    y = y.astype(np.float32)
    val = masks.point_mask(np.isfinite(y), 0.2, seed=3)
    u = np.zeros((96, 12, 12, 0), np.float32)
    cfg = STTransformerConfig(n_covariates=0, hidden=8, n_layers=1, window=24)
    clock = [0.0]  # minutes; each training step takes one "minute"
    monkeypatch.setattr(training.time, "perf_counter", lambda: 60 * clock[0])
    lrs = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        clock[0] += 1.0
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    settings = TrainingSettings(
        epochs=1000, batch_size=2, batches_per_epoch=4, stride=12, max_minutes=6.0,
        lr=1e-3, lr_min=1e-5, patience=1000,
    )  # fmt: skip
    history, cancelled = train_network(
        STTransformer(cfg), SampleSet(y, u, 24, 12, 12), val, settings, y_std=1.0
    )
    assert not cancelled
    # Epoch 0 (the starting weights), then two epochs of four steps: the 6-minute budget runs
    # out during the second, which ends at once and is validated.
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert len(lrs) == 7
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] < 0.1 * lrs[0]
    assert all(a >= b for a, b in itertools.pairwise(lrs))


def test_window_starts_cover_every_day():
    assert window_starts(50, 72, 12) == [0]
    starts = window_starts(200, 72, 12)
    assert starts[0] == 0 and starts[-1] == 200 - 72
    covered = np.zeros(200, bool)
    for s in starts:
        covered[s : s + 72] = True
    assert covered.all()


def test_stitching_averages_overlaps_on_odd_grids(small):
    """A network predicting its window's start day shows exactly how windows are averaged."""
    model = STTransformerImputer(
        profile="tiny",
        impute_stride=24,
        prior=None,
        derived_inputs=False,
        cell_context=False,
        day_pool=False,
    )
    norm = Normalizer.fit(small)
    cfg = STTransformerConfig(n_covariates=norm.n_covariates, hidden=8, n_layers=1)
    model.net_, model.normalizer_ = STTransformer(cfg), norm
    starts = window_starts(small.sizes["time"], 72, 24)
    # Samples come window by window, each over the 2 x 2 patches a 13 x 15 grid pads to.
    order = [t0 for t0 in starts for _ in range(4)]
    calls = []

    def fake(y, visible, u=None):
        first = sum(calls)
        calls.append(y.shape[0])
        t0 = torch.tensor(order[first : first + y.shape[0]], dtype=torch.float32)
        return t0[:, None, None].expand(y.shape).clone(), []

    model.net_.forward = fake
    cube = model.predict_cube(small)
    assert cube.shape == small.soil_moisture.shape
    assert sum(calls) == len(order)
    # Every day gets the mean of the start days of the windows that cover it.
    total, count = np.zeros(small.sizes["time"]), np.zeros(small.sizes["time"])
    for t0 in starts:
        total[t0 : t0 + 72] += t0
        count[t0 : t0 + 72] += 1
    expected = norm.y_mean + norm.y_std * (total / count)
    np.testing.assert_allclose(
        cube, np.broadcast_to(expected[:, None, None], cube.shape), rtol=1e-5
    )
    assert len(set(np.round(expected, 6))) > len(starts)  # overlaps really are averaged


def test_fit_impute_contract_and_passthrough(small, trained):
    out = trained.impute(small)
    assert out.shape == small.soil_moisture.shape and out.dims == ("time", "y", "x")
    assert not np.isnan(out.values).any()
    obs = np.isfinite(small.soil_moisture.values)
    np.testing.assert_array_equal(out.values[obs], small.soil_moisture.values[obs])
    assert out.attrs["model"] == "st-transformer" and "network" in out.attrs["model_settings"]
    assert trained.history_ and all(np.isfinite(h["val_mae"]) for h in trained.history_)


def test_progress_callbacks_and_cancel(small):
    events, cancel = [], threading.Event()

    def callback(p):
        events.append(p)
        if p.phase == "train" and p.step == 2:
            cancel.set()

    model = STTransformerImputer(profile="tiny", epochs=3, seed=1)
    model.fit(small, callbacks=[callback], cancel=cancel)
    # Epoch 0 (the starting weights, scored before training) and the cancelled first epoch.
    assert model.cancelled_ and [h["epoch"] for h in model.history_] == [0, 1]
    train_steps = [e for e in events if e.phase == "train"]
    assert len(train_steps) == 2  # stopped right after the step that asked for it
    assert train_steps[0].eta_s is not None and train_steps[0].train_loss is not None
    assert events[-1].phase == "done" and events[-1].best_val_mae is not None
    assert all(0.0 <= e.fraction <= 1.0 for e in events) and events[-1].fraction == 1.0
    model.impute(small)  # the best weights so far are usable


def test_checkpoint_round_trip(tmp_path, small, trained):
    path = trained.save(tmp_path / "model", command="stimpute train ...")
    names = sorted(p.name for p in path.iterdir())
    assert names == ["config.json", "model.safetensors", "prior.skops"]
    loaded = STTransformerImputer.load(path)
    np.testing.assert_allclose(loaded.impute(small).values, trained.impute(small).values)
    assert loaded.get_params() == trained.get_params()
    with pytest.raises(ValueError, match="holds a checkpoint already: overwrite=True"):
        trained.save(path)
    trained.save(path, overwrite=True)  # overwriting keeps a complete checkpoint
    assert STTransformerImputer.load(path).normalizer_.dynamic == trained.normalizer_.dynamic


def test_checkpoint_refuses_incompatible_data(small, trained, tmp_path):
    with pytest.raises(IncompatibleDataError, match=r"covariates.*'prcp'"):
        trained.impute(small.drop_vars("prcp"))
    other_units = small.copy()
    other_units["tmax"] = other_units["tmax"].assign_attrs(units="K")
    with pytest.raises(IncompatibleDataError, match="'tmax' has units 'K'"):
        trained.impute(other_units)
    coarse = small.assign_coords(x=small.x.values[0] + 9008.0 * np.arange(small.sizes["x"]))
    with pytest.raises(IncompatibleDataError, match="grid spacing in x"):
        trained.impute(coarse)
    with pytest.raises(FileNotFoundError, match="not an ST-Transformer checkpoint"):
        STTransformerImputer.load(tmp_path)
    path = trained.save(tmp_path / "m")
    (path / "model.safetensors").write_bytes(b"\x80\x04 pickle, not safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        STTransformerImputer.load(path)


def test_attention_maps_sum_to_one(small, trained):
    att = trained.attention(small, 5, 7, "2019-06-15")
    assert len(att["days"]) == 72 and att["query"]["row"] == 5
    for layer in att["layers"]:
        np.testing.assert_allclose(layer["temporal"].sum(-1), 1.0, rtol=1e-5)
        assert len(layer["spatial"]) == 2  # two shifted-window blocks
        for grid in layer["spatial"]:
            assert grid.shape[1:] == (12, 12)
            np.testing.assert_allclose(grid.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="not in the Dataset"):
        trained.attention(small, 0, 0, "2030-01-01")


def test_attention_on_the_grid_drops_the_padding(small, trained):
    """A patch over the grid's edge (13 x 15 cells, patches of 12) keeps only the real cells."""
    att = trained.attention(small, 12, 13, "2019-06-15")
    assert att["patch_origin"] == (12, 12)
    on_grid = spatial_on_grid(small, att, head=0)
    assert on_grid.dims == ("y", "x") and on_grid.shape == (1, 3)
    np.testing.assert_array_equal(on_grid["x"], small["x"][12:15])
    np.testing.assert_array_equal(on_grid["lon"], small["lon"][12:13, 12:15])
    np.testing.assert_array_equal(on_grid.values, att["layers"][-1]["spatial"][-1][0][:1, :3])
    days = temporal_on_days(small, att)
    assert list(days.columns) == ["attention", "observed"] and len(days) == 72
    observed = np.isfinite(small["soil_moisture"][:, 12, 13].to_series().reindex(att["days"]))
    np.testing.assert_array_equal(days["observed"].values, observed.values)


def test_attention_encodes_a_selection_once_and_follows_its_content(small, trained, monkeypatch):
    calls = []
    encode = trained._encode
    monkeypatch.setattr(trained, "_encoded", None)  # forget what earlier tests encoded
    monkeypatch.setattr(trained, "_encode", lambda ds: calls.append(1) or encode(ds))
    first = trained.attention(small, 5, 7, "2019-06-15")
    trained.attention(small.copy(deep=True), 2, 3, "2019-07-01")  # same data, new object
    assert len(calls) == 1
    changed = small.copy(deep=True)
    changed["soil_moisture"].values[np.isfinite(changed["soil_moisture"].values)] += 0.05
    again = trained.attention(changed, 5, 7, "2019-06-15")
    assert len(calls) == 2
    assert not np.allclose(again["layers"][0]["temporal"], first["layers"][0]["temporal"])


def test_attention_weights_are_probabilities():
    cfg = STTransformerConfig(n_covariates=0, hidden=8, n_layers=1, spatial="full", window=24)
    net = STTransformer(cfg)
    net.set_capture(True)
    net(*_inputs(cfg))
    weights = [m.weights for m in net.modules() if isinstance(m, Attention)]
    assert len(weights) == 2
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))


def test_short_training_beats_the_per_cell_mean():
    ds = make_scenario(ScenarioConfig(seed=4, start="2018-01-01", end="2019-12-31"))
    ds = ds.isel(y=slice(0, 12), x=slice(0, 12))
    hidden = masks.holdout_mask(ds, "point", 0.2, seed=5)
    inputs = masks.apply_holdout(ds, hidden)
    model = STTransformerImputer(profile="tiny", mask_kind="point", epochs=8, seed=0).fit(inputs)
    truth = ds.soil_moisture_true.values
    st = metrics.mae(model.impute(inputs).values, truth, hidden)
    mean = metrics.mae(MeanImputer().fit(inputs).impute(inputs).values, truth, hidden)
    assert st < mean


def test_registry_and_encoding(small):
    assert {"st-transformer", "st-transformer-msa", "st-transformer-nocov"} <= set(MODEL_NAMES)
    model = make_imputer("st-transformer-nocov", profile="tiny", mask_kind="point", seed=3)
    assert model.use_covariates is False and model.seed == 3
    assert make_imputer("st-transformer-msa").spatial == "full"
    norm = Normalizer.fit(small)
    y, u = encode(small, norm, 12)
    assert y.shape == (small.sizes["time"], 24, 24)  # padded to whole patches
    assert np.isnan(y[:, 13:, :]).all() and np.isnan(y[:, :, 15:]).all()
    n_classes = len(np.unique(small.land_cover.values))
    assert u.shape[-1] == 2 * 6 + 7 + n_classes  # value + flag per dynamic, static, one-hot


def test_training_is_repeatable_on_cpu(small):
    a = STTransformerImputer(profile="tiny", epochs=1, seed=5).fit(small)
    b = STTransformerImputer(profile="tiny", epochs=1, seed=5).fit(small)
    for (name, wa), wb in zip(
        a.net_.state_dict().items(), b.net_.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(wa, wb, msg=name)
    assert a.history_[0]["val_mae"] == b.history_[0]["val_mae"]


def test_shipped_checkpoint_fits_the_builtin_scenario():
    from stimpute_core.models.st_transformer.model import pretrained_path

    model = STTransformerImputer.load(pretrained_path())
    assert model.profile == "quick" and model.net_.cfg.spatial == "swin"
    ds = make_scenario(ScenarioConfig(start="2021-01-01", end="2021-06-30"))
    out = model.impute(ds)
    assert not np.isnan(out.values).any()
    gaps = ~np.isfinite(ds.soil_moisture.values)
    mean = MeanImputer().fit(ds).impute(ds).values
    truth = ds.soil_moisture_true.values
    assert metrics.mae(out.values, truth, gaps) < metrics.mae(mean, truth, gaps)


def test_imputation_precision(small, trained):
    """bfloat16 imputation is applied (the values move) and stays within 1e-3 m³/m³ of float32;
    an unknown precision is refused."""
    from stimpute_core.models.st_transformer.training import autocast_dtype, bf16_native

    cpu = torch.device("cpu")
    assert autocast_dtype("float32", cpu) is None
    assert autocast_dtype("bfloat16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cpu) is None  # not faster there, measured
    assert isinstance(bf16_native(cpu), bool)
    with pytest.raises(ValueError, match="precision='half'"):
        autocast_dtype("half", cpu)
    with pytest.raises(ValueError, match="impute_precision='fp16'"):
        STTransformerImputer(impute_precision="fp16").fit(small)
    before = trained.impute_precision
    try:
        trained.impute_precision = "float32"
        full = trained.predict_cube(small)
        trained.impute_precision = "bfloat16"
        half = trained.predict_cube(small)
    finally:
        trained.impute_precision = before
    assert not np.array_equal(full, half)
    np.testing.assert_allclose(half, full, atol=1e-3)


def test_st_options_reach_the_model_or_are_refused():
    model = make_imputer("st-transformer", profile="long", patience=3, impute_precision="float32")
    net, settings = model._configs(4)
    assert settings.patience == 3 and settings.max_minutes == 45.0 and net.hidden == 64
    assert model.impute_precision == "float32"
    with pytest.raises(ValueError, match=r"unknown option.*patiense"):
        make_imputer("st-transformer", patiense=3)


def test_the_cli_and_the_app_offer_every_profile():
    from stimpute_core.models import PROFILE_NAMES
    from stimpute_core.models.st_transformer.model import PROFILES

    assert set(PROFILE_NAMES) == set(PROFILES)
    from app.workbench.state import Workbench

    assert list(Workbench.param.profile.objects) == list(PROFILE_NAMES)
