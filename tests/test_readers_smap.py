"""SMAP readers on tiny HDF5 files written here in the real SPL2SMAP_S / SPL3SMP layouts."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd
import pytest

from stimpute_core.data.contract import validate
from stimpute_core.data.grid import TXSON_BOX, GridBox, cell_centres, grid_coords, xy_to_lonlat
from stimpute_core.data.readers import ReaderError
from stimpute_core.data.readers.smap import (
    granule_date_from_name,
    read_sm_36km,
    read_smap_cube,
    read_spl2smap_s,
    read_spl3smp,
)
from stimpute_core.data.readers.spl2smap_s import FALLBACKS

FILL = -9999.0
INDEX_FILL = 65534
# A 6 x 8 sub-grid of M01 cells straddling the north-west corner of the TxSON box
# (rows 3600..3635, cols 7812..7847): rows 3600..3603 and cols 7812..7817 lie inside.
ROWS = np.arange(3598, 3604)
COLS = np.arange(7810, 7818)
START, END = "2020-02-08", "2020-02-12"


def granule_name(day: str, hhmmss: str = "123512", tile: str = "099W30N") -> str:
    """An SPL2SMAP_S file name with the SMAP time on ``day`` (YYYY-MM-DD)."""
    d = day.replace("-", "")
    return f"SMAP_L2_SM_SP_1AIWDV_{d}T{hhmmss}_{d}T004512_{tile}_R16515_001.h5"


def write_granule(
    path,
    rows=ROWS,
    cols=COLS,
    values=None,
    flags=None,
    *,
    resolution: str = "1km",
    begin: str | None = "2020-02-09T12:35:12.000Z",
    index_fill=None,
    drop: tuple[str, ...] = (),
    drop_group: bool = False,
    valid_range: tuple[float, float] | None = (0.02, 0.5),
    latlon_rows=None,
):
    """Write an SPL2SMAP_S-like granule over the sub-grid ``rows`` x ``cols`` of the global grid.

    ``values``/``flags`` are 2-D (len(rows), len(cols)); ``index_fill`` marks cells whose EASE
    indices hold fill 65534 (their lat/lon stay valid); ``drop`` names fields to leave out.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    shape = (len(rows), len(cols))
    grid = "M01" if resolution == "1km" else "M03"
    if values is None:
        values = np.full(shape, 0.25)
    if flags is None:
        flags = np.zeros(shape, dtype=np.uint16)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    x, y = cell_centres(grid, rr, cc)
    lon, lat = xy_to_lonlat(x, y)
    row_index = rr.astype(np.uint16)
    col_index = cc.astype(np.uint16)
    if index_fill is not None:
        row_index[index_fill] = INDEX_FILL
        col_index[index_fill] = INDEX_FILL
    sfx = f"_{resolution}"
    with h5py.File(path, "w") as f:
        if begin is not None:
            f.create_group("Metadata/Extent").attrs["rangeBeginningDateTime"] = np.bytes_(begin)
        if drop_group:
            f.create_group("Soil_Moisture_Retrieval_Data_something_else")
            return path
        g = f.create_group(f"Soil_Moisture_Retrieval_Data{sfx}")
        fields = {
            f"soil_moisture{sfx}": np.asarray(values, dtype=np.float32),
            f"latitude{sfx}": lat.astype(np.float32),
            f"longitude{sfx}": lon.astype(np.float32),
            f"EASE_row_index{sfx}": row_index,
            f"EASE_column_index{sfx}": col_index,
            f"retrieval_qual_flag{sfx}": np.asarray(flags, dtype=np.uint16),
        }
        if latlon_rows is not None:  # a field of another shape
            fields[f"latitude{sfx}"] = fields[f"latitude{sfx}"][:latlon_rows]
        for name, data in fields.items():
            if name in drop:
                continue
            d = g.create_dataset(name, data=data)
            if data.dtype.kind == "f":
                d.attrs["_FillValue"] = np.float32(FILL)
            else:
                d.attrs["_FillValue"] = np.uint16(INDEX_FILL)
        sm = g.get(f"soil_moisture{sfx}")
        if sm is not None:
            sm.attrs["units"] = np.bytes_("cm3/cm3")
            if valid_range is not None:
                sm.attrs["valid_min"] = np.float32(valid_range[0])
                sm.attrs["valid_max"] = np.float32(valid_range[1])
    return path


