"""The built-in synthetic TxSON scenario: statistics, determinism and the atomic cache.

Also the atomic write every output goes through (:func:`stimpute_core.data.io.atomic_write`) and
the cache folder (:mod:`stimpute_core.data.cache`).
"""

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import atomic_write, station_cells, validate, write_netcdf
from stimpute_core.data.cache import default_cache_dir
from stimpute_core.data.grid import TXSON_BOX, lonlat_to_xy, xy_to_rowcol
from stimpute_core.data.scenario import ScenarioConfig, load_scenario, make_scenario, scenario_path
from stimpute_core.data.scenario import default_cache_dir as scenario_cache_dir


@pytest.fixture(scope="module")
def ds():
    """The default scenario: TxSON, 2016-2022, seed 0."""
    return make_scenario()


def test_grid_is_the_txson_ease2_cell(ds):
    assert ds.sizes["y"] == 36 and ds.sizes["x"] == 36 and ds.sizes["time"] == 2557
    rows, cols = xy_to_rowcol("M01", ds.x.values, ds.y.values)
    assert cols.tolist() == list(range(7812, 7848)) and rows.tolist() == list(range(3600, 3636))
    assert rows[0] // 36 == 100 and cols[0] // 36 == 217  # M36 row 100, column 217
    assert 30.14 < ds.lat.min() < 30.16 and 30.46 < ds.lat.max() < 30.48
    assert -98.97 < ds.lon.min() < -98.95 and -98.60 < ds.lon.max() < -98.58
    assert ds.attrs["crs"] == "EPSG:6933"
    validate(ds)


def test_missing_rate_like_spl2smap_s(ds):
    missing = np.isnan(ds.soil_moisture.values).mean()
    assert 0.93 <= missing <= 0.97


def test_overpasses_every_12_days_with_6_day_stretches(ds):
    obs_days = pd.DatetimeIndex(
        ds.time.values[np.isfinite(ds.soil_moisture.values).any(axis=(1, 2))]
    )
    gaps = np.diff(obs_days).astype("timedelta64[D]").astype(int)
    assert set(np.unique(gaps)) <= {6, 12, 18, 24, 30, 36, 42, 48, 54, 60}
    assert (gaps == 6).sum() > 10 and (gaps == 12).sum() > 40
    # Some overpasses cover only part of the box (swath edge).
    cover = np.isfinite(ds.soil_moisture.values).mean(axis=(1, 2))
    cover = cover[cover > 0]
    assert (cover < 0.7).sum() > 20 and (cover > 0.9).sum() > 50


def test_truth_and_observation_ranges(ds):
    truth = ds.soil_moisture_true.values
    assert truth.min() >= 0.03 and truth.max() <= 0.5
    lo, hi = np.percentile(truth, [1, 99])
    assert 0.03 <= lo < 0.08 and 0.35 < hi <= 0.46
    err = ds.soil_moisture.values - truth
    assert 0.028 < np.nanstd(err) < 0.042  # retrieval noise of SPL2SMAP_S magnitude
    assert np.isfinite(ds.soil_moisture.values).any()


def test_seasonality_and_precipitation(ds):
    prcp = pd.Series(ds.prcp.mean(("y", "x")).values, index=ds.time.values)
    annual = prcp.resample("YE").sum()
    assert 650 < annual.mean() < 850
    sm = pd.Series(ds.soil_moisture_true.mean(("y", "x")).values, index=ds.time.values)
    by_month = sm.groupby(sm.index.month).mean()
    assert by_month[[7, 8]].mean() < by_month[[4, 5, 10]].mean() - 0.02  # dry July-August
    # Drydowns: after a storm soil moisture falls on most following days.
    d = np.diff(ds.soil_moisture_true.values[:, 18, 18])
    assert (d < 0).mean() > 0.6 and d.max() > 0.1


def test_weather_units_and_ranges(ds):
    assert ds.tmax.min() > -10 and ds.tmax.max() < 46
    assert (ds.tmin <= ds.tmax).all()
    assert 0 < ds.srad.min() and ds.srad.max() <= 520
    assert ds.vp.min() > 0 and ds.prcp.min() >= 0
    sm36 = np.isfinite(ds.sm_36km.values[:, 0, 0]).mean()
    assert 0.3 < sm36 < 0.6  # 2-3 day revisit


def test_static_layers(ds):
    assert 340 < ds.elevation.min() and ds.elevation.max() < 670
    assert ds.elevation.max() - ds.elevation.min() > 200
    assert (ds.aspect >= 0).all() and (ds.aspect < 360).all()
    assert ((ds.clay > 15) & (ds.clay < 40)).all() and ((ds.sand > 30) & (ds.sand < 60)).all()
    lc = ds.land_cover.values
    share = {c: (lc == c).mean() for c in (8, 9, 10, 12, 13)}
    assert 0.70 <= share[10] <= 0.80 and 0.20 <= share[9] <= 0.28
    assert all((lc == c).sum() >= 1 for c in (8, 12, 13))
    assert set(np.unique(lc)) == {8, 9, 10, 12, 13}


