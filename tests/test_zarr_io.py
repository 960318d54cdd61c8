"""The data contract on Zarr: tiled stores, lazy opening and validation, atomic writes, CLI."""

from __future__ import annotations

import dask.array
import numpy as np
import pytest
import xarray as xr

from stimpute_core.cli import main
from stimpute_core.data import ContractError, open_dataset, write_dataset
from stimpute_core.data.grid import GridBox
from stimpute_core.data.io import write_netcdf
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.zarr_io import is_zarr, open_zarr, tile_chunks, write_zarr

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


@pytest.fixture(scope="module")
def small():
    box = GridBox(row0=3400, col0=7600, nrows=10, ncols=7)
    cfg = ScenarioConfig(seed=3, start="2019-03-01", end="2019-05-30", box=box, n_stations=3)
    return make_scenario(cfg).load()


def test_a_store_round_trips_like_netcdf_in_space_tiles(small, tmp_path):
    write_netcdf(small, tmp_path / "s.nc")
    write_zarr(small, tmp_path / "s.zarr", tile=4)
    store = open_zarr(tmp_path / "s.zarr")
    tiles = ((small.sizes["time"],), (4, 4, 2), (4, 3))  # the whole series in every tile
    assert store["soil_moisture"].chunks == tiles
    assert store["insitu"].chunks == ((3,), (small.sizes["time"],))
    xr.testing.assert_identical(store.load(), open_dataset(tmp_path / "s.nc"))
    assert is_zarr(tmp_path / "s.zarr") and not is_zarr(tmp_path / "s.nc")
    assert open_dataset(tmp_path / "s.zarr")["soil_moisture"].chunks == tiles  # the dispatch


def test_tiles_of_bad_size_are_refused(small):
    for tile in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="tile="):
            tile_chunks(small, tile)


def test_validation_of_a_store_never_loads_a_whole_cube(small, tmp_path, no_whole_cube):
    write_zarr(small, tmp_path / "ok.zarr", tile=4)
    store = open_zarr(tmp_path / "ok.zarr")  # validates
    assert isinstance(store["soil_moisture"].data, dask.array.Array)
    bad = small.copy()
    bad["soil_moisture"] = small["soil_moisture"] * 100  # percent instead of m³/m³
    write_zarr(bad, tmp_path / "bad.zarr", tile=4)
    with pytest.raises(ContractError, match=r"bad\.zarr(.|\n)*'soil_moisture' has values"):
        open_zarr(tmp_path / "bad.zarr")
    empty = small.copy()
    empty["soil_moisture"] = small["soil_moisture"] * np.nan
    write_zarr(empty, tmp_path / "empty.zarr", tile=4)
    with pytest.raises(ContractError, match="no observed"):
        open_zarr(tmp_path / "empty.zarr")


def test_a_store_is_described_without_loading_a_whole_cube(small, tmp_path, no_whole_cube):
    from stimpute_core.data.summary import describe

    write_zarr(small, tmp_path / "s.zarr", tile=4)
    want, got = describe(small), describe(open_zarr(tmp_path / "s.zarr"))
    for info in (want, got):  # a store lists its variables by name
        info["dynamic_covariates"].sort()
        info["static_covariates"].sort()
    assert got == want and got["observed_values"] > 0


def test_the_guard_catches_a_whole_cube_load(small, tmp_path, no_whole_cube):
    write_zarr(small, tmp_path / "s.zarr", tile=4)
    with pytest.raises(AssertionError, match="whole"):
        _ = open_zarr(tmp_path / "s.zarr")["soil_moisture"].values


def test_writes_are_atomic_and_never_replace_a_foreign_folder(small, tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    write_dataset(small, path)  # the suffix chooses Zarr
    before = open_zarr(path).load()

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", broken)
    with pytest.raises(OSError, match="disk full"):
        write_zarr(small.isel(time=slice(0, 10)), path)
    monkeypatch.undo()
    xr.testing.assert_identical(open_zarr(path).load(), before)  # the old store is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary left
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a Zarr store"):
        write_zarr(small, folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="cannot be read as a Zarr store"):
        open_zarr(folder)
    with pytest.raises(FileNotFoundError, match="no such Zarr store"):
        open_zarr(tmp_path / "missing.zarr")


def test_the_command_line_writes_checks_and_benchmarks_a_store(tmp_path, capsys):
    store = tmp_path / "demo.zarr"
    argv = ["data", "demo", "--out", str(store), "--start", "2019-01-01", "--end", "2020-12-31"]
    assert main([*argv, "--box", "3400,7600,8,8"]) == 0
    assert main(["data", "info", str(store)]) == 0
    assert "contract    OK" in capsys.readouterr().out
    bench = ["benchmark", "--data", str(store), "--models", "mean", "--seeds", "1"]
    assert main([*bench, "--test-start", "2020-07-01"]) == 0
    assert "| mean |" in capsys.readouterr().out
    assert main([*argv, "--box", "3400,7600,8,8"]) == 2  # the demo never replaces anything
    assert "already exists" in capsys.readouterr().err
    folder = tmp_path / "folder.zarr"
    folder.mkdir()
    (folder / "x.txt").write_text("")
    assert main(["data", "info", str(folder)]) == 2
    assert "cannot be read as a Zarr store" in capsys.readouterr().err
