"""End to end: a recipe of tiny real-layout files becomes one contract Dataset."""

import re

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from test_readers_covariates import _lcc_centres, _noon, _utm_ramp_tif, _write_lcc
from test_readers_smap import granule_name, l3_name, write_granule, write_spl3smp

from stimpute_core.cli import main
from stimpute_core.data import station_cells, validate
from stimpute_core.data.grid import TXSON_BOX, grid_coords
from stimpute_core.data.readers import ReaderError
from stimpute_core.data.readers.build import build_from_recipe, load_recipe
from stimpute_core.data.zarr_io import write_zarr

ROWS = np.arange(TXSON_BOX.row0, TXSON_BOX.row0 + 36)
COLS = np.arange(TXSON_BOX.col0, TXSON_BOX.col0 + 36)


def _land_cover_tif(path):
    """IGBP land cover on lat/lon: grassland (10) with savanna (9) in the northern half."""
    lon0, lat1, res = -99.1, 30.6, 0.002
    ny, nx = 300, 350
    codes = np.full((ny, nx), 10, np.uint8)
    lat = lat1 - res * (np.arange(ny) + 0.5)
    codes[lat > 30.33] = 9
    with rasterio.open(
        path, "w", driver="GTiff", height=ny, width=nx, count=1, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(lon0, lat1, res, res), nodata=0,
    ) as dst:  # fmt: skip
        dst.write(codes, 1)


@pytest.fixture()
def recipe(tmp_path):
    grid = xr.Dataset(coords=grid_coords(TXSON_BOX))
    (tmp_path / "granules").mkdir()
    for k, day in enumerate(["2020-02-02", "2020-02-05"]):
        values = 0.1 + 0.01 * k + 0.0001 * np.arange(36 * 36).reshape(36, 36)
        write_granule(tmp_path / "granules" / granule_name(day), ROWS, COLS, values)
    (tmp_path / "granules" / granule_name("2020-02-07")).write_bytes(b"not hdf5 at all")
    (tmp_path / "granules" / "README.xml").write_text("<sidecar/>")  # ignored: not .h5
    (tmp_path / "l3").mkdir()
    write_spl3smp(tmp_path / "l3" / l3_name("2020-02-03"), am={(100, 217): 0.22}, pm={})
    (tmp_path / "daymet").mkdir()
    _write_lcc(tmp_path / "daymet" / "daymet_2020.nc", grid,
               ["prcp", "tmax", "tmin", "srad", "vp"], _noon("2020-02-01", 10))  # fmt: skip
    (tmp_path / "rasters").mkdir()
    elev = _utm_ramp_tif(tmp_path / "rasters" / "dem.tif", grid)
    _land_cover_tif(tmp_path / "rasters" / "lc.tif")
    (tmp_path / "txson.csv").write_text(
        "station,time,lat,lon,depth,soil_moisture\n"
        "A1,2020-02-03T10:00:00,30.30,-98.80,0.05,0.20\n"
        "A1,2020-02-03T14:00:00,30.30,-98.80,0.05,0.30\n"
        "B2,2020-02-04T00:00:00,30.40,-98.70,0.05,0.15\n"
    )
    path = tmp_path / "txson.toml"
    path.write_text(
        'region = "txson"\nstart = "2020-02-01"\nend = "2020-02-10"\n'
        '[smap]\ngranules = "granules/"\n'
        '[sm_36km]\nfiles = "l3/"\n'
        '[daymet]\nfiles = ["daymet/*.nc"]\n'
        '[static]\nelevation = "rasters/dem.tif"\nland_cover = "rasters/lc.tif"\n'
        '[insitu]\ncsv = "txson.csv"\n'
    )
    return path, grid, elev


def test_recipe_builds_a_contract_dataset(recipe):
    path, grid, elev = recipe
    ds, report = build_from_recipe(path)
    validate(ds)
    assert ds.sizes["time"] == 10 and (ds.sizes["y"], ds.sizes["x"]) == (36, 36)
    # Granules: values on their days and cells, NaN elsewhere; the corrupt file skipped, listed.
    sm = ds.soil_moisture
    assert sm.sel(time="2020-02-02").values[0, 0] == pytest.approx(0.1)
    assert sm.sel(time="2020-02-05").values[35, 35] == pytest.approx(0.11 + 0.0001 * 1295)
    assert np.isnan(sm.sel(time="2020-02-03")).all()
    assert [p.rsplit("/", 1)[-1] for p, _ in report.skipped] == [granule_name("2020-02-07")]
    # Coarse SMAP on its one day, everywhere in the 36 km cell.
    assert np.allclose(ds.sm_36km.sel(time="2020-02-03"), 0.22)
    assert np.isnan(ds.sm_36km.sel(time="2020-02-04")).all()
    # Daymet: bilinear regridding of a linear field reproduces it at the target centres.
    x_km, y_km = _lcc_centres(grid)
    want = 500.0 + 0.3 * x_km - 0.2 * y_km + 0.5 * 2  # prcp on the third day
    np.testing.assert_allclose(ds.prcp.isel(time=2).values, want, rtol=1e-5)
    # Static: elevation from the ramp (area mean), slope/aspect derived, land cover by majority.
    np.testing.assert_allclose(ds.elevation.values, elev, atol=0.5)
    assert {"slope", "aspect"} <= set(ds.data_vars)
    lc = ds.land_cover.values
    assert set(np.unique(lc)) == {9, 10}
    assert (lc[ds.lat.values > 30.34] == 9).all() and (lc[ds.lat.values < 30.32] == 10).all()
    # Stations: daily means on the right cells.
    assert list(ds.station.values) == ["A1", "B2"]
    assert ds.insitu.sel(station="A1", time="2020-02-03").item() == pytest.approx(0.25)
    iy, ix = station_cells(ds)
    assert (iy >= 0).all() and (ix >= 0).all()