def test_forty_nested_stations(ds):
    assert ds.sizes["station"] == 40
    assert len(set(ds.station.values)) == 40
    nests = pd.Series(ds.station_nest.values).value_counts()
    assert nests["3km"] >= 5 and nests["9km"] >= 5 and nests["36km"] >= 20
    iy, ix = station_cells(ds)
    in3 = ds.station_nest.values == "3km"
    # The 3 km stations share one 3 x 3 block of 1 km cells, inside the dense 9 km block.
    assert np.ptp(iy[in3]) <= 2 and np.ptp(ix[in3]) <= 2
    assert np.all(ds.station_depth.values == 0.05)
    insitu = ds.insitu.values
    assert 0.8 < np.isfinite(insitu).mean() < 0.99  # sensor outages
    # Station = cell truth plus point-scale offset and noise: close to, not equal to, the truth.
    truth = ds.soil_moisture_true.values[:, iy, ix].T
    r = np.array(
        [
            np.corrcoef(a[np.isfinite(a)], b[np.isfinite(a)])[0, 1]
            for a, b in zip(insitu, truth, strict=True)
        ]
    )
    assert (r > 0.8).all()
    assert np.nanmean(np.abs(insitu - truth)) > 0.01


def test_deterministic_for_a_seed():
    cfg = ScenarioConfig(seed=7, start="2019-01-01", end="2019-03-31")
    a, b = make_scenario(cfg), make_scenario(cfg)
    assert a.identical(b)
    c = make_scenario(ScenarioConfig(seed=8, start="2019-01-01", end="2019-03-31"))
    assert not np.allclose(a.soil_moisture_true.values, c.soil_moisture_true.values)


def test_period_is_configurable():
    ds = make_scenario(ScenarioConfig(start="2018-03-01", end="2018-04-30"))
    assert ds.sizes["time"] == 61
    assert str(ds.time.values[0])[:10] == "2018-03-01"
    with pytest.raises(ValueError, match="empty"):
        make_scenario(ScenarioConfig(start="2018-03-01", end="2018-02-01"))


def test_box_is_the_txson_36km_cell():
    """The built-in box is the EASE-Grid 2.0 36 km cell that holds Fredericksburg, Texas (the
    TxSON network's cell), split into its 36 x 36 cells of 1 km."""
    x, y = lonlat_to_xy(np.array([-98.8720]), np.array([30.2752]))
    row36, col36 = xy_to_rowcol("M36", x, y)
    assert (TXSON_BOX.row0, TXSON_BOX.col0) == (int(row36[0]) * 36, int(col36[0]) * 36)
    assert (TXSON_BOX.nrows, TXSON_BOX.ncols) == (36, 36)
    row1, col1 = xy_to_rowcol("M01", x, y)
    assert TXSON_BOX.row0 <= row1[0] < TXSON_BOX.row0 + 36
    assert TXSON_BOX.col0 <= col1[0] < TXSON_BOX.col0 + 36


def test_cache_roundtrip_and_atomic_write(tmp_path):
    cfg = ScenarioConfig(seed=3, start="2020-01-01", end="2020-02-29")
    path = scenario_path(cfg, tmp_path)
    first = load_scenario(cfg, cache_dir=tmp_path)
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    mtime = path.stat().st_mtime_ns
    second = load_scenario(cfg, cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == mtime  # read, not regenerated
    np.testing.assert_array_equal(first.soil_moisture.values, second.soil_moisture.values)


def test_truncated_cache_is_regenerated(tmp_path):
    cfg = ScenarioConfig(seed=3, start="2020-01-01", end="2020-01-31")
    path = scenario_path(cfg, tmp_path)
    path.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    ds = load_scenario(cfg, cache_dir=tmp_path)
    assert ds.sizes["time"] == 31
    assert os.path.getsize(path) > 10_000


# --------------------------------------------------------------------------- cache folder


def test_cache_folder_from_the_environment(tmp_path, monkeypatch):
    assert scenario_cache_dir is default_cache_dir  # still importable from the scenario
    monkeypatch.setenv("STIMPUTE_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("STIMPUTE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "stimpute"


# --------------------------------------------------------------------------- atomic write


class _Boom(Exception):
    pass


def _failing_writer(exc: BaseException):
    """A writer that writes part of its file, then raises ``exc``."""

    def write(tmp):
        tmp.write_bytes(b"half a file")
        raise exc

    return write


def test_atomic_write_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "out.bin"  # the folder is created
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_bytes(b"new")

    assert atomic_write(target, write) == target
    assert target.read_bytes() == b"new"
    assert seen[0].parent == target.parent and seen[0] != target
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]
    atomic_write(str(target), lambda tmp: tmp.write_bytes(b"newer"))  # str paths too
    assert target.read_bytes() == b"newer"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("exc", [_Boom("disk full"), KeyboardInterrupt()])
def test_atomic_write_keeps_the_target_when_the_writer_fails(tmp_path, exc):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(exc)):
        atomic_write(target, _failing_writer(exc))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left behind


def test_atomic_write_creates_nothing_when_the_writer_fails(tmp_path):
    with pytest.raises(_Boom):
        atomic_write(tmp_path / "out.bin", _failing_writer(_Boom("no")))
    assert list(tmp_path.iterdir()) == []


def test_write_netcdf_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "area.nc"
    good = xr.Dataset({"a": ("t", np.arange(3.0))})
    write_netcdf(good, path)
    bad = xr.Dataset({"a": ("t", np.array([object(), object()], dtype=object))})
    with pytest.raises(ValueError, match="serialize"):  # raised while writing the temporary file
        write_netcdf(bad, path)
    with xr.open_dataset(path, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["a"].values, good["a"].values)
    assert [p.name for p in tmp_path.iterdir()] == ["area.nc"]