def ramp(shape=(6, 8), base=0.1):
    """Distinct valid values base + 0.001 * k so each cell can be traced."""
    return base + 0.001 * np.arange(np.prod(shape)).reshape(shape)


def cube(source, **kw):
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    return read_smap_cube(source, **kw)


# --------------------------------------------------------------------------- dates


def test_date_from_name():
    assert granule_date_from_name(granule_name("2020-02-09")) == pd.Timestamp("2020-02-09")
    # The SMAP time (first timestamp) gives the day, not the Sentinel-1 time.
    name = "SMAP_L2_SM_SP_1AIWDV_20200209T061215_20200208T183607_005W11N_R16515_001.h5"
    assert granule_date_from_name(os.path.join("some", "folder", name)) == pd.Timestamp(
        "2020-02-09"
    )
    assert granule_date_from_name("SMAP_L3_SM_P_20200209_R18290_001.h5") == pd.Timestamp(
        "2020-02-09"
    )
    assert granule_date_from_name("granule.h5") is None
    assert granule_date_from_name(granule_name("2020-13-45")) is None


def test_date_from_metadata_when_name_has_none(tmp_path):
    path = write_granule(tmp_path / "granule.h5", begin="2020-02-10T23:59:00.000Z")
    assert read_spl2smap_s(path).date == pd.Timestamp("2020-02-10")
    # A time zone offset is converted to UTC first.
    path = write_granule(tmp_path / "granule2.h5", begin="2020-02-10T20:00:00-05:00")
    assert read_spl2smap_s(path).date == pd.Timestamp("2020-02-11")


def test_no_date_is_an_error(tmp_path):
    path = write_granule(tmp_path / "granule.h5", begin=None)
    with pytest.raises(ReaderError, match=r"granule\.h5: no date.*rangeBeginningDateTime"):
        read_spl2smap_s(path)


# --------------------------------------------------------------------------- one granule


def test_fill_flag_and_range_masked(tmp_path):
    values = ramp()
    flags = np.zeros((6, 8), dtype=np.uint16)
    values[0, 0] = FILL
    values[0, 1] = np.nan
    values[0, 2] = 0.6  # above valid_max 0.5
    values[0, 3] = 0.01  # below valid_min 0.02
    flags[1, 0] = 1  # not recommended
    flags[1, 1] = 2  # bit 1 only: still recommended
    flags[1, 2] = 7
    path = write_granule(tmp_path / granule_name("2020-02-09"), values=values, flags=flags)
    cells = read_spl2smap_s(path)
    assert cells.date == pd.Timestamp("2020-02-09")
    assert cells.path == str(path)
    got = {
        (int(r), int(c)): float(v)
        for r, c, v in zip(cells.rows, cells.cols, cells.values, strict=True)
    }
    dropped = {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 2)}
    expected = {
        (int(ROWS[i]), int(COLS[j])): float(np.float32(values[i, j]))
        for i in range(6)
        for j in range(8)
        if (i, j) not in dropped
    }
    assert got == pytest.approx(expected)

    kept = read_spl2smap_s(path, quality="all")
    assert len(kept.values) == len(expected) + 2
    assert (3599, 7810) in set(zip(kept.rows.tolist(), kept.cols.tolist(), strict=True))


def test_quality_all_reads_without_flag_field(tmp_path):
    path = write_granule(tmp_path / granule_name("2020-02-09"), drop=("retrieval_qual_flag_1km",))
    assert len(read_spl2smap_s(path, quality="all").values) == 48
    # Without the 1 km flag (and here without a 3 km one) every valid retrieval is accepted.
    cells = read_spl2smap_s(path)
    assert cells.quality_flag == FALLBACKS[1] and len(cells.values) == 48


def test_default_valid_range_without_attributes(tmp_path):
    values = np.full((6, 8), 0.7)
    values[0, 0] = 1.2
    values[0, 1] = -0.1
    path = write_granule(tmp_path / granule_name("2020-02-09"), values=values, valid_range=None)
    cells = read_spl2smap_s(path)
    assert len(cells.values) == 46
    assert np.allclose(cells.values, 0.7)