def test_build_command(recipe, tmp_path, capsys):
    path, _, _ = recipe
    out = tmp_path / "built.nc"
    assert main(["data", "build", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "36 x 36 cells" in captured.out and "skipped" in captured.err
    assert main(["data", "info", str(out)]) == 0


def _unordered(text: str) -> list[list[str]]:
    """A description's lines, each list of names in any order (a store lists its variables
    alphabetically, a Dataset built in memory in the order they were added)."""
    return [sorted(re.split(r",\s|\s{2,}", line)) for line in text.splitlines()]


@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")
def test_a_streamed_build_equals_the_in_memory_build(recipe, tmp_path, monkeypatch, capsys):
    """With ``--out X.zarr`` SMAP, SPL3SMP and Daymet are streamed in batches of 3 days (pieces
    of Daymet files across batches): the store holds the in-memory build's bytes."""
    path, _, _ = recipe
    ds, report = build_from_recipe(path)
    write_zarr(ds, tmp_path / "memory.zarr")
    store, streamed = build_from_recipe(path, out=tmp_path / "stream.zarr", batch=3)
    a, b = tmp_path / "memory.zarr", tmp_path / "stream.zarr"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert streamed.summary() == report.summary()
    assert store["prcp"].chunks == ((10,), (36,), (36,))  # lazily opened, in space tiles
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".zarr"))) == [
        "memory.zarr",
        "stream.zarr",
    ]
    monkeypatch.setattr("stimpute_core.data.zarr_stream.BATCH_DAYS", 4)
    assert main(["data", "build", str(path), "--out", str(tmp_path / "cli.zarr")]) == 0
    out = capsys.readouterr().out
    assert main(["data", "build", str(path), "--out", str(tmp_path / "cli.nc")]) == 0
    assert _unordered(capsys.readouterr().out) == _unordered(out) and "36 x 36 cells" in out
    assert main(["data", "info", str(tmp_path / "cli.zarr")]) == 0
    validate(xr.open_zarr(tmp_path / "cli.zarr"))


@pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")
def test_a_streamed_build_that_fails_leaves_nothing(recipe, tmp_path, monkeypatch):
    """The stations fail to attach after every cube was streamed: no store, no temporary."""
    path, _, _ = recipe

    def refuse(cube, stations):
        raise ValueError("stations lack the coordinate(s) station_lat")

    monkeypatch.setattr("stimpute_core.data.readers.stations.attach_stations", refuse)
    with pytest.raises(ReaderError, match=r"txson\.csv.*station_lat"):
        build_from_recipe(path, out=tmp_path / "cube.zarr", batch=3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".zarr"))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('start = "2020-01-01"\nend = "2020-02-01"\n', r"\[smap\] with 'granules' is missing"),
        ('start = "2020-01-01"\n[smap]\ngranules = "g"\n', "'end' is missing"),
        ('start = "2020-01-01"\nend = "2020-01-02"\ncolour = 1\n[smap]\ngranules = "g"\n',
         "unknown key"),
        ("start = 2020-01-01 [", "not valid TOML"),
    ],
)  # fmt: skip
def test_recipe_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ReaderError, match=message) as info:
        load_recipe(path)
    assert "bad.toml" in str(info.value)


def test_smap_and_insitu_commands(recipe, tmp_path, capsys):
    path, _, _ = recipe
    base = path.parent
    cube = tmp_path / "smap.nc"
    argv = ["data", "smap", str(base / "granules"), "--region", "txson", "--start", "2020-02-01",
            "--end", "2020-02-10", "--out", str(cube), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    with xr.open_dataset(cube) as ds:
        assert ds.sizes["time"] == 10 and int(np.isfinite(ds.soil_moisture).sum()) == 2 * 36 * 36
    stations = tmp_path / "stations.nc"
    assert main(["data", "insitu", str(base / "txson.csv"), "--out", str(stations)]) == 0
    assert "2 station(s)" in capsys.readouterr().out
    bad = ["data", "smap", str(base / "granules"), "--region", "0,0,1,1", "--start", "2020-02-01",
           "--end", "2020-02-10", "--out", str(cube)]  # fmt: skip
    assert main(bad) == 2
    assert "no valid soil moisture for region 0,0,1,1" in capsys.readouterr().err
