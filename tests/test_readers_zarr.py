"""Readers streaming into Zarr stores a batch of days at a time: same bits as in memory, bounded
memory, nothing left behind on failure."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_readers_covariates import _noon, _write_lcc
from test_readers_smap import granule_name, write_granule

from stimpute_core.cli import main
from stimpute_core.data import open_dataset
from stimpute_core.data import zarr_stream as zs
from stimpute_core.data.grid import TXSON_BOX, box_for_region
from stimpute_core.data.readers.daymet import read_daymet, stream_daymet
from stimpute_core.data.readers.smap import read_smap_cube
from stimpute_core.data.readers.smap_common import DayBatches, region_grid
from stimpute_core.data.readers.smap_stream import stream_smap_cube
from stimpute_core.data.zarr_io import write_zarr
from stimpute_core.data.zarr_stream import DayStream, batch_days, check_zarr_out

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")

START, END = "2020-02-01", "2020-02-12"
ROWS = np.arange(TXSON_BOX.row0, TXSON_BOX.row0 + 36)
COLS = np.arange(TXSON_BOX.col0, TXSON_BOX.col0 + 36)


def _values(rng: np.random.Generator, shape=(36, 36)) -> np.ndarray:
    """Valid soil moisture with a few cells out of range (masked by the reader)."""
    values = 0.02 + 0.45 * rng.random(shape)
    values[rng.random(shape) < 0.1] = -9999.0
    return values


@pytest.fixture
def granules(tmp_path: Path) -> Path:
    """Twelve days of TxSON granules: several on some days (averaged in their given order), an
    unnamed one dated by its metadata, a superseded version, a corrupt file, one outside."""
    folder = tmp_path / "granules"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for day in pd.date_range(START, END)[::2]:
        for k in range(1 + day.day % 3):
            name = granule_name(f"{day:%Y-%m-%d}", f"{10 + k}3512", tile=f"09{k}W30N")
            write_granule(folder / name, ROWS, COLS, _values(rng))
    older = granule_name("2020-02-04", "223512")
    write_granule(folder / older, ROWS, COLS, _values(rng))
    write_granule(folder / older.replace("_001.h5", "_002.h5"), ROWS, COLS, _values(rng))
    write_granule(folder / "scene.h5", ROWS, COLS, _values(rng), begin="2020-02-09T01:00:00Z")
    (folder / granule_name("2020-02-05", "050505")).write_bytes(b"not hdf5")
    write_granule(folder / granule_name("2020-03-01"), ROWS, COLS, _values(rng))
    return folder


def _same_store(a: Path, b: Path) -> None:
    """Every file of the two stores holds the same bytes (metadata and chunks)."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert json.loads((a / ".zmetadata").read_text()) == json.loads((b / ".zmetadata").read_text())


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_a_streamed_store_equals_the_in_memory_cube_to_the_bit(granules, tmp_path):
    ds, report = read_smap_cube(granules, start=START, end=END)
    write_zarr(ds, tmp_path / "memory.zarr")
    store, streamed = stream_smap_cube(
        granules, tmp_path / "stream.zarr", start=START, end=END, batch=3
    )
    _same_store(tmp_path / "memory.zarr", tmp_path / "stream.zarr")
    assert sorted(streamed.read) == sorted(report.read) and len(report.read) == 14
    assert sorted(streamed.skipped) == sorted(report.skipped) and len(report.skipped) == 2
    assert store.attrs == ds.attrs and store.attrs["granules_outside_period"] == 1
    checked = open_dataset(tmp_path / "stream.zarr")  # lazily, validated
    assert checked["soil_moisture"].chunks == ((12,), (36,), (36,))
    assert _leftovers(tmp_path, {"granules", "memory.zarr", "stream.zarr"}) == []