def test_latlon_fallback_matches_indices(tmp_path):
    values = ramp()
    with_index = read_spl2smap_s(
        write_granule(tmp_path / granule_name("2020-02-09"), values=values)
    )
    without = read_spl2smap_s(
        write_granule(
            tmp_path / granule_name("2020-02-10"),
            values=values,
            drop=("EASE_row_index_1km", "EASE_column_index_1km"),
        )
    )
    assert np.array_equal(with_index.rows, without.rows)
    assert np.array_equal(with_index.cols, without.cols)
    assert np.array_equal(with_index.values, without.values)

    # Cells whose indices hold fill are placed by their lat/lon.
    fill = np.zeros((6, 8), bool)
    fill[2, 3] = fill[5, 7] = True
    partial = read_spl2smap_s(
        write_granule(tmp_path / granule_name("2020-02-11"), values=values, index_fill=fill)
    )
    order = np.lexsort((partial.cols, partial.rows))
    assert np.array_equal(partial.rows[order], with_index.rows)
    assert np.array_equal(partial.cols[order], with_index.cols)


def test_missing_latlon_needed_for_fill_indices(tmp_path):
    fill = np.zeros((6, 8), bool)
    fill[0, 0] = True
    path = write_granule(
        tmp_path / granule_name("2020-02-09"), index_fill=fill, drop=("latitude_1km",)
    )
    with pytest.raises(ReaderError, match=r"latitude_1km' is missing \(needed to place 1 cell"):
        read_spl2smap_s(path)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not a readable HDF5"),
        (
            lambda p: write_granule(p, drop_group=True),
            "group 'Soil_Moisture_Retrieval_Data_1km' is missing",
        ),
        (
            lambda p: write_granule(p, drop=("soil_moisture_1km",)),
            "field 'Soil_Moisture_Retrieval_Data_1km/soil_moisture_1km' is missing",
        ),
        (
            lambda p: write_granule(p, latlon_rows=4),
            r"fields of different shapes: .*latitude_1km \(4, 8\), longitude_1km \(6, 8\)",
        ),
    ],
    ids=["random-bytes", "missing-group", "missing-field", "shapes"],
)
def test_bad_granule_errors(tmp_path, make, pattern):
    path = tmp_path / granule_name("2020-02-09")
    make(path)
    with pytest.raises(ReaderError, match=pattern) as info:
        read_spl2smap_s(path)
    assert info.value.path == str(path)
    assert path.name in str(info.value)


def test_truncated_granule(tmp_path):
    good = write_granule(tmp_path / "good.h5", values=ramp())
    data = good.read_bytes()
    path = tmp_path / granule_name("2020-02-09")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReaderError, match=r"HDF5") as info:
        read_spl2smap_s(path)
    assert path.name in str(info.value)


def test_bad_choices():
    with pytest.raises(ValueError, match="resolution"):
        read_spl2smap_s("x.h5", resolution="9km")
    with pytest.raises(ValueError, match="quality"):
        read_spl2smap_s("x.h5", quality="best")


# --------------------------------------------------------------------------- cube


def test_cube_places_cells_by_index(tmp_path):
    values = ramp()
    values[3, 4] = FILL
    write_granule(tmp_path / granule_name("2020-02-09"), values=values)
    ds, report = cube(tmp_path)
    validate(ds)
    assert ds.sizes == {"time": 5, "y": 36, "x": 36}
    assert ds["soil_moisture"].dtype == np.float32
    assert ds["soil_moisture"].attrs["units"] == "m3/m3"
    assert ds.attrs["source"] == "SPL2SMAP_S" and ds.attrs["crs"] == "EPSG:6933"
    assert ds.attrs["resolution"] == "1km" and ds.attrs["quality"] == "recommended"
    assert ds.attrs["region"] == "-98.9627,30.1489,-98.5892,30.475"
    assert report.read == [str(tmp_path / granule_name("2020-02-09"))] and not report.skipped
    # Coordinates are those of the TxSON box; a cell's (y, x) is its global row/col minus the box's.
    x, y = cell_centres("M01", 3600, 7812)
    assert ds.x.values[0] == pytest.approx(x) and ds.y.values[0] == pytest.approx(y)

    day = ds["soil_moisture"].sel(time="2020-02-09").values
    expected = np.full((36, 36), np.nan, dtype=np.float32)
    expected[0:4, 0:6] = values[2:6, 2:8]
    expected[1, 2] = np.nan  # the fill cell (row 3601, col 7814)
    np.testing.assert_array_equal(day, expected)
    # Days without a granule are all NaN.
    others = ds["soil_moisture"].drop_sel(time="2020-02-09").values
    assert np.isnan(others).all()


