"""Region and time-window selection, and station-to-cell matching."""

import numpy as np
import pytest

from stimpute_core.data import parse_region, select_region, select_time, station_cells
from stimpute_core.data.scenario import ScenarioConfig, make_scenario


@pytest.fixture(scope="module")
def ds():
    return make_scenario(ScenarioConfig(seed=1, start="2020-01-01", end="2020-06-30"))


def test_named_region_is_whole_txson_cell(ds):
    assert select_region(ds, "txson").sizes == ds.sizes


def test_box_selects_cells_and_stations_inside(ds):
    box = (-98.80, 30.25, -98.70, 30.35)
    sub = select_region(ds, box)
    lon, lat = sub.lon.values, sub.lat.values
    assert 0 < sub.sizes["x"] < ds.sizes["x"] and 0 < sub.sizes["y"] < ds.sizes["y"]
    # EASE-Grid 2.0 is cylindrical: the bounding rectangle of the cells inside is all inside.
    assert lon.min() >= box[0] and lon.max() <= box[2]
    assert lat.min() >= box[1] and lat.max() <= box[3]
    assert (sub.station_lon >= box[0]).all() and (sub.station_lat <= box[3]).all()
    assert sub.sizes["station"] < ds.sizes["station"]
    assert select_region(ds, "-98.80,30.25,-98.70,30.35").sizes == sub.sizes


def test_box_outside_data_is_a_clear_error(ds):
    with pytest.raises(ValueError, match=r"holds no cell centre.*extent is W=-98\.9"):
        select_region(ds, (-100.0, 35.0, -99.5, 35.5))


def test_bad_region_strings():
    with pytest.raises(ValueError, match="named region"):
        parse_region("nowhere")
    with pytest.raises(ValueError, match="W < E"):
        parse_region((-98.0, 30.0, -99.0, 31.0))
    with pytest.raises(ValueError, match="numbers"):
        parse_region("a,b,c,d")


def test_time_window(ds):
    sub = select_time(ds, "2020-02-01", "2020-02-29")
    assert sub.sizes["time"] == 29
    with pytest.raises(ValueError, match=r"holds no day.*2020-01-01\.\.2020-06-30"):
        select_time(ds, "2021-01-01", "2021-02-01")
    with pytest.raises(ValueError, match="end is before start"):
        select_time(ds, "2020-03-01", "2020-02-01")
    with pytest.raises(ValueError, match="ISO dates"):
        select_time(ds, "yesterday", None)


def test_station_cells_contain_stations(ds):
    iy, ix = station_cells(ds)
    assert (iy >= 0).all() and (ix >= 0).all()
    half = 0.5 * 1000.89502334956
    from stimpute_core.data.grid import lonlat_to_xy

    sx, sy = lonlat_to_xy(ds.station_lon.values, ds.station_lat.values)
    assert np.all(np.abs(sx - ds.x.values[ix]) <= half + 1e-6)
    assert np.all(np.abs(sy - ds.y.values[iy]) <= half + 1e-6)
