"""The workbench state without a browser: selection, jobs, imputation, training, checkpoints, exports.

Every test runs on a small scenario (16 x 16 cells, 2019-07..2020-12) with the models, data and
cache folders pointed at a temporary folder, so nothing touches the user's cache.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import TARGET, write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.selection import data_extent, station_cells
from stimpute_core.models.st_transformer.data import IncompatibleDataError
from stimpute_core.models.st_transformer.model import (
    DEFAULT_PRETRAINED,
    STTransformerImputer,
    pretrained_path,
)
from stimpute_core.validation import mask_for
from workbench import shared, state
from workbench.shared import SHIPPED, checkpoint_path, list_checkpoints, models_dir
from workbench.state import EVALUATION_HOLDOUT, ST, Workbench

LABEL = "test scenario"
SHIPPED_LABEL = f"{SHIPPED}{DEFAULT_PRETRAINED}"
NW = (slice(0, 8), slice(0, 8))  # rows, columns of the north-west 8 x 8 corner
SE = (slice(8, 16), slice(8, 16))


@pytest.fixture(scope="module", autouse=True)
def _dirs(tmp_path_factory):
    """Models, data and cache folders of this module, never the user's."""
    root = tmp_path_factory.mktemp("workbench")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MODELS", "DATA", "CACHE"):
            mp.setenv(f"STIMPUTE_{name}_DIR", str(root / name.lower()))
        mp.delenv("STIMPUTE_DATA", raising=False)
        yield root


@pytest.fixture(autouse=True)
def _fresh_shared(monkeypatch):
    """Each test starts without the imputations other tests shared through the server cache."""
    monkeypatch.setattr(shared, "_SHARED", OrderedDict())


@pytest.fixture(scope="module")
def scenario() -> xr.Dataset:
    box = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=16, ncols=16)
    cfg = ScenarioConfig(
        start="2019-07-01", end="2020-12-31", box=box, n_stations=12, pass_availability=1.0
    )
    return make_scenario(cfg)


def box(ds: xr.Dataset, cells=NW, margin: float = 0.002) -> tuple[float, float, float, float]:
    """A W, S, E, N box around the centres of ``cells`` with a margin (less than half a cell)."""
    w, s, e, n = data_extent(ds.isel(y=cells[0], x=cells[1]))
    return w - margin, s - margin, e + margin, n + margin


def notes(wb: Workbench, level: str) -> list[str]:
    return [text for lvl, text in wb.notifications if lvl == level]


@pytest.fixture
def wb(scenario) -> Workbench:
    return Workbench(scenario, label=LABEL)


@pytest.fixture
def gate(monkeypatch):
    """Baseline imputations wait for ``gate.set()``: a job that runs until the test lets it go."""
    event = threading.Event()
    real = state.make_imputer

    def held(method):
        event.wait(60)
        return real(method)

    monkeypatch.setattr(state, "make_imputer", held)
    yield event
    event.set()