def test_cube_region_as_box_and_progress(tmp_path):
    write_granule(tmp_path / granule_name("2020-02-09"), values=ramp())
    calls = []
    west, north = xy_to_lonlat(*cell_centres("M01", 3598, 7810))
    east, south = xy_to_lonlat(*cell_centres("M01", 3603, 7817))
    box = f"{west - 0.001},{south - 0.001},{east + 0.001},{north + 0.001}"
    ds, _ = cube(tmp_path, region=box, progress=lambda i, n, p: calls.append((i, n)))
    assert ds.sizes == {"time": 5, "y": 6, "x": 8}
    np.testing.assert_allclose(ds["soil_moisture"].sel(time="2020-02-09").values, ramp())
    assert calls == [(1, 1)]


def test_two_granules_one_day_averaged(tmp_path):
    a = np.full((6, 8), 0.2)
    b = np.full((6, 8), 0.4)
    b[5, 7] = FILL  # only a's value there
    write_granule(tmp_path / granule_name("2020-02-10", "003512"), values=a)
    write_granule(tmp_path / granule_name("2020-02-10", "123512", tile="098W30N"), values=b)
    ds, report = cube(tmp_path)
    day = ds["soil_moisture"].sel(time="2020-02-10").values
    assert np.allclose(day[0:3, 0:6], 0.3)
    assert day[3, 5] == pytest.approx(0.2)
    assert len(report.read) == 2


def test_granule_outside_region_skipped_quietly(tmp_path):
    # Far from TxSON; its soil moisture field is even missing: the extent check rejects it
    # after reading only the index fields, so it is not reported as bad.
    far = write_granule(
        tmp_path / granule_name("2020-02-09", tile="120W38N"),
        rows=np.arange(2000, 2006),
        drop=("soil_moisture_1km",),
    )
    write_granule(tmp_path / granule_name("2020-02-10"))
    ds, report = cube(tmp_path)
    assert report.skipped == [] and str(far) not in report.read
    assert ds.attrs["granules_outside_region"] == 1
    assert np.isnan(ds["soil_moisture"].sel(time="2020-02-09").values).all()
    assert np.isfinite(ds["soil_moisture"].sel(time="2020-02-10").values).sum() == 24


def test_granule_outside_period_not_opened(tmp_path):
    # Random bytes named for a day outside the period: skipped by name, never opened.
    (tmp_path / granule_name("2019-06-01")).write_bytes(b"not hdf5")
    write_granule(tmp_path / granule_name("2020-02-09"))
    # Dated by Metadata only, outside the period.
    write_granule(tmp_path / "undated.h5", begin="2021-01-01T00:00:00Z")
    ds, report = cube(tmp_path)
    assert report.skipped == [] and len(report.read) == 1
    assert ds.attrs["granules_outside_period"] == 2