def test_the_command_writes_a_store_equal_to_its_netcdf(granules, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(zs, "BATCH_DAYS", 5)  # the default batch would hold all 12 days
    argv = ["data", "smap", str(granules), "--start", START, "--end", END, "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "cube.nc")]) == 0
    netcdf = capsys.readouterr()
    assert main([*argv, str(tmp_path / "cube.zarr")]) == 0
    zarr = capsys.readouterr()
    assert zarr.out == netcdf.out  # the description, computed tile by tile from the store
    assert "missing" in zarr.out and "skipped" in zarr.err
    nc, store = open_dataset(tmp_path / "cube.nc"), open_dataset(tmp_path / "cube.zarr").load()
    xr.testing.assert_identical(store, nc)
    bits = [d["soil_moisture"].values.view(np.uint32) for d in (nc, store)]
    np.testing.assert_array_equal(*bits)
    assert main(["data", "info", str(tmp_path / "cube.zarr")]) == 0


@pytest.mark.slow
def test_streaming_holds_one_batch_of_days_never_the_cube(tmp_path, monkeypatch, no_whole_cube):
    """A 495 x 578 cell region, 96 days: the cube (110 MB of float32, 165 MB with the count) is
    never allocated; the most allocated at once (tracemalloc) is a small share of it, made of
    one batch (4 days: 7 MB with the count), the grid's 2-D coordinates (float64 lat, lon and
    their temporaries) and a few tiles' whole series while rechunking (1.6 MB each)."""
    west, south, east, north = -101.0, 28.5, -95.0, 33.0
    box = box_for_region(west, south, east, north)
    folder = tmp_path / "granules"
    folder.mkdir()
    rng = np.random.default_rng(3)
    days = pd.date_range("2020-01-01", periods=96)
    for i, day in enumerate(days):
        r0 = box.row0 + (97 * i) % (box.nrows - 36)
        c0 = box.col0 + (131 * i) % (box.ncols - 36)
        rows, cols = np.arange(r0, r0 + 36), np.arange(c0, c0 + 36)
        write_granule(folder / granule_name(f"{day:%Y-%m-%d}"), rows, cols, _values(rng))
    region, period = f"{west},{south},{east},{north}", {"start": days[0], "end": days[-1]}
    cube_bytes = len(days) * box.nrows * box.ncols * 4
    stream_smap_cube(folder, tmp_path / "warm.zarr", region="txson", start=days[0], end=days[1])

    writes: list[tuple[int, int]] = []
    real_write = DayStream.write

    def spy(self, name, t0, block):
        writes.append((t0, len(block)))
        return real_write(self, name, t0, block)

    monkeypatch.setattr(DayStream, "write", spy)
    tracemalloc.start()
    try:
        store, _ = stream_smap_cube(folder, tmp_path / "s.zarr", region=region, batch=4, **period)
        streamed_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        ds, _ = read_smap_cube(folder, region=region, **period)
        memory_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert writes == [(t0, 4) for t0 in range(0, 96, 4)]  # one batch of 4 days at a time
    assert memory_peak >= 1.4 * cube_bytes  # the in-memory loop holds sum and count: visible
    assert streamed_peak < 0.3 * cube_bytes, (streamed_peak, cube_bytes)
    for t in (0, 37, 95):  # day by day: the guard refuses a whole cube
        np.testing.assert_array_equal(store["soil_moisture"][t].values, ds["soil_moisture"][t])


def _corrupt(path: Path) -> None:
    """A granule whose soil moisture is text: not a known kind of bad file, so the load stops."""
    write_granule(path, ROWS, COLS)
    with h5py.File(path, "r+") as f:
        group = f["Soil_Moisture_Retrieval_Data_1km"]
        del group["soil_moisture_1km"]
        group.create_dataset("soil_moisture_1km", data=np.full((36, 36), b"wet", dtype="S3"))


def test_a_failure_mid_loop_leaves_nothing_behind(granules, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(zs, "BATCH_DAYS", 2)  # batches of days written before the failure
    out = tmp_path / "cube.zarr"
    argv = ["data", "smap", str(granules), "--start", START, "--end", END, "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = granules / granule_name("2020-02-10", "233512", tile="bad")
    _corrupt(bad)
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "the load stopped at this granule" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # as it was
    assert main([*argv, "--out", str(tmp_path / "new.zarr")]) == 2
    assert _leftovers(tmp_path, {"granules", "cube.zarr"}) == []  # no output, no temporary


def test_no_valid_value_writes_nothing(granules, tmp_path, capsys):
    argv = ["data", "smap", str(granules), "--region", "0,0,1,1", "--start", START, "--end", END]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "none.zarr")]) == 2
    assert "no valid soil moisture for region 0,0,1,1" in capsys.readouterr().err
    assert _leftovers(tmp_path, {"granules"}) == []


def test_stream_daymet_equals_read_daymet_across_batches_and_the_leap_day(tmp_path):
    """Two overlapping files of a leap December (Daymet has no 31 December then): the first
    file's days win, 31 December copies the 30th, every piece of days falls in one batch."""
    grid = region_grid("txson", "2020-12-26", "2021-01-02")
    first, second = tmp_path / "a.nc", tmp_path / "b.nc"
    _write_lcc(first, grid, ["prcp", "tmax"], _noon("2020-12-27", 4))
    times = _noon("2020-12-29", 2).append(_noon("2021-01-01", 2))
    _write_lcc(second, grid, ["prcp", "tmax"], times)
    want, _ = read_daymet([first, second], grid, variables=["prcp", "tmax"],
                          start="2020-12-26", end="2021-01-02")  # fmt: skip
    with DayStream(tmp_path / "w.zarr", grid, ["prcp", "tmax"], batch=3) as stream:
        attrs, report = stream_daymet([first, second], stream, variables=["prcp", "tmax"])
        for name in ("prcp", "tmax"):
            got = stream.read(name, 0, 8)
            np.testing.assert_array_equal(got.view(np.uint32), want[name].values.view(np.uint32))
            assert attrs[name] == want[name].attrs
    assert np.isnan(got[0]).all() and np.array_equal(got[5], got[4])  # 26 Dec none, 31 = 30
    assert len(report.read) == 2 and not (tmp_path / "w.zarr").exists()


def test_bad_settings_are_refused_with_names(tmp_path):
    grid = region_grid("txson", START, END)
    with pytest.raises(ValueError, match=r"a name ending \.zarr"):
        check_zarr_out(tmp_path / "cube.nc")
    (tmp_path / "folder.zarr").mkdir()
    (tmp_path / "folder.zarr" / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"folder\.zarr exists and is not a Zarr store"):
        check_zarr_out(tmp_path / "folder.zarr")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="days"):
            batch_days(10, 100, 6, most=bad)
    assert batch_days(10, 100, 6) == 10 and batch_days(100, 10**8, 6) == 1
    with DayStream(tmp_path / "s.zarr", grid, ["soil_moisture"], batch=4) as stream:
        with pytest.raises(ValueError, match=r"soil_moisture: a block of shape \(2, 5, 5\)"):
            stream.write("soil_moisture", 0, np.zeros((2, 5, 5)))
        with pytest.raises(ValueError, match="'prcp' is not a variable"):
            stream.write("prcp", 0, np.zeros((1, 36, 36)))
    batches = DayBatches(6, (2, 2), 2, lambda t0, values: None)
    batches.day(3)
    with pytest.raises(ValueError, match="day 1 of the period belongs to a batch already written"):
        batches.day(1)
    assert _leftovers(tmp_path, {"folder.zarr"}) == []
