"""Covariate readers: Daymet NetCDF and static rasters onto the 1 km grid, from tiny files."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from pyproj import CRS, Proj, Transformer
from rasterio.transform import from_origin

from stimpute_core.data import contract
from stimpute_core.data.grid import TXSON_BOX, grid_coords
from stimpute_core.data.readers import ReaderError
from stimpute_core.data.readers.covariates import (
    NLCD_TO_IGBP,
    land_cover_from_raster,
    read_daymet,
    read_static_covariates,
    read_static_raster,
    terrain_from_elevation,
)
from stimpute_core.data.terrain import slope_aspect

LCC_ATTRS = {
    "grid_mapping_name": "lambert_conformal_conic",
    "longitude_of_central_meridian": -100.0,
    "latitude_of_projection_origin": 42.5,
    "standard_parallel": [25.0, 60.0],
    "false_easting": 0.0,
    "false_northing": 0.0,
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
}
UNITS = {"prcp": "mm/day", "tmax": "degrees C", "tmin": "degrees C", "srad": "W/m2", "vp": "Pa"}
OFFSET = {"prcp": 0.0, "tmax": 10.0, "tmin": 20.0, "srad": 30.0, "vp": 40.0}


@pytest.fixture(scope="module")
def grid() -> xr.Dataset:
    return xr.Dataset(coords=grid_coords(TXSON_BOX))


@functools.cache
def _lcc_transformer() -> Transformer:
    return Transformer.from_crs("EPSG:4326", CRS.from_cf(LCC_ATTRS), always_xy=True)


def _lcc_centres(grid: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Target cell centres in Daymet's LCC, km."""
    x, y = _lcc_transformer().transform(grid["lon"].values, grid["lat"].values)
    return np.asarray(x) / 1000.0, np.asarray(y) / 1000.0


