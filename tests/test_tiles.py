"""Tiled imputation of a Zarr store (:mod:`stimpute_core.tiles`): the same field as an untiled
run, restart after a killed run, refusals, a two-process Dask cluster and the command line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

from stimpute_core import tiles
from stimpute_core.cli import main
from stimpute_core.data.grid import GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.zarr_io import open_zarr, write_zarr
from stimpute_core.models import make_imputer
from stimpute_core.models.base import OUTPUT_NAME

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


@pytest.fixture(scope="module")
def cube():
    box = GridBox(row0=3400, col0=7600, nrows=11, ncols=9)
    cfg = ScenarioConfig(seed=4, start="2019-01-01", end="2019-12-31", box=box, n_stations=3)
    return make_scenario(cfg).load()


@pytest.fixture(scope="module")
def store(cube, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiles") / "in.zarr"
    write_zarr(cube, path, tile=4)  # 3 x 3 tiles, the last row and column narrower
    return path


def test_plan_covers_the_grid_once():
    plan = tiles.plan_tiles(11, 9, 4)
    cover = np.zeros((11, 9), int)
    for t in plan:
        cover[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert len(plan) == 9 and (cover == 1).all() and [t.index for t in plan] == list(range(9))
    with pytest.raises(ValueError, match="tile=0"):
        tiles.plan_tiles(11, 9, 0)


@pytest.mark.parametrize("model", tiles.TILED_MODELS)
def test_tiled_equals_untiled(model, cube, store, tmp_path):
    summary = tiles.impute_tiled(store, model, tmp_path / "out.zarr")
    assert summary["tiles"] == 9 and summary["skipped"] == 0
    out = open_zarr(tmp_path / "out.zarr", check=False)
    whole = make_imputer(model).fit(cube).impute(cube)
    np.testing.assert_allclose(out[OUTPUT_NAME].values, whole.values, atol=1e-5, rtol=0)
    assert out[OUTPUT_NAME].attrs["model"] == model
    xr.testing.assert_identical(out.drop_vars(OUTPUT_NAME).load(), open_zarr(store).load())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no partial left


def test_a_killed_run_restarts_where_it_stopped(cube, store, tmp_path, monkeypatch):
    out = tmp_path / "out.zarr"
    real, ran = tiles.impute_tile, []

    def dies_after_three(source, partial, model, tile):
        if len(ran) == 3:
            raise KeyboardInterrupt  # the run is killed mid-way
        ran.append(tile.index)
        return real(source, partial, model, tile)

    monkeypatch.setattr(tiles, "impute_tile", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        tiles.impute_tiled(store, "linear", out)
    assert not out.exists()  # nothing half finished under the output's name
    monkeypatch.setattr(tiles, "impute_tile", lambda *a: (ran.append(a[3].index), real(*a))[1])
    summary = tiles.impute_tiled(store, "linear", out)
    assert summary["skipped"] == 3 and sorted(ran) == list(range(9))  # each tile once
    whole = make_imputer("linear").fit(cube).impute(cube).values
    np.testing.assert_allclose(
        open_zarr(out, check=False)[OUTPUT_NAME].values, whole, atol=1e-5, rtol=0
    )


def test_a_partial_run_of_other_settings_starts_afresh(cube, store, tmp_path, monkeypatch):
    out = tmp_path / "out.zarr"
    real = tiles.impute_tile
    calls = []

    def once(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(args[3].index)
        return real(*args)

    monkeypatch.setattr(tiles, "impute_tile", once)
    with pytest.raises(KeyboardInterrupt):
        tiles.impute_tiled(store, "mean", out)
    monkeypatch.undo()
    summary = tiles.impute_tiled(store, "coarse", out)  # another model: nothing reused
    assert summary["skipped"] == 0
    whole = make_imputer("coarse").fit(cube).impute(cube).values
    np.testing.assert_allclose(
        open_zarr(out, check=False)[OUTPUT_NAME].values, whole, atol=1e-5, rtol=0
    )


def test_a_tile_without_observations_is_left_empty(cube, tmp_path):
    values = cube["soil_moisture"].values.copy()
    values[:, :4, :4] = np.nan  # the first tile (4 x 4 cells) never observed
    blind = cube.assign(soil_moisture=cube["soil_moisture"].copy(data=values))
    write_zarr(blind, tmp_path / "in.zarr", tile=4)
    summary = tiles.impute_tiled(tmp_path / "in.zarr", "mean", tmp_path / "out.zarr")
    field = open_zarr(tmp_path / "out.zarr", check=False)[OUTPUT_NAME].values
    assert summary["empty_tiles"] == 1 and np.isnan(field[:, :4, :4]).all()
    rest = blind.isel(y=slice(4, None))
    whole = make_imputer("mean").fit(rest).impute(rest).values
    np.testing.assert_allclose(field[:, 4:], whole, atol=1e-5, rtol=0)


def test_what_cannot_be_tiled_is_refused(store, tmp_path):
    with pytest.raises(ValueError, match="'regression' cannot be imputed tile by tile"):
        tiles.impute_tiled(store, "regression", tmp_path / "out.zarr")
    with pytest.raises(ValueError, match="writes a Zarr store"):
        tiles.impute_tiled(store, "mean", tmp_path / "out.nc")
    folder = tmp_path / "keep.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a Zarr store"):
        tiles.impute_tiled(store, "mean", folder)
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="input store"):
        tiles.impute_tiled(store, "mean", store)


@pytest.mark.slow
def test_two_dask_worker_processes_give_the_same_field(cube, store, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    argv = ["impute", "--data", str(store), "--model", "kalman", "--out", str(out)]
    assert main([*argv, "--workers", "2", "--worker-memory", "1GB"]) == 0
    err = capsys.readouterr().err
    assert "Dask dashboard: http" in err and "9 tiles" in err
    whole = make_imputer("kalman").fit(cube).impute(cube).values
    np.testing.assert_allclose(
        open_zarr(out, check=False)[OUTPUT_NAME].values, whole, atol=1e-5, rtol=0
    )
    assert main([*argv, "--quantiles", "0.05,0.95"]) == 2
    assert "field only" in capsys.readouterr().err


@pytest.fixture(scope="module")
def st_checkpoint(tmp_path_factory):
    """A tiny ST-Transformer (patches of 12 cells) fitted on another box, saved."""
    from stimpute_core.models.st_transformer.model import STTransformerImputer

    box = GridBox(row0=3400, col0=7600, nrows=12, ncols=12)
    cfg = ScenarioConfig(seed=6, start="2019-01-01", end="2019-06-30", box=box, n_stations=2)
    model = STTransformerImputer(profile="tiny", epochs=1, prior=None, seed=0)
    model.fit(make_scenario(cfg))
    return model.save(tmp_path_factory.mktemp("st") / "ckpt")


def test_st_checkpoint_tiles_with_a_halo_equal_the_untiled_field(st_checkpoint, tmp_path):
    """Tiles of 8 cells (not whole patches of 12) are widened to whole patches: every cell,
    tile edges included, gets the untiled value."""
    from stimpute_core.models.saved import load_model

    box = GridBox(row0=3500, col0=7700, nrows=20, ncols=15)
    cfg = ScenarioConfig(seed=7, start="2019-01-01", end="2019-06-30", box=box, n_stations=2)
    region = make_scenario(cfg)
    write_zarr(region, tmp_path / "in.zarr", tile=8)
    assert tiles.widened(tiles.Tile(4, 8, 16, 8, 15), 12, 20, 15) == tiles.Tile(4, 0, 20, 0, 15)
    summary = tiles.impute_tiled(tmp_path / "in.zarr", str(st_checkpoint), tmp_path / "out.zarr")
    assert summary["tiles"] == 6
    field = open_zarr(tmp_path / "out.zarr", check=False)[OUTPUT_NAME]
    whole = load_model(st_checkpoint).impute(region).values
    np.testing.assert_allclose(field.values, whole, atol=1e-5, rtol=0)
    assert field.attrs["model"] == "st-transformer" and "checkpoint" in field.attrs["tiled"]
    # Without the halo (each tile alone) the edge cells differ: the halo is what makes them equal.
    alone = load_model(st_checkpoint).impute(region.isel(y=slice(8, 16), x=slice(8, 15))).values
    assert np.abs(alone - whole[:, 8:16, 8:15]).max() > 1e-4


def test_a_checkpoint_that_cannot_be_tiled_is_refused(st_checkpoint, store, tmp_path, monkeypatch):
    fitted = tiles._fitted(str(st_checkpoint))
    monkeypatch.setattr(type(fitted), "transferable", property(lambda self: False))
    with pytest.raises(ValueError, match="cannot be imputed tile by tile"):
        tiles.impute_tiled(store, str(st_checkpoint), tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_a_worker_of_one_thread_runs_one_tile_at_a_time(store, tmp_path, monkeypatch):
    """A tile task reads its tile in its own thread: a plain load inside a task would hand the
    reads to the cluster and let the worker start more tiles than it has threads."""
    import time

    from distributed import Client, LocalCluster

    real, log = tiles.impute_tile, tmp_path / "spans.txt"

    def timed(*args):  # runs on the worker (a copy of this function): its spans go to a file
        t0 = time.perf_counter()
        out = real(*args)
        with open(log, "a") as f:
            f.write(f"{t0} {time.perf_counter()}\n")
        return out

    monkeypatch.setattr(tiles, "impute_tile", timed)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c, Client(c) as client:  # fmt: skip
        tiles.impute_tiled(store, "mean", tmp_path / "out.zarr", client=client)
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 9
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))
