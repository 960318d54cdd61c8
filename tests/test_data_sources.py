"""The data folder offered by the app: listing by kind, path safety, and loading one entry."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import INSITU, TARGET, write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox, cell_centres, xy_to_lonlat
from stimpute_core.data.readers import GRANULE_SUFFIXES, path_kind
from stimpute_core.data.readers.build import build_from_recipe
from stimpute_core.data.readers.smap import read_smap_cube
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.selection import station_cells
from stimpute_core.data.sources import (
    KINDS,
    Source,
    list_sources,
    load_source,
    replace_observations,
    resolve_source,
)

BOX = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=12, ncols=12)


@pytest.fixture(scope="module")
def scenario() -> xr.Dataset:
    """A 12 x 12-cell January-February 2020 scenario with 4 stations (well under a second)."""
    cfg = ScenarioConfig(
        start="2020-01-01", end="2020-02-29", box=BOX, n_stations=4, pass_availability=1.0
    )
    return make_scenario(cfg)


def _touch(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _granule_name(day: str) -> str:
    d = day.replace("-", "")
    return f"SMAP_L2_SM_SP_1AIWDV_{d}T123512_{d}T004512_099W30N_R16515_001.h5"


def _write_granule(path, rows, cols, values) -> None:
    """A minimal SPL2SMAP_S granule at 1 km over global M01 ``rows`` x ``cols``, flags all good."""
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    x, y = cell_centres("M01", rr, cc)
    lon, lat = xy_to_lonlat(x, y)
    with h5py.File(path, "w") as f:
        g = f.create_group("Soil_Moisture_Retrieval_Data_1km")
        fields = {
            "soil_moisture_1km": np.asarray(values, np.float32),
            "latitude_1km": lat.astype(np.float32),
            "longitude_1km": lon.astype(np.float32),
            "EASE_row_index_1km": rr.astype(np.uint16),
            "EASE_column_index_1km": cc.astype(np.uint16),
            "retrieval_qual_flag_1km": np.zeros(rr.shape, np.uint16),
        }
        for name, data in fields.items():
            d = g.create_dataset(name, data=data)
            d.attrs["_FillValue"] = (
                np.float32(-9999) if data.dtype.kind == "f" else np.uint16(65534)
            )
        g["soil_moisture_1km"].attrs["units"] = np.bytes_("cm3/cm3")


# --------------------------------------------------------------------------- listing


def test_list_sources_finds_each_kind_and_ignores_the_rest(tmp_path):
    root = tmp_path / "data"
    _touch(root / "area.nc")
    _touch(root / "other.NC4")
    _touch(root / "recipe.toml")
    _touch(root / "network.zip")
    _touch(root / "stations.csv")
    _touch(root / "granules" / _granule_name("2020-01-09"))
    _touch(root / "ismn-unpacked" / "SCAN" / "site" / "x_sm_0.05_0.05.stm")
    # Ignored: hidden entries, unknown suffixes, folders without granules or .stm files, links.
    _touch(root / ".hidden.nc")
    _touch(root / ".hidden-granules" / _granule_name("2020-01-09"))
    _touch(root / "notes.txt")
    _touch(root / "docs" / "readme.txt")
    (root / "empty").mkdir()
    (root / "link.nc").symlink_to(root / "area.nc")
    (root / "link-granules").symlink_to(root / "granules", target_is_directory=True)

    found = list_sources(root)

    assert found == [
        Source("area.nc", "contract"),
        Source("granules", "granules"),
        Source("ismn-unpacked", "ismn"),
        Source("network.zip", "ismn"),
        Source("other.NC4", "contract"),
        Source("recipe.toml", "recipe"),
        Source("stations.csv", "csv"),
    ]
    assert {s.kind for s in found} == set(KINDS)
    assert found[0].label == "area.nc (contract)"


def test_list_sources_of_a_missing_folder_is_empty(tmp_path):
    assert list_sources(tmp_path / "absent") == []


# --------------------------------------------------------------------------- path safety


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    _touch(root / "area.nc")
    _touch(root / "granules" / _granule_name("2020-01-09"))
    _touch(root / "notes.txt")
    _touch(tmp_path / "outside.nc")
    (root / "escape.nc").symlink_to(tmp_path / "outside.nc")
    return root


def test_resolve_source_gives_path_and_kind(folder):
    assert resolve_source(folder, "area.nc") == (folder.resolve() / "area.nc", "contract")
    assert resolve_source(folder, "granules") == (folder.resolve() / "granules", "granules")


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../outside.nc",
        "a/../area.nc",
        "granules/" + _granule_name("2020-01-09"),
        "/etc/passwd",
        "missing.nc",
        "notes.txt",
        "escape.nc",  # a link inside the folder to a file outside it
    ],
)
def test_resolve_source_refuses_anything_but_an_entry(folder, name):
    with pytest.raises(ValueError, match="data source"):
        resolve_source(folder, name)


def test_resolve_source_refuses_an_absolute_path(folder):
    with pytest.raises(ValueError, match="data source"):
        resolve_source(folder, str(folder / "area.nc"))
    with pytest.raises(ValueError, match="data source"):
        resolve_source(folder, os.path.join(str(folder.parent), "outside.nc"))


def test_load_source_refuses_a_path_outside_the_folder(folder, scenario):
    with pytest.raises(ValueError, match="data source"):
        load_source(scenario, folder, "../outside.nc")


# --------------------------------------------------------------------------- observations


def test_replace_observations_keeps_covariates_and_takes_shared_cells(scenario):
    # Another scenario four cells south-east and half a month later: it shares an 8 x 8 corner
    # of cells and the days 2020-01-16..2020-02-29 with ``scenario``.
    box = GridBox(row0=BOX.row0 + 4, col0=BOX.col0 + 4, nrows=12, ncols=12)
    cfg = ScenarioConfig(seed=5, start="2020-01-16", end="2020-03-31", box=box, n_stations=2)
    cube = make_scenario(cfg)
    before = scenario[TARGET].copy(deep=True)

    out = replace_observations(scenario, cube)

    assert out[TARGET].dims == scenario[TARGET].dims
    assert out[TARGET].dtype == scenario[TARGET].dtype
    for name in scenario.data_vars:
        if name != TARGET:
            xr.testing.assert_identical(out[name], scenario[name])
    xr.testing.assert_identical(scenario[TARGET], before)  # the input is left alone
    shared = dict(time=slice("2020-01-16", "2020-02-29"), y=slice(4, 12), x=slice(4, 12))
    new = out[TARGET].sel(time=shared["time"]).isel(y=shared["y"], x=shared["x"])
    ref = cube[TARGET].sel(time=shared["time"]).isel(y=slice(0, 8), x=slice(0, 8))
    np.testing.assert_array_equal(new.values, ref.values)
    assert np.isfinite(new.values).any()
    # Everything outside the shared cells and days is NaN, whatever ``scenario`` observed there.
    inside = np.zeros(out[TARGET].shape, bool)
    days = pd.DatetimeIndex(out["time"].values) >= "2020-01-16"
    inside[np.ix_(days, np.arange(4, 12), np.arange(4, 12))] = True
    assert np.isnan(out[TARGET].values[~inside]).all()
    assert np.isfinite(scenario[TARGET].values[~inside]).any()


def test_replace_observations_refuses_data_that_share_nothing(scenario):
    far = GridBox(row0=BOX.row0 + 100, col0=BOX.col0 + 100, nrows=4, ncols=4)
    cube = make_scenario(ScenarioConfig(start="2020-01-01", end="2020-01-31", box=far))
    with pytest.raises(ValueError, match="no cell"):
        replace_observations(scenario, cube)
    later = make_scenario(ScenarioConfig(start="2021-01-01", end="2021-01-31", box=BOX))
    with pytest.raises(ValueError, match="no day"):
        replace_observations(scenario, later)


# --------------------------------------------------------------------------- loading


def test_load_source_contract_replaces_the_data(tmp_path, scenario):
    other = scenario.isel(y=slice(0, 6), time=slice(10, 40))
    other[TARGET] = other[TARGET] * 0.5
    write_netcdf(other, tmp_path / "area.nc")

    ds, report = load_source(scenario, tmp_path, "area.nc")

    assert dict(ds.sizes) == dict(other.sizes)
    np.testing.assert_array_equal(ds[TARGET].values, other[TARGET].values)
    assert report.read == ["area.nc"]


def test_load_source_names_a_broken_contract_file(tmp_path, scenario):
    _touch(tmp_path / "broken.nc", b"\x89HDF garbage, not NetCDF at all" * 10)
    with pytest.raises(ValueError, match=r"broken\.nc"):
        load_source(scenario, tmp_path, "broken.nc")
    # A readable NetCDF file that does not follow the contract is refused too, naming the file.
    xr.Dataset({"a": ("t", [1.0, 2.0])}).to_netcdf(tmp_path / "plain.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match=r"plain\.nc"):
        load_source(scenario, tmp_path, "plain.nc")


def test_load_source_csv_attaches_the_stations(tmp_path, scenario):
    lat, lon = scenario["lat"].values, scenario["lon"].values
    rows = [
        ("S1", "2020-01-05T10:00:00", lat[2, 3], lon[2, 3], 0.05, 0.20),
        ("S1", "2020-01-05T22:00:00", lat[2, 3], lon[2, 3], 0.05, 0.30),
        ("S1", "2020-01-05T12:00:00", lat[2, 3], lon[2, 3], 0.10, 0.70),  # too deep: unused
        ("S2", "2020-02-10T12:00:00Z", lat[7, 9], lon[7, 9], 0.05, 0.15),
        ("S2", "2019-12-31T12:00:00", lat[7, 9], lon[7, 9], 0.05, 0.35),  # before the data
        ("FAR", "2020-01-10T12:00:00", 35.0, -90.0, 0.05, 0.25),  # off the grid: dropped
    ]
    text = "station,time,lat,lon,depth,soil_moisture\n" + "".join(
        f"{s},{t},{la:.6f},{lo:.6f},{d},{v}\n" for s, t, la, lo, d, v in rows
    )
    (tmp_path / "txson.csv").write_text(text)
    old_stations = [str(s) for s in scenario["station"].values]

    ds, _report = load_source(scenario, tmp_path, "txson.csv")

    assert sorted(str(s) for s in ds["station"].values) == ["S1", "S2"]
    assert "FAR" in ds.attrs["stations_outside_grid"]
    np.testing.assert_array_equal(ds["time"].values, scenario["time"].values)
    insitu = ds[INSITU].to_series()
    assert insitu[("S1", pd.Timestamp("2020-01-05"))] == pytest.approx(0.25)
    assert insitu[("S2", pd.Timestamp("2020-02-10"))] == pytest.approx(0.15)
    assert int(np.isfinite(ds[INSITU].values).sum()) == 2
    rows_, cols_ = station_cells(ds)
    names = [str(s) for s in ds["station"].values]
    assert (rows_[names.index("S1")], cols_[names.index("S1")]) == (2, 3)
    # The grid variables are the current data's, and the current data keep their own stations.
    for name, var in scenario.data_vars.items():
        if "station" not in var.dims:
            xr.testing.assert_identical(ds[name], var)
    assert [str(s) for s in scenario["station"].values] == old_stations


def test_load_source_granules_replace_the_observations(tmp_path, scenario):
    values = 0.1 + 0.01 * np.arange(12).reshape(3, 4)
    (tmp_path / "granules").mkdir()
    rows, cols = np.arange(BOX.row0, BOX.row0 + 3), np.arange(BOX.col0 + 2, BOX.col0 + 6)
    _write_granule(tmp_path / "granules" / _granule_name("2020-01-09"), rows, cols, values)

    ds, report = load_source(scenario, tmp_path, "granules")

    assert len(report.read) == 1
    day = ds[TARGET].sel(time="2020-01-09").values
    np.testing.assert_allclose(day[0:3, 2:6], values, rtol=1e-6)
    observed = np.isfinite(ds[TARGET].values)
    assert observed.sum() == values.size
    for name in scenario.data_vars:
        if name != TARGET:
            xr.testing.assert_identical(ds[name], scenario[name])


def test_load_source_reads_every_granule_suffix_it_lists(tmp_path, scenario):
    values = np.full((2, 2), 0.2)
    (tmp_path / "granules").mkdir()
    rows, cols = np.arange(BOX.row0, BOX.row0 + 2), np.arange(BOX.col0, BOX.col0 + 2)
    name = _granule_name("2020-01-09").replace(".h5", ".he5")
    _write_granule(tmp_path / "granules" / name, rows, cols, values)
    assert list_sources(tmp_path) == [Source("granules", "granules")]

    ds, _report = load_source(scenario, tmp_path, "granules")

    np.testing.assert_allclose(ds[TARGET].sel(time="2020-01-09").values[:2, :2], values)


def test_every_route_reads_the_same_granules_of_a_folder(tmp_path, scenario):
    """The app's data folder, a recipe and the CLI's reader (``read_smap_cube`` of the folder)
    take the same files of one folder: every HDF5 spelling, any case, and no sidecar file."""
    folder = tmp_path / "granules"
    folder.mkdir()
    rows, cols = np.arange(BOX.row0, BOX.row0 + 2), np.arange(BOX.col0, BOX.col0 + 2)
    days = ["2020-01-09", "2020-01-21", "2020-02-02", "2020-02-14"]
    suffixes = [*GRANULE_SUFFIXES, ".HDF5"]
    assert set(GRANULE_SUFFIXES) == {".h5", ".he5", ".hdf5"}
    for k, (day, suffix) in enumerate(zip(days, suffixes, strict=True)):
        name = _granule_name(day).replace(".h5", suffix)
        _write_granule(folder / name, rows, cols, np.full((2, 2), 0.1 + 0.05 * k))
    (folder / "SMAP_L2_SM_SP.h5.xml").write_text("<sidecar/>")  # read by no route
    (tmp_path / "area.toml").write_text(
        'region = "txson"\nstart = "2020-01-01"\nend = "2020-02-29"\n'
        '[smap]\ngranules = "granules/"\n'
    )
    assert path_kind(folder) == "granules"

    app, app_report = load_source(scenario, tmp_path, "granules")
    cli, cli_report = read_smap_cube(folder, region="txson", start="2020-01-01", end="2020-02-29")
    built, built_report = build_from_recipe(tmp_path / "area.toml")

    granules = sorted(p.name for p in folder.iterdir() if p.suffix != ".xml")
    for report in (app_report, cli_report, built_report):
        assert sorted(os.path.basename(p) for p in report.read) == granules
        assert report.skipped == []
    np.testing.assert_array_equal(built[TARGET].values, cli[TARGET].values)
    np.testing.assert_array_equal(app[TARGET].values, cli[TARGET].values[:, :12, :12])
    for k, day in enumerate(days):
        assert app[TARGET].sel(time=day).values[0, 0] == pytest.approx(0.1 + 0.05 * k)