def _lcc_axes(grid: xr.Dataset, margin_km: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """1 km LCC axes (km) around the TxSON box with a margin: x ascending, y descending (Daymet)."""
    cx, cy = _lcc_centres(grid)
    x = np.arange(np.floor(cx.min() - margin_km), np.ceil(cx.max() + margin_km) + 1) + 0.25
    y = np.arange(np.ceil(cy.max() + margin_km), np.floor(cy.min() - margin_km) - 1, -1.0) - 0.25
    return x, y


def _field(name: str, x_km: np.ndarray, y_km: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Known linear function of LCC x, y (km), shifted per day ``k`` and per variable."""
    return 500.0 + OFFSET[name] + 0.3 * x_km - 0.2 * y_km + 0.5 * k


def _write_lcc(path, grid, names, times, *, units="km", x=None, y=None) -> None:
    if x is None:
        x, y = _lcc_axes(grid)
    k = np.arange(len(times), dtype=float)[:, None, None]
    data_vars = {
        n: (
            ("time", "y", "x"),
            _field(n, x[None, None, :], y[None, :, None], k).astype(np.float32),
            {"units": UNITS[n], "grid_mapping": "lambert_conformal_conic"},
        )
        for n in names
    }
    data_vars["lambert_conformal_conic"] = ((), np.int16(0), LCC_ATTRS)
    scale = 1.0 if units == "km" else 1000.0
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": times,
            "x": ("x", x * scale, {"units": units}),
            "y": ("y", y * scale, {"units": units}),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")


def _noon(start: str, periods: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq="D") + pd.Timedelta(hours=12)


# --------------------------------------------------------------------------- Daymet


@pytest.mark.parametrize("units", ["km", "m"])
def test_daymet_lcc_bilinear_reproduces_linear_field(tmp_path, grid, units):
    times = _noon("2016-07-01", 3)
    paths = []
    for name in ("prcp", "tmax", "tmin", "srad", "vp"):  # one file per variable, as Daymet ships
        paths.append(tmp_path / f"daymet_v4_daily_na_{name}_2016.nc")
        _write_lcc(paths[-1], grid, [name], times, units=units)
    ds, report = read_daymet(paths, grid)
    assert len(report.read) == 5 and not report.skipped
    assert ds.sizes == {"time": 3, "y": TXSON_BOX.nrows, "x": TXSON_BOX.ncols}
    assert list(ds.indexes["time"]) == list(pd.date_range("2016-07-01", periods=3))
    cx, cy = _lcc_centres(grid)
    for name in UNITS:
        assert ds[name].dims == ("time", "y", "x")
        assert ds[name].attrs["units"] == UNITS[name]
        for k in range(3):
            np.testing.assert_allclose(ds[name].values[k], _field(name, cx, cy, k), rtol=1e-6)
    np.testing.assert_array_equal(ds["lat"].values, grid["lat"].values)


def test_daymet_multivariable_file_and_latlon_layout(tmp_path, grid):
    times = _noon("2017-03-01", 2)
    _write_lcc(tmp_path / "lcc.nc", grid, ["prcp", "tmax", "tmin"], times)
    # A regular lat/lon file (latitude descending) with a linear function of lon/lat.
    lon = np.arange(-99.05, -98.49, 0.01)
    lat = np.arange(30.55, 30.05, -0.01)
    k = np.arange(2.0)[:, None, None]
    srad = 200.0 + 10.0 * (lon[None, None, :] + 99.0) - 20.0 * (lat[None, :, None] - 30.0) + k
    ll = xr.Dataset(
        {
            "srad": (("time", "lat", "lon"), srad, {"units": "W/m2"}),
            "vp": (("time", "lat", "lon"), srad * 5.0, {"units": "Pa"}),
        },
        coords={"time": times, "lat": lat, "lon": lon},
    )
    ll.to_netcdf(tmp_path / "latlon.nc", engine="h5netcdf")
    ds, report = read_daymet([tmp_path / "lcc.nc", tmp_path / "latlon.nc"], grid)
    assert len(report.read) == 2
    want = 200.0 + 10.0 * (grid["lon"].values + 99.0) - 20.0 * (grid["lat"].values - 30.0)
    for d in range(2):
        np.testing.assert_allclose(ds["srad"].values[d], want + d, rtol=1e-6)
        np.testing.assert_allclose(ds["vp"].values[d], 5.0 * (want + d), rtol=1e-6)
    cx, cy = _lcc_centres(grid)
    np.testing.assert_allclose(ds["tmin"].values[1], _field("tmin", cx, cy, 1), rtol=1e-6)


def test_daymet_leap_year_fills_dec31_from_dec30(tmp_path, grid):
    times = _noon("2016-01-01", 365)  # Daymet 2016: 1 Jan .. 30 Dec, 31 Dec dropped
    _write_lcc(tmp_path / "prcp_2016.nc", grid, ["prcp"], times)
    ds, _ = read_daymet(tmp_path / "prcp_2016.nc", grid, variables=["prcp"])
    assert ds.sizes["time"] == 366
    assert ds.indexes["time"][-1] == pd.Timestamp("2016-12-31")
    np.testing.assert_array_equal(
        ds["prcp"].sel(time="2016-12-31").values, ds["prcp"].sel(time="2016-12-30").values
    )
    assert "2016-12-31" in ds.attrs["filled_days"]
    cx, cy = _lcc_centres(grid)
    np.testing.assert_allclose(
        ds["prcp"].sel(time="2016-12-31").values, _field("prcp", cx, cy, 364), rtol=1e-6
    )
    # An explicit period past the data: the filled 31 Dec, then NaN days.
    ds2, _ = read_daymet(
        tmp_path / "prcp_2016.nc", grid, variables=["prcp"], start="2016-12-29", end="2017-01-02"
    )
    assert ds2.sizes["time"] == 5
    assert np.isfinite(ds2["prcp"].sel(time="2016-12-31").values).all()
    assert np.isnan(ds2["prcp"].sel(time=slice("2017-01-01", None)).values).all()


def test_daymet_missing_variable_unreadable_file_and_no_coverage(tmp_path, grid):
    times = _noon("2016-07-01", 2)
    _write_lcc(tmp_path / "prcp.nc", grid, ["prcp"], times)
    (tmp_path / "broken.nc").write_text("not a netcdf file")
    with pytest.raises(ReaderError, match="vp"):
        read_daymet([tmp_path / "prcp.nc", tmp_path / "broken.nc"], grid, variables=["prcp", "vp"])
    _, report = read_daymet(
        [tmp_path / "prcp.nc", tmp_path / "broken.nc"], grid, variables=["prcp"]
    )
    assert report.read == [str(tmp_path / "prcp.nc")]
    assert report.skipped[0][0] == str(tmp_path / "broken.nc")
    # A tile that stops 10 km short of the box's eastern edge.
    x, y = _lcc_axes(grid)
    _write_lcc(tmp_path / "west.nc", grid, ["prcp"], times, x=x[: len(x) - 13], y=y)
    with pytest.raises(ReaderError, match=r"west\.nc.*does not cover the target grid"):
        read_daymet(tmp_path / "west.nc", grid, variables=["prcp"])


# --------------------------------------------------------------------------- static rasters

RAMP_GRAD = (1e-3, 5e-4)  # per metre of UTM easting and northing


def _utm_ramp_tif(path, grid, *, res=100.0, margin=3000.0, nodata_box=None):
    """GeoTIFF in UTM 14N with a linear ramp; returns the ramp evaluated at the target centres."""
    tr = Transformer.from_crs("EPSG:4326", "EPSG:32614", always_xy=True)
    E, N = (np.asarray(a) for a in tr.transform(grid["lon"].values, grid["lat"].values))
    e0 = np.floor((E.min() - margin) / res) * res
    n0 = np.ceil((N.max() + margin) / res) * res
    nx = int(np.ceil((E.max() + margin - e0) / res))
    ny = int(np.ceil((n0 - N.min() + margin) / res))
    e = e0 + res / 2 + res * np.arange(nx)
    n = n0 - res / 2 - res * np.arange(ny)

    def ramp(ee, nn):
        return 300.0 + RAMP_GRAD[0] * (ee - e0) + RAMP_GRAD[1] * (nn - n0)

    values = ramp(e[None, :], n[:, None])
    if nodata_box is not None:
        (c0, c1), (r0, r1) = nodata_box
        values[int(r0 * ny) : int(r1 * ny), int(c0 * nx) : int(c1 * nx)] = -9999.0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=ny,
        width=nx,
        count=1,
        dtype="float64",
        crs="EPSG:32614",
        transform=from_origin(e0, n0, res, res),
        nodata=-9999.0,
    ) as dst:
        dst.write(values, 1)
        dst.set_band_unit(1, "m")
    return ramp(E, N)


@pytest.mark.parametrize("method", ["bilinear", "average"])
def test_geotiff_ramp_bilinear_and_average(tmp_path, grid, method):
    want = _utm_ramp_tif(tmp_path / "dem.tif", grid)
    out = read_static_raster(tmp_path / "dem.tif", grid, method=method)
    assert out.dims == ("y", "x") and out.shape == (TXSON_BOX.nrows, TXSON_BOX.ncols)
    assert out.attrs["units"] == "m"
    # A ramp's bilinear value and its mean over a cell both equal its value at the cell centre.
    # What is left is GDAL's approximate coordinate transformer (error threshold 0.125 source
    # pixels = 12.5 m), i.e. at most 12.5 m times the ramp's gradient.
    tol = 0.125 * 100.0 * np.hypot(*RAMP_GRAD)
    np.testing.assert_allclose(out.values, want, atol=tol, rtol=0)


def test_average_of_coarse_raster_falls_back_to_bilinear(tmp_path, grid):
    _utm_ramp_tif(tmp_path / "coarse.tif", grid, res=5000.0, margin=12000.0)
    avg = read_static_raster(tmp_path / "coarse.tif", grid, method="average")
    bil = read_static_raster(tmp_path / "coarse.tif", grid, method="bilinear")
    # 5 km pixels: about 1 cell in 25 holds a pixel centre; all others take the bilinear value.
    same = np.isclose(avg.values, bil.values, rtol=0, atol=1e-9)
    assert 0.85 < same.mean() < 1.0


def test_nodata_is_nan(tmp_path, grid):
    _utm_ramp_tif(tmp_path / "holes.tif", grid, nodata_box=((0.0, 0.5), (0.0, 1.0)))
    out = read_static_raster(tmp_path / "holes.tif", grid, method="average")
    west, east = out.values[:, :10], out.values[:, -10:]
    assert np.isnan(west).all() and np.isfinite(east).all()
    assert (out.values[np.isfinite(out.values)] > 0).all()  # no -9999 mixed in


def _latlon_tif(
    path, codes_fn, *, res=0.001, bounds=(-99.1, 30.0, -98.45, 30.6), dtype="uint8", nodata=0
):
    west, south, east, north = bounds
    nx, ny = round((east - west) / res), round((north - south) / res)
    lon = west + res * (np.arange(nx) + 0.5)
    lat = north - res * (np.arange(ny) + 0.5)
    codes = codes_fn(lon[None, :], lat[:, None]).astype(dtype)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=ny,
        width=nx,
        count=1,
        dtype=dtype,
        crs="EPSG:4326",
        transform=from_origin(west, north, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(codes, 1)


LON_SPLIT, LAT_SPLIT = -98.78, 30.30


def _blocks(lon, lat, a=10, b=9, c=12):
    """Codes ``a`` west / ``b`` east of LON_SPLIT, ``c`` in the south-west below LAT_SPLIT."""
    west = np.broadcast_to(lon < LON_SPLIT, np.broadcast_shapes(lon.shape, lat.shape))
    south = np.broadcast_to(lat < LAT_SPLIT, west.shape)
    return np.where(west & south, c, np.where(west, a, b))


def _inside(grid, margin=0.012):
    """Target cells whose whole 1 km footprint is off the block boundaries (half-diagonal < 0.0075 deg)."""
    lon, lat = grid["lon"].values, grid["lat"].values
    return (np.abs(lon - LON_SPLIT) > margin) & (
        (lon > LON_SPLIT) | (np.abs(lat - LAT_SPLIT) > margin)
    )


@pytest.mark.parametrize("method", ["mode", "nearest"])
def test_categorical_blocks_and_land_cover_flags(tmp_path, grid, method):
    _latlon_tif(tmp_path / "igbp.tif", _blocks)
    lc = land_cover_from_raster(tmp_path / "igbp.tif", grid, method=method)
    want = _blocks(grid["lon"].values, grid["lat"].values)
    inside = _inside(grid)
    assert inside.sum() > 500
    np.testing.assert_array_equal(lc.values[inside], want[inside])
    assert lc.dtype == np.int16 and lc.name == "land_cover"
    assert list(lc.attrs["flag_values"]) == [9, 10, 12]
    assert lc.attrs["flag_meanings"] == "savannas grasslands croplands"
    raw = read_static_raster(tmp_path / "igbp.tif", grid, kind="categorical", method=method)
    np.testing.assert_array_equal(raw.values[inside], want[inside])


def test_land_cover_nodata_is_unclassified(tmp_path, grid):
    def with_hole(lon, lat):  # nodata (0) in the north-east corner
        return np.where((lon > -98.70) & (lat > 30.40), 0, _blocks(lon, lat))

    _latlon_tif(tmp_path / "lc.tif", with_hole)
    lc = land_cover_from_raster(tmp_path / "lc.tif", grid)
    lon, lat = grid["lon"].values, grid["lat"].values
    assert (lc.values[(lon > -98.69) & (lat > 30.41)] == 255).all()
    # Cells straddling the hole's edge take the majority of their valid pixels.
    assert (lc.values[(np.abs(lon + 98.70) < 0.003) & (lat > 30.42)] == 9).all()
    assert list(lc.attrs["flag_values"]) == [9, 10, 12, 255]
    assert lc.attrs["flag_meanings"].endswith("unclassified")


def test_land_cover_nlcd_crosswalk_and_refusal(tmp_path, grid):
    # NLCD: grassland (71) west, pasture (81) east, evergreen forest (42) in the south-west.
    _latlon_tif(tmp_path / "nlcd.tif", lambda lo, la: _blocks(lo, la, a=71, b=81, c=42))
    lc = land_cover_from_raster(tmp_path / "nlcd.tif", grid, codes="nlcd")
    inside = _inside(grid)
    want = _blocks(grid["lon"].values, grid["lat"].values, a=10, b=10, c=NLCD_TO_IGBP[42])
    np.testing.assert_array_equal(lc.values[inside], want[inside])
    assert set(lc.attrs["flag_values"].tolist()) == {1, 10}
    with pytest.raises(ReaderError, match="nlcd"):
        land_cover_from_raster(tmp_path / "nlcd.tif", grid)


def test_netcdf_static_on_latlon(tmp_path, grid):
    res = 0.005
    lon = np.arange(-99.1, -98.45, res) + res / 2
    lat = np.arange(30.0, 30.6, res) + res / 2  # ascending, as many NetCDF files store it

    def clay(lo, la):
        return 20.0 + 10.0 * (lo + 98.8) + 5.0 * (la - 30.3)

    ds = xr.Dataset(
        {"clay": (("lat", "lon"), clay(lon[None, :], lat[:, None]), {"units": "%"})},
        coords={"lat": lat, "lon": lon},
    )
    ds.to_netcdf(tmp_path / "clay.nc", engine="h5netcdf")
    out = read_static_raster(tmp_path / "clay.nc", grid)
    assert out.name == "clay" and out.attrs["units"] == "%"
    # GDAL's approximate transformer: 0.125 pixel (0.000625 deg) times the gradient per degree.
    tol = 0.125 * res * np.hypot(10.0, 5.0)
    want = clay(grid["lon"].values, grid["lat"].values)
    np.testing.assert_allclose(out.values, want, atol=tol, rtol=0)


def test_netcdf_static_on_lcc_km(tmp_path, grid):
    x, y = _lcc_axes(grid)
    elev = 400.0 + 2.0 * x[None, :] - 1.0 * y[:, None]
    ds = xr.Dataset(
        {
            "elevation": (("y", "x"), elev, {"units": "m", "grid_mapping": "lcc"}),
            "lcc": ((), np.int16(0), LCC_ATTRS),
        },
        coords={"x": ("x", x, {"units": "km"}), "y": ("y", y, {"units": "km"})},
    )
    ds.to_netcdf(tmp_path / "elev.nc", engine="h5netcdf")
    out = read_static_raster(tmp_path / "elev.nc", grid, variable="elevation")
    cx, cy = _lcc_centres(grid)
    # 1 km source pixels: 0.125 pixel (125 m) times the gradient (2.24 m per km).
    np.testing.assert_allclose(out.values, 400.0 + 2.0 * cx - 1.0 * cy, atol=0.3, rtol=0)


def test_raster_not_covering_region_and_not_a_raster(tmp_path, grid):
    _latlon_tif(tmp_path / "west.tif", _blocks, bounds=(-99.1, 30.0, -98.8, 30.6))
    with pytest.raises(ReaderError, match=r"west\.tif.*does not cover the region") as err:
        read_static_raster(tmp_path / "west.tif", grid)
    assert "-98.8" in str(err.value) and "lon -98.9" in str(err.value)
    (tmp_path / "notes.tif").write_text("hello")
    with pytest.raises(ReaderError, match="not a raster"):
        read_static_raster(tmp_path / "notes.tif", grid)
    xr.Dataset({"n": ("k", np.arange(3.0))}).to_netcdf(tmp_path / "table.nc", engine="h5netcdf")
    with pytest.raises(ReaderError, match="not a raster"):
        read_static_raster(tmp_path / "table.nc", grid)


def test_aspect_raster_is_averaged_as_an_angle(tmp_path, grid):
    # Columns alternate between 1 and 359 degrees: the mean direction is north (0), not 180.
    def columns(lo, la):
        return np.where(np.arange(lo.shape[1])[None, :] % 2 + 0 * la, 359.0, 1.0)

    _latlon_tif(tmp_path / "aspect.tif", columns, dtype="float32", nodata=-9999.0)
    out = read_static_raster(tmp_path / "aspect.tif", grid, method="average", circular=True)
    assert np.minimum(out.values, 360.0 - out.values).max() < 0.5


# --------------------------------------------------------------------------- terrain


@pytest.mark.parametrize(
    ("east", "north", "aspect"),
    [
        (0.1, 0.0, 270.0),
        (-0.1, 0.0, 90.0),
        (0.0, 0.1, 180.0),
        (0.0, -0.1, 0.0),
        (0.05, 0.05, 225.0),
    ],
)
def test_slope_aspect_of_tilted_plane(east, north, aspect):
    dx, dy = 1000.0, -1000.0  # rows run north to south
    e = dx * np.arange(6)[None, :]
    n = dy * np.arange(5)[:, None]
    z = 400.0 + east * e + north * n
    slope, asp = slope_aspect(z, dx, dy)
    np.testing.assert_allclose(slope, np.degrees(np.arctan(np.hypot(east, north))), atol=1e-9)
    np.testing.assert_allclose(asp, aspect, atol=1e-9)
    flat_slope, flat_aspect = slope_aspect(np.full((3, 4), 5.0), dx, dy)
    assert (flat_slope == 0).all() and (flat_aspect == 0).all()


def test_slope_aspect_matches_synthetic_scenario_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(500.0, 30.0, (8, 9))
    dzdy, dzdx = np.gradient(z, 1000.0)  # scenario.py: rows run north to south
    slope, aspect = slope_aspect(z, 1000.0, -1000.0)
    np.testing.assert_allclose(slope, np.degrees(np.arctan(np.hypot(dzdx, dzdy))))
    np.testing.assert_allclose(aspect, (np.degrees(np.arctan2(-dzdx, dzdy)) + 360.0) % 360.0)


def test_terrain_from_elevation_uses_ground_distance(grid):
    x = grid["x"].values
    elev = xr.DataArray(
        400.0 + 0.01 * (x - x[0])[None, :] * np.ones((grid.sizes["y"], 1)),
        dims=("y", "x"),
        coords=grid.coords,
    )
    ds = terrain_from_elevation(elev)
    k = Proj("EPSG:6933").get_factors(grid["lon"].values, grid["lat"].values).parallel_scale
    # 0.01 m per grid metre = 0.01 k per ground metre (k ~ 1.003 at TxSON).
    np.testing.assert_allclose(ds["slope"].values, np.degrees(np.arctan(0.01 * k)), rtol=1e-9)
    np.testing.assert_allclose(ds["aspect"].values, 270.0)
    assert ds["slope"].attrs["units"] == "degrees"


# --------------------------------------------------------------------------- assembling


def test_read_static_covariates_passes_the_contract(tmp_path, grid):
    _utm_ramp_tif(tmp_path / "dem.tif", grid)
    lon = np.arange(-99.1, -98.45, 0.005)
    lat = np.arange(30.6, 30.0, -0.005)
    soil = xr.Dataset(
        {
            "clay": (("lat", "lon"), np.full((lat.size, lon.size), 25.0), {"units": "%"}),
            "sand": (("lat", "lon"), np.full((lat.size, lon.size), 45.0), {"units": "%"}),
        },
        coords={"lat": lat, "lon": lon},
    )
    soil.to_netcdf(tmp_path / "soil.nc", engine="h5netcdf")
    _latlon_tif(tmp_path / "lc.tif", _blocks)
    static = read_static_covariates(
        {
            "elevation": tmp_path / "dem.tif",
            "clay": (tmp_path / "soil.nc", {"variable": "clay"}),
            "sand": (tmp_path / "soil.nc", {"variable": "sand"}),
            "land_cover": tmp_path / "lc.tif",
        },
        TXSON_BOX,
    )
    assert list(static.data_vars) == ["elevation", "slope", "aspect", "clay", "sand", "land_cover"]
    assert all(static[v].dims == ("y", "x") for v in static.data_vars)
    assert static["elevation"].attrs["units"] == "m" and static["slope"].attrs["units"] == "degrees"
    np.testing.assert_allclose(static["clay"].values, 25.0)
    # The UTM ramp rises towards grid azimuth atan2(1e-3, 5e-4) = 63.4 deg, so it faces 243.4 deg;
    # UTM 14N grid north is within 0.2 deg of true north at 98.8 W.
    np.testing.assert_allclose(static["aspect"].values, 243.43, atol=0.5)
    _, names = contract.covariate_names(static)
    assert names == ["elevation", "slope", "aspect", "clay", "sand"]
    times = pd.date_range("2016-01-01", periods=2)
    sm = np.full((2, *static["elevation"].shape), np.nan, dtype=np.float32)
    sm[0, 0, 0] = 0.2
    full = static.assign(soil_moisture=(("time", "y", "x"), sm, {"units": "m3/m3"})).assign_coords(
        time=times
    )
    contract.validate(full)


def test_covariates_module_reexports_the_readers():
    """The historical path ``readers.covariates`` holds the very objects of the new modules."""
    import importlib

    old = importlib.import_module("stimpute_core.data.readers.covariates")
    homes = [
        importlib.import_module(f"stimpute_core.data.readers.{m}") for m in ["daymet", "rasters"]
    ]
    for name in old.__all__:
        assert any(getattr(m, name, None) is getattr(old, name) for m in homes), name