@pytest.fixture(scope="module")
def trained(scenario, _dirs):
    """A tiny ST-Transformer trained by the workbench on the NW corner, and what ``fit`` saw."""
    seen: list[xr.Dataset] = []
    fit = STTransformerImputer.fit

    def spy(self, ds, **kw):
        seen.append(ds)
        return fit(self, ds, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(STTransformerImputer, "fit", spy)
        wb = Workbench(scenario, label=LABEL)
        wb.set_region(*box(scenario))
        wb.profile, wb.max_minutes, wb.compare = "tiny", 0.1, ["mean"]
        job = wb.train()
        wb.wait()
    return SimpleNamespace(wb=wb, job=job, seen=seen)


# --------------------------------------------------------------------------- construction


def test_construction_defaults(wb, scenario):
    assert wb.window == (dt.datetime(2020, 1, 1), dt.datetime(2020, 12, 31))
    assert wb.region == pytest.approx(data_extent(scenario))
    assert wb.source == LABEL
    sel = wb.selection()
    assert (sel.sizes["y"], sel.sizes["x"]) == (16, 16)
    assert sel.sizes["time"] == 366
    assert dt.date(2020, 1, 1) <= wb.day <= dt.date(2020, 12, 31)
    assert np.isfinite(sel[TARGET].sel(time=pd.Timestamp(wb.day)).values).any()
    stations = [str(s) for s in sel["station"].values]
    assert stations and wb.station == stations[0]
    assert wb.param.station.objects == stations
    rows, cols = station_cells(sel)
    assert wb.cell == (rows[0], cols[0])


@pytest.mark.parametrize(
    ("start", "end", "window_start"),
    [
        ("2020-01-01", "2020-04-30", "2020-01-01"),  # a third of a year: all of it
        ("2019-07-01", "2020-03-31", "2019-07-01"),  # a short last year: the last 365 days
        ("2019-07-01", "2020-08-31", "2020-01-01"),  # the last calendar year
    ],
)
def test_default_window_is_the_last_year_or_all_data(scenario, start, end, window_start):
    wb = Workbench(scenario.sel(time=slice(start, end)), label=LABEL)
    assert wb.window == (pd.Timestamp(window_start), pd.Timestamp(end))


# --------------------------------------------------------------------------- selection


def test_set_region_snaps_to_cell_centres(wb, scenario):
    wb.set_region(*box(scenario))
    corner = scenario.isel(y=NW[0], x=NW[1])
    assert wb.region == pytest.approx(data_extent(corner), abs=1e-9)
    sel = wb.selection()
    assert (sel.sizes["y"], sel.sizes["x"]) == (8, 8)
    np.testing.assert_array_equal(sel["x"].values, corner["x"].values)
    stations = [str(s) for s in sel["station"].values]
    assert stations and set(stations) < {str(s) for s in scenario["station"].values}
    assert wb.param.station.objects == stations and wb.station == stations[0]
    assert 0 <= wb.cell[0] < 8 and 0 <= wb.cell[1] < 8
    wb.reset_region()
    assert wb.region == pytest.approx(data_extent(scenario))


def test_set_region_outside_the_data_names_the_extent(wb):
    before = wb.region
    with pytest.raises(ValueError, match="extent"):
        wb.set_region(-100.5, 10.0, -100.0, 10.5)
    assert wb.region == before


def test_region_or_window_without_observation_is_refused(scenario):
    ds = scenario.copy(deep=True)
    ds[TARGET][:, 0:8, 0:8] = np.nan  # the NW corner is never observed
    ds[TARGET].loc[dict(time=slice("2020-03-01", "2020-03-31"))] = np.nan  # nor anything in March
    wb = Workbench(ds, label=LABEL)
    before = (wb.region, wb.window, wb.day, wb.station, wb.cell, wb.selection_key())
    with pytest.raises(ValueError, match="no observation"):
        wb.set_region(*box(ds))
    with pytest.raises(ValueError, match="no observation"):
        wb.set_window("2020-03-01", "2020-03-31")
    assert (wb.region, wb.window, wb.day, wb.station, wb.cell, wb.selection_key()) == before


def test_set_window(wb):
    wb.set_window("2020-02-01", "2020-05-31")
    assert wb.window == (dt.datetime(2020, 2, 1), dt.datetime(2020, 5, 31))
    times = pd.DatetimeIndex(wb.selection()["time"].values)
    assert (times[0], times[-1]) == (pd.Timestamp("2020-02-01"), pd.Timestamp("2020-05-31"))
    assert dt.date(2020, 2, 1) <= wb.day <= dt.date(2020, 5, 31)
    for start, end in [("2020-05-31", "2020-02-01"), ("2015-01-01", "2015-12-31")]:
        with pytest.raises(ValueError):
            wb.set_window(start, end)
        assert wb.window == (dt.datetime(2020, 2, 1), dt.datetime(2020, 5, 31))


# --------------------------------------------------------------------------- imputation


def test_impute_with_baselines(wb):
    wb.method, wb.compare = "mean", ["idw"]
    version = wb.results_version
    job = wb.impute()
    wb.wait()
    assert job.status == "done" and not notes(wb, "error")
    assert wb.results_version > version
    runs = wb.runs()
    assert set(runs) == {"mean", "idw"}

    sel = wb.selection()
    obs = sel[TARGET].transpose("time", "y", "x").values
    observed = np.isfinite(obs)
    mask = mask_for(sel, wb.evaluation_mask())
    assert mask.any() and (observed & ~mask).any()
    for method, run in runs.items():
        full = run.full.transpose("time", "y", "x").values
        held = run.heldout.transpose("time", "y", "x").values
        assert np.isfinite(full).all(), method
        np.testing.assert_array_equal(full[observed], obs[observed])
        np.testing.assert_array_equal(held[observed & ~mask], obs[observed & ~mask])
        assert np.mean(held[mask] == obs[mask]) < 0.05, method  # never saw the held-out values

    scores = wb.scores()
    assert sorted(scores["model"]) == ["idw", "mean"]
    assert np.isfinite(scores["mae"]).all() and (scores["mae"] > 0).all()
    assert (scores["n"] == int(mask.sum())).all()
    held = runs["mean"].heldout.transpose("time", "y", "x").values
    expected = np.mean(np.abs(held[mask] - obs[mask]))
    assert scores.set_index("model").loc["mean", "mae"] == pytest.approx(expected)

    # Another selection has its own (no) results; going back finds the old ones intact.
    wb.set_region(*box(wb.ds, SE))
    assert wb.runs() == {} and wb.scores().empty
    wb.reset_region()
    assert wb.runs() == runs and wb.runs()["mean"] is runs["mean"]
    wb.set_window("2020-06-01", "2020-06-30")
    assert wb.runs() == {}
    wb.set_window("2020-01-01", "2020-12-31")
    assert wb.runs()["idw"] is runs["idw"]


def test_exports_and_tables_need_an_imputation(wb):
    with pytest.raises(ValueError, match="nothing imputed"):
        wb.export_netcdf()
    with pytest.raises(ValueError, match="nothing imputed"):
        wb.export_csv()
    assert wb.station_table().empty and wb.scores().empty
    with pytest.raises(ValueError, match="ST-Transformer"):
        wb.attention()


def test_only_one_job_at_a_time(wb, gate):
    wb.method, wb.compare = "mean", []
    job = wb.impute()
    assert wb.busy()
    with pytest.raises(RuntimeError, match="imputation job is running: wait for it or cancel it"):
        wb.impute()
    with pytest.raises(RuntimeError, match="imputation job is running"):
        wb.train()
    with pytest.raises(RuntimeError, match="imputation job is running"):
        wb.load_source("area.nc (contract)")
    assert wb.job is job
    gate.set()
    wb.wait()
    assert not wb.busy() and job.status == "done" and set(wb.runs()) == {"mean"}


def test_refused_training_keeps_the_model_history(wb, gate):
    wb.set_region(*box(wb.ds))
    wb.method, wb.compare = "mean", []
    wb.load_checkpoint(SHIPPED_LABEL)  # queues an imputation, held by the gate
    history = list(wb.history)
    assert history and wb.busy()
    with pytest.raises(RuntimeError, match="running"):
        wb.train()
    assert wb.history == history


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_training_hides_the_evaluation_holdout(trained, _dirs):
    wb, job = trained.wb, trained.job
    assert job.status == "done" and not notes(wb, "error")
    assert any("training finished" in text for text in notes(wb, "success"))
    assert wb.model is not None and not wb.model.cancelled_
    assert wb.model.training_["holdout"] == EVALUATION_HOLDOUT
    assert wb.model_note == ""
    name = wb.model_label
    assert name.startswith("session-") and wb.checkpoint == name
    assert name in list_checkpoints() and name in wb.param.checkpoint.objects
    saved = json.loads((models_dir() / name / "config.json").read_text())
    assert saved["training"]["holdout"] == EVALUATION_HOLDOUT
    assert models_dir() == _dirs / "models"  # the folder the server names, not the user's
    # The ST-Transformer imputed the selection right after training.
    assert wb.method == ST and set(wb.runs()) == {ST, "mean"}
    assert wb.run(ST).label == name

    # What the model was fitted on: the selection with every held-out entry hidden.
    (fitted,) = trained.seen
    sel = wb.selection()
    mask = mask_for(sel, wb.evaluation_mask())
    assert mask.any()
    obs = sel[TARGET].transpose("time", "y", "x").values
    seen = fitted[TARGET].transpose("time", "y", "x").values
    assert seen.shape == obs.shape
    assert np.isfinite(obs[mask]).all() and np.isnan(seen[mask]).all()
    np.testing.assert_array_equal(seen[~mask], obs[~mask])


@pytest.mark.slow
def test_tables_series_and_exports_after_imputation(trained):
    wb = trained.wb
    sel = wb.selection()
    runs = wb.runs()
    labels = {wb.method_label(m) for m in runs}
    assert labels == {f"{ST} ({wb.model_label})", "mean"}

    table = wb.station_table()
    assert set(table["model"]) == labels | {"satellite"}
    assert {str(s) for s in sel["station"].values} <= set(table["station"])

    series = wb.station_series()
    assert list(series.columns[:2]) == ["insitu", "satellite"]
    assert labels <= set(series.columns) and "truth" in series.columns
    assert len(series) == sel.sizes["time"]
    names = [str(s) for s in sel["station"].values]
    rows, cols = station_cells(sel)
    i = names.index(wb.station)
    full = runs[ST].full.transpose("time", "y", "x").values
    np.testing.assert_array_equal(series[wb.method_label(ST)].values, full[:, rows[i], cols[i]])

    cells, by_class = wb.land_cover()
    assert set(cells["model"]) == labels and set(by_class["model"]) == labels
    assert np.isfinite(cells["mae"]).all() and (cells["n"] > 0).all()

    raw = wb.export_netcdf().getvalue()
    with xr.open_dataset(io.BytesIO(raw), engine="h5netcdf") as handle:
        out = handle.load()
    assert {"soil_moisture_imputed_st_transformer", "soil_moisture_imputed_mean"} <= set(
        out.data_vars
    )
    assert (out.sizes["time"], out.sizes["y"], out.sizes["x"]) == (366, 8, 8)
    imputed = out["soil_moisture_imputed_st_transformer"]
    assert imputed.attrs["method"] == wb.method_label(ST)
    np.testing.assert_allclose(imputed.transpose("time", "y", "x").values, full, rtol=1e-6)

    frame = pd.read_csv(wb.export_csv())
    assert frame.columns[0] == "table"
    tables = {"held_out_scores", "stations", "land_cover"}
    if wb.probabilistic_runs():  # a model trained with calibration gives intervals
        tables.add("station_bands")
    assert set(frame["table"]) == tables
    scores = frame[frame["table"] == "held_out_scores"]
    assert set(scores["model"]) == labels


@pytest.mark.slow
def test_attention_weights_sum_to_one(trained):
    wb = trained.wb
    for att in (wb.attention(), wb.attention(5, 6, day="2020-07-15")):
        assert att["layers"]
        window = len(att["days"])
        for layer in att["layers"]:
            temporal = layer["temporal"]
            assert temporal.ndim == 2 and temporal.shape[1] == window
            np.testing.assert_allclose(temporal.sum(axis=-1), 1.0, atol=1e-5)
            assert layer["spatial"]
            for spatial in layer["spatial"]:
                assert spatial.ndim == 3 and (spatial >= 0).all()
                np.testing.assert_allclose(spatial.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert att["query"] == {"day": pd.Timestamp("2020-07-15"), "row": 5, "col": 6}
    first = wb.attention()
    assert first["query"]["day"] == pd.Timestamp(wb.day)
    assert (first["query"]["row"], first["query"]["col"]) == wb.cell


@pytest.mark.slow
def test_cancel_training(scenario):
    wb = Workbench(scenario, label=LABEL)
    wb.set_region(*box(scenario))
    wb.profile, wb.max_minutes, wb.compare = "tiny", 240, ["mean"]
    job = wb.train()
    wb.cancel()
    wb.wait()
    assert job.status == "cancelled" or (job.status == "done" and wb.model.cancelled_)
    assert job.snapshot()["error"] is None and not notes(wb, "error")
    assert wb.model is not None and wb.model.cancelled_
    assert any("cancelled" in text for text in notes(wb, "success"))
    # Still usable.
    wb.method, wb.compare = "mean", ["idw"]
    wb.impute()
    wb.wait()
    assert {"mean", "idw"} <= set(wb.runs())


@pytest.mark.slow
def test_close_cancels_the_running_job(scenario):
    wb = Workbench(scenario, label=LABEL)
    wb.set_region(*box(scenario))
    wb.profile, wb.max_minutes, wb.compare = "tiny", 240, []
    job = wb.train()
    wb.close()
    job.join(120)
    assert job.finished and job.status == "cancelled"
    assert job.snapshot()["error"] is None


# --------------------------------------------------------------------------- checkpoints


def test_load_checkpoint_refuses_other_covariates(scenario, tmp_path, monkeypatch):
    monkeypatch.setenv("STIMPUTE_DATA_DIR", str(tmp_path))
    no_vp = scenario.drop_vars("vp")

    fresh = Workbench(no_vp, label=LABEL)
    with pytest.raises(IncompatibleDataError, match="'vp'"):
        fresh.load_checkpoint(SHIPPED_LABEL)
    assert fresh.model is None and fresh.model_version == 0 and fresh.checkpoint is None

    # A session with a model whose data then lose a covariate keeps the model it had.
    write_netcdf(no_vp, tmp_path / "no-vp.nc")
    wb = Workbench(scenario, label=LABEL)
    wb.set_region(*box(scenario))
    wb.method, wb.compare = "mean", []
    wb.load_checkpoint(SHIPPED_LABEL)
    wb.wait()
    model, label, version = wb.model, wb.model_label, wb.model_version
    assert model is not None and label == SHIPPED_LABEL
    wb.load_source("no-vp.nc (contract)")
    wb.wait()
    assert "vp" not in wb.ds.data_vars
    with pytest.raises(IncompatibleDataError, match="'vp'"):
        wb.load_checkpoint(SHIPPED_LABEL)
    assert wb.model is model and wb.model_label == label and wb.model_version == version


def test_save_checkpoint_refuses_bad_names_and_no_model(wb):
    before = sorted(models_dir().iterdir()) if models_dir().is_dir() else []
    with pytest.raises(ValueError, match="no ST-Transformer"):
        wb.save_checkpoint("good-name")
    wb.set_region(*box(wb.ds))
    wb.method, wb.compare = "mean", []
    wb.load_checkpoint(SHIPPED_LABEL)
    wb.wait()
    bad = ["../x", "a/b", "", "  ", "..", ".hidden", "/tmp/x", "a\\b", "x" * 65, "a b", "\n"]
    for name in bad:
        with pytest.raises(ValueError, match="checkpoint name"):
            wb.save_checkpoint(name)
    after = sorted(models_dir().iterdir()) if models_dir().is_dir() else []
    assert after == before
    assert not (models_dir().parent / "x").exists()


def test_save_checkpoint_round_trips(wb, scenario):
    wb.set_region(*box(scenario))
    wb.method, wb.compare = "mean", []
    wb.load_checkpoint(SHIPPED_LABEL)
    wb.wait()
    path = wb.save_checkpoint("round-trip_1.0")
    assert path == models_dir() / "round-trip_1.0" and (path / "config.json").is_file()
    assert "round-trip_1.0" in list_checkpoints()
    assert "round-trip_1.0" in wb.param.checkpoint.objects
    wb.save_name = "by-param"
    assert wb.save_checkpoint() == models_dir() / "by-param"

    other = Workbench(scenario, label=LABEL)
    other.set_region(*box(scenario))
    other.method, other.compare = "mean", []
    other.load_checkpoint("round-trip_1.0")
    other.wait()
    assert other.model is not wb.model
    assert other.model.get_params() == wb.model.get_params()
    assert other.model.net_.cfg == wb.model.net_.cfg
    assert other.model.normalizer_.to_dict() == wb.model.normalizer_.to_dict()
    theirs, ours = other.model.net_.state_dict(), wb.model.net_.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(np.array_equal(theirs[k].numpy(), ours[k].numpy()) for k in ours)
    assert other.model_label == other.checkpoint == "round-trip_1.0"


@pytest.mark.parametrize("label", ["../../etc", "..", "no-such-model", "", "a/../b", "/etc"])
def test_checkpoint_path_refuses_labels_not_offered(label):
    with pytest.raises(ValueError, match="not one of those offered"):
        checkpoint_path(label)


def test_checkpoint_path_of_offered_labels():
    assert checkpoint_path(SHIPPED_LABEL) == pretrained_path(DEFAULT_PRETRAINED)


@pytest.mark.parametrize("label", [f"{SHIPPED}..", f"{SHIPPED}/tmp", f"{SHIPPED}../../tests"])
def test_checkpoint_path_refuses_shipped_labels_not_offered(label):
    assert label not in list_checkpoints()
    with pytest.raises(ValueError):
        checkpoint_path(label)


@pytest.mark.slow
def test_labels_name_the_model_that_made_each_run(scenario, trained):
    wb = Workbench(scenario, label=LABEL)
    wb.compare = []
    wb.set_region(*box(scenario, NW))
    wb.load_checkpoint(SHIPPED_LABEL)
    wb.wait()
    wb.set_region(*box(scenario, SE))
    wb.load_checkpoint(trained.wb.model_label)
    wb.wait()
    wb.set_region(*box(scenario, NW))
    assert wb.run(ST).label == SHIPPED_LABEL  # this selection was imputed by the shipped model
    assert wb.scores()["model"].tolist() == [f"{ST} ({SHIPPED_LABEL})"]


def test_shipped_runs_are_not_shared_between_different_data(scenario):
    other = scenario.copy(deep=True)
    other[TARGET] = other[TARGET] * 0.5
    sessions = []
    for ds in (scenario, other):
        wb = Workbench(ds, label=LABEL)
        wb.compare = []
        wb.set_region(*box(ds))
        wb.load_checkpoint(SHIPPED_LABEL)
        wb.wait()
        sessions.append(wb)
    for wb in sessions:
        obs = wb.selection()[TARGET].transpose("time", "y", "x").values
        full = wb.run(ST).full.transpose("time", "y", "x").values
        observed = np.isfinite(obs)
        np.testing.assert_array_equal(full[observed], obs[observed])


def test_baseline_runs_are_shared_by_sessions_on_the_server_data(scenario, tmp_path, monkeypatch):
    path = write_netcdf(scenario, tmp_path / "server.nc")
    monkeypatch.setenv("STIMPUTE_DATA", str(path))
    runs = []
    for _ in range(2):
        wb = Workbench(label="server.nc")
        wb.method, wb.compare = "mean", ["linear"]
        wb.set_region(*box(wb.ds))
        wb.impute()
        wb.wait()
        runs.append(wb.run("mean"))
        # Each method keeps its own result.
        assert wb.run("linear").method == "linear"
        assert not np.allclose(wb.run("linear").full.values, wb.run("mean").full.values)
    assert runs[0] is not None and runs[0] is runs[1]
    alone = Workbench(scenario, label=LABEL)  # data of its own: nothing shared
    alone.method, alone.compare = "mean", []
    alone.set_region(*box(scenario))
    alone.impute()
    alone.wait()
    assert alone.run("mean") is not runs[0]


# --------------------------------------------------------------------------- data folder


def test_load_source_from_the_data_folder(scenario, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("STIMPUTE_DATA_DIR", str(folder))
    wb = Workbench(scenario, label=LABEL)
    assert wb.param.source.objects == [LABEL]
    modified = scenario.isel(y=slice(0, 12), x=slice(2, 14))
    modified[TARGET] = modified[TARGET] * 0.9
    write_netcdf(modified, folder / "modified.nc")
    wb.refresh_sources()
    assert wb.param.source.objects == [LABEL, "modified.nc (contract)"]
    wb.method, wb.compare = "mean", []
    version, old = wb.data_version, wb.ds

    job = wb.load_source("modified.nc (contract)")
    wb.wait()

    assert job.status == "done" and not notes(wb, "error")
    assert wb.ds is not old and wb.data_version > version
    assert (wb.ds.sizes["y"], wb.ds.sizes["x"]) == (12, 12)
    np.testing.assert_array_equal(wb.ds[TARGET].values, modified[TARGET].values)
    assert wb.source == "modified.nc (contract)"
    assert ("success", "loaded modified.nc (contract)") in wb.notifications
    assert wb.region == pytest.approx(data_extent(modified))
    assert set(wb.runs()) == {"mean"}  # the new data were imputed once loaded


def test_load_source_of_a_corrupt_file_keeps_the_data(scenario, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("STIMPUTE_DATA_DIR", str(folder))
    (folder / "corrupt.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00garbage" * 64)
    wb = Workbench(scenario, label=LABEL)
    assert "corrupt.nc (contract)" in wb.param.source.objects
    old, version, region = wb.ds, wb.data_version, wb.region

    job = wb.load_source("corrupt.nc (contract)")
    wb.wait()

    assert job.status == "failed"
    errors = notes(wb, "error")
    assert len(errors) == 1 and "corrupt.nc" in errors[0]
    assert wb.ds is old and wb.data_version == version and wb.region == region
    assert wb.source == LABEL and not wb.busy()


def test_cancelled_failing_load_reports_no_internal_error(scenario, monkeypatch):
    release = threading.Event()

    def broken(current, root, name, progress=None):
        release.wait(60)
        raise ValueError(f"{name}: cannot be read as NetCDF")

    monkeypatch.setattr(state, "load_source", broken)
    wb = Workbench(scenario, label=LABEL)
    old = wb.ds
    job = wb.load_source("bad.nc (contract)")
    wb.cancel()
    release.set()
    wb.wait()
    assert job.status == "cancelled" and wb.ds is old
    assert all("bad.nc" in text for text in notes(wb, "error")), wb.notifications


def test_a_reference_the_data_cannot_serve_is_left_out_with_a_warning(scenario):
    wb = Workbench(scenario.drop_vars("sm_36km"), label=LABEL)
    wb.method, wb.compare = "mean", ["coarse", "linear"]
    wb.set_region(*box(scenario))
    wb.impute()
    wb.wait()
    assert set(wb.runs()) == {"mean", "linear"}  # the others are kept
    assert any("coarse left out" in text and "sm_36km" in text for text in notes(wb, "warning"))
    assert not notes(wb, "error")


def test_covariate_references_are_offered_and_the_strongest_compared_by_default(scenario):
    wb = Workbench(scenario, label=LABEL)
    assert {"coarse", "regression", "mice", "forest", "boosting"} <= set(wb.param.compare.objects)
    assert "coarse" in wb.compare and "boosting" in wb.compare


# --------------------------------------------------------------------------- saving safely


@pytest.fixture
def with_model(scenario) -> Workbench:
    """A session holding the shipped model (not imputed: saving is what is tested)."""
    wb = Workbench(scenario, label=LABEL)
    wb._set_model(STTransformerImputer.load(pretrained_path()), SHIPPED_LABEL)
    return wb


def test_saving_under_an_existing_name_asks_first(with_model):
    wb = with_model
    path = wb.save_checkpoint("ask-first")
    stamp = (path / "config.json").read_text()
    with pytest.raises(ValueError, match="a checkpoint named 'ask-first' exists: tick Overwrite"):
        wb.save_checkpoint("ask-first")
    assert (path / "config.json").read_text() == stamp
    wb.overwrite = True
    assert wb.save_checkpoint("ask-first") == path
    assert wb.overwrite is False  # the confirmation holds for one save
    assert (path / "config.json").read_text() != stamp


def test_saving_never_replaces_another_sessions_checkpoint_or_other_files(with_model, scenario):
    other = Workbench(scenario, label=LABEL)
    other._set_model(with_model.model, SHIPPED_LABEL)
    theirs = other.save_checkpoint("theirs")
    before = (theirs / "config.json").read_text()
    with pytest.raises(ValueError, match="'theirs' was not saved in this session"):
        with_model.save_checkpoint("theirs", overwrite=True)
    assert (theirs / "config.json").read_text() == before
    folder = models_dir() / "notes"
    folder.mkdir(parents=True)
    (folder / "readme.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files than a checkpoint"):
        with_model.save_checkpoint("notes", overwrite=True)
    assert (folder / "readme.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="kept for the models saved after training"):
        with_model.save_checkpoint(f"session-{other.session_id}-x", overwrite=True)


def test_models_saved_after_training_are_named_per_session(with_model, scenario):
    other = Workbench(scenario, label=LABEL)
    ours, error = with_model._save_trained(with_model.model)
    theirs, _ = other._save_trained(with_model.model)
    assert error is None and with_model.session_id != other.session_id
    assert ours.startswith(f"session-{with_model.session_id}-")
    assert theirs.startswith(f"session-{other.session_id}-")
    assert {ours, theirs} <= set(list_checkpoints())


def test_a_trained_model_that_cannot_be_saved_is_kept(with_model, monkeypatch):
    def full_disk(*_args, **_kw):
        raise OSError("No space left on device")

    wb = with_model
    monkeypatch.setattr(state, "save_in_models_dir", full_disk)
    monkeypatch.setattr(wb, "_queue_impute", lambda: None)
    name, error = wb._save_trained(wb.model)
    assert name.startswith("unsaved-") and "No space left" in error
    model = wb.model
    wb._trained((model, name, error))
    assert wb.model is model and wb.model_label == name and wb.checkpoint is None
    assert any("not saved" in text for text in notes(wb, "warning"))


def test_the_shipped_checkpoints_folder_is_never_saved_into(with_model, tmp_path, monkeypatch):
    fake = tmp_path / "pretrained"
    (fake / "txson-quick").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (fake / "txson-quick" / name).write_text("shipped")
    monkeypatch.setattr(shared, "PRETRAINED_DIR", fake)
    monkeypatch.setenv("STIMPUTE_MODELS_DIR", str(fake))
    with pytest.raises(ValueError, match="shipped checkpoints"):
        with_model.save_checkpoint("txson-quick", overwrite=True)
    assert (fake / "txson-quick" / "config.json").read_text() == "shipped"