def test_bad_granules_listed_others_load(tmp_path):
    good = [
        write_granule(tmp_path / granule_name("2020-02-08"), values=np.full((6, 8), 0.1)),
        write_granule(tmp_path / granule_name("2020-02-12"), values=np.full((6, 8), 0.3)),
    ]
    corrupt = tmp_path / granule_name("2020-02-09")
    corrupt.write_bytes(np.random.default_rng(1).bytes(2048))
    data = write_granule(tmp_path / "whole.h5").read_bytes()
    (tmp_path / "whole.h5").unlink()
    truncated = tmp_path / granule_name("2020-02-10")
    truncated.write_bytes(data[: len(data) // 2])
    no_group = write_granule(tmp_path / granule_name("2020-02-11"), drop_group=True)
    no_field = write_granule(
        tmp_path / granule_name("2020-02-11", "003512"), drop=("EASE_row_index_1km", "latitude_1km")
    )
    ds, report = cube(tmp_path)
    assert sorted(report.read) == sorted(map(str, good))
    skipped = dict(report.skipped)
    assert set(skipped) == {str(corrupt), str(truncated), str(no_group), str(no_field)}
    assert "HDF5" in skipped[str(corrupt)] and "HDF5" in skipped[str(truncated)]
    assert "group 'Soil_Moisture_Retrieval_Data_1km' is missing" in skipped[str(no_group)]
    assert "Soil_Moisture_Retrieval_Data_1km/latitude_1km' is missing" in skipped[str(no_field)]
    summary = report.summary()
    assert "4 skipped" in summary and no_group.name in summary
    sm = ds["soil_moisture"]
    assert np.allclose(sm.sel(time="2020-02-08").values[0:4, 0:6], 0.1)
    assert np.allclose(sm.sel(time="2020-02-12").values[0:4, 0:6], 0.3)
    assert ds.attrs["granules_skipped"] == 4


def test_cube_from_list_and_quality_all(tmp_path):
    flags = np.zeros((6, 8), dtype=np.uint16)
    flags[2, 2] = 1  # row 3600, col 7812: the cube's (0, 0)
    path = write_granule(tmp_path / granule_name("2020-02-09"), flags=flags)
    rec, _ = cube([path])
    every, _ = cube([str(path)], quality="all")
    assert np.isnan(rec["soil_moisture"].values[1, 0, 0])
    assert every["soil_moisture"].values[1, 0, 0] == pytest.approx(0.25)
    assert every.attrs["quality"] == "all"


def test_cube_3km_fills_blocks(tmp_path):
    # M03 rows 1199..1201, cols 2603..2605; TxSON starts at M03 row 1200, col 2604.
    values = np.array([[0.1, 0.11, 0.12], [0.2, 0.21, 0.22], [0.3, 0.31, 0.32]])
    write_granule(
        tmp_path / granule_name("2020-02-09"),
        rows=np.arange(1199, 1202),
        cols=np.arange(2603, 2606),
        values=values,
        resolution="3km",
    )
    ds, report = cube(tmp_path, resolution="3km")
    assert ds.attrs["resolution"] == "3km" and len(report.read) == 1
    day = ds["soil_moisture"].sel(time="2020-02-09").values
    expected = np.full((36, 36), np.nan, dtype=np.float32)
    for i in range(2):
        for j in range(2):
            expected[3 * i : 3 * i + 3, 3 * j : 3 * j + 3] = values[1 + i, 1 + j]
    np.testing.assert_array_equal(day, expected)


def test_cube_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        cube(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="end is before start"):
        cube(tmp_path, start="2020-02-10", end="2020-02-01")


# --------------------------------------------------------------------------- SPL3SMP


def write_spl3smp(path, am: dict, pm: dict, *, am_flags=None, begin=None, shape=(406, 964)):
    """An SPL3SMP-like file: ``am``/``pm`` map (M36 row, col) -> value; fill elsewhere."""
    with h5py.File(path, "w") as f:
        if begin is not None:
            f.create_group("Metadata/Extent").attrs["rangeBeginningDateTime"] = np.bytes_(begin)
        for name, cells, sfx in (("AM", am, ""), ("PM", pm, "_pm")):
            g = f.create_group(f"Soil_Moisture_Retrieval_Data_{name}")
            sm = np.full(shape, FILL, dtype=np.float32)
            for (r, c), v in cells.items():
                sm[r, c] = v
            d = g.create_dataset(f"soil_moisture{sfx}", data=sm, compression="gzip")
            d.attrs["_FillValue"] = np.float32(FILL)
            d.attrs["valid_min"] = np.float32(0.02)
            d.attrs["valid_max"] = np.float32(0.5)
            flags = np.zeros(shape, dtype=np.uint16)
            if name == "AM" and am_flags:
                for (r, c), v in am_flags.items():
                    flags[r, c] = v
            g.create_dataset(f"retrieval_qual_flag{sfx}", data=flags, compression="gzip")
    return path


def l3_name(day: str) -> str:
    return f"SMAP_L3_SM_P_{day.replace('-', '')}_R18290_001.h5"


def test_spl3smp_overpasses(tmp_path):
    path = write_spl3smp(
        tmp_path / l3_name("2020-02-09"),
        am={(100, 217): 0.2, (100, 218): 0.25, (101, 217): 0.3},
        pm={(100, 217): 0.3, (101, 218): 0.4},
        am_flags={(100, 218): 1},
    )
    date, am = read_spl3smp(path)
    assert date == pd.Timestamp("2020-02-09")
    assert am.shape == (406, 964) and am.dtype == np.float32
    assert am[100, 217] == pytest.approx(0.2) and np.isnan(am[100, 218])
    assert np.isfinite(am).sum() == 2
    _, am_all = read_spl3smp(path, quality="all")
    assert am_all[100, 218] == pytest.approx(0.25)
    _, pm = read_spl3smp(path, overpass="PM")
    assert pm[100, 217] == pytest.approx(0.3) and np.isfinite(pm).sum() == 2
    _, both = read_spl3smp(path, overpass="both")
    assert both[100, 217] == pytest.approx(0.25)
    assert both[101, 217] == pytest.approx(0.3) and both[101, 218] == pytest.approx(0.4)
    assert np.isnan(both[100, 218]) and np.isfinite(both).sum() == 3


def test_spl3smp_date_from_metadata_and_bad_shape(tmp_path):
    path = write_spl3smp(tmp_path / "l3.h5", {}, {}, begin="2020-02-10T00:00:00.000Z")
    assert read_spl3smp(path)[0] == pd.Timestamp("2020-02-10")
    bad = write_spl3smp(tmp_path / l3_name("2020-02-10"), {}, {}, shape=(40, 96))
    with pytest.raises(ReaderError, match=r"shape \(40, 96\): expected \(406, 964\)"):
        read_spl3smp(bad)
    with pytest.raises(ReaderError, match="Soil_Moisture_Retrieval_Data_PM' is missing"):
        with h5py.File(tmp_path / l3_name("2020-02-11"), "w") as f:
            f.create_group("Soil_Moisture_Retrieval_Data_AM")
        read_spl3smp(tmp_path / l3_name("2020-02-11"), overpass="PM")


def test_sm_36km_on_txson(tmp_path):
    write_spl3smp(tmp_path / l3_name("2020-02-09"), am={(100, 217): 0.21}, pm={})
    write_spl3smp(tmp_path / l3_name("2020-02-11"), am={(100, 217): 0.33}, pm={})
    (tmp_path / l3_name("2020-02-12")).write_bytes(b"broken")
    sm, report = read_sm_36km(tmp_path, TXSON_BOX, START, END)
    assert sm.name == "sm_36km" and sm.dims == ("time", "y", "x")
    assert sm.shape == (5, 36, 36) and sm.dtype == np.float32
    assert sm.attrs["units"] == "m3/m3"
    assert np.allclose(sm.sel(time="2020-02-09").values, 0.21)
    assert np.allclose(sm.sel(time="2020-02-11").values, 0.33)
    for day in ("2020-02-08", "2020-02-10", "2020-02-12"):
        assert np.isnan(sm.sel(time=day).values).all()
    assert len(report.read) == 2 and [os.path.basename(p) for p, _ in report.skipped] == [
        l3_name("2020-02-12")
    ]


def test_sm_36km_on_dataset_grid_across_cells(tmp_path):
    # A 12 x 12 grid straddling the corner of four M36 cells (rows 100/101, cols 217/218).
    box = GridBox(row0=3600 + 30, col0=7812 + 30, nrows=12, ncols=12)
    import xarray as xr

    times = pd.date_range("2020-02-09", periods=2)
    grid = xr.Dataset(coords={"time": times, **grid_coords(box)}, attrs={"crs": "EPSG:6933"})
    write_spl3smp(
        tmp_path / l3_name("2020-02-09"),
        am={(100, 217): 0.1, (100, 218): 0.2, (101, 217): 0.3, (101, 218): 0.4},
        pm={},
    )
    sm, _ = read_sm_36km(tmp_path, grid)
    day = sm.sel(time="2020-02-09").values
    assert np.allclose(day[:6, :6], 0.1) and np.allclose(day[:6, 6:], 0.2)
    assert np.allclose(day[6:, :6], 0.3) and np.allclose(day[6:, 6:], 0.4)
    assert np.isnan(sm.sel(time="2020-02-10").values).all()
    np.testing.assert_array_equal(sm["x"].values, grid["x"].values)


def test_smap_module_reexports_the_readers():
    """The historical path ``readers.smap`` holds the very objects of the new modules."""
    import importlib

    old = importlib.import_module("stimpute_core.data.readers.smap")
    homes = [
        importlib.import_module(f"stimpute_core.data.readers.{m}")
        for m in ["smap_common", "spl2smap_s", "spl3smp"]
    ]
    for name in old.__all__:
        assert any(getattr(m, name, None) is getattr(old, name) for m in homes), name
