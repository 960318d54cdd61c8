"""In-situ readers: tiny ISMN archives (both layouts, folder and zip), long CSV, attach_stations."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data.contract import validate
from stimpute_core.data.grid import TXSON_BOX, grid_coords, lonlat_to_xy, xy_to_rowcol
from stimpute_core.data.readers.insitu import attach_stations, read_insitu_csv, read_ismn
from stimpute_core.data.readers.report import ReaderError
from stimpute_core.data.selection import station_cells

# --------------------------------------------------------------------------------------------
# A tiny ISMN download, written the way ISMN writes it and the `ismn` package reads it:
# <root>/<NETWORK>/<STATION>/<CSE>_<NETWORK>_<STATION>_<var>_<from>_<to>_<sensor>_<t0>_<t1>.stm
# plus one ";"-separated static-variables CSV per station and Metadata.xml etc. at the root.

STATIC_CSV = (
    "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
    "quantity_source_description;quantity_source_provider;quantity_source_version;"
    "quantity_source_resolution;quantity_source_timerange;quantity_source_url\n"
    "saturation;m^3*m^-3;0.00;0.30;0.45;saturation;HWSD;x;x;x;x;x;x\n"
    "clay fraction;% weight;0.00;0.30;20.0;clay;HWSD;x;x;x;x;x;x\n"
    "land cover classification;;;;130;Grassland;CCI_landcover_2010;x;x;x;x;x;x\n"
    "climate classification;;;;Cfa;Temperate;koeppen_geiger_2007;x;x;x;x;x;x\n"
)

#: Station name -> (network, lat, lon); the TxSON ones lie inside the TxSON 36 km cell.
STATIONS = {
    "CR200-1": ("TxSON", 30.30, -98.80),
    "CR200-2": ("TxSON", 30.40, -98.65),
    "CR200-3": ("TxSON", 30.20, -98.90),
    "2001": ("SCAN", 35.00, -100.00),  # another network; a numeric station name
}

#: (station, variable, depth_from, depth_to, sensor) -> rows "YYYY/MM/DD HH:MM value flag".
SENSORS = {
    # Day edge: 0.10 at 22:00 and 23:00 on 1 Jan, 0.30 at 00:00 on 2 Jan; D01 and C03 dropped.
    ("CR200-1", "sm", 0.05, 0.05, "CS655"): """
        2020/01/01 22:00 0.10 G
        2020/01/01 23:00 0.10 G
        2020/01/02 00:00 0.30 G
        2020/01/02 01:00 0.50 D01
        2020/01/02 02:00 0.70 C03
    """,
    # Deeper sensor: outside the default depth range.
    ("CR200-1", "sm", 0.10, 0.10, "CS655"): """
        2020/01/01 12:00 0.40 G
        2020/01/01 13:00 0.40 G
    """,
    # Soil temperature: another variable, never read as soil moisture.
    ("CR200-1", "ts", 0.05, 0.05, "CS655"): """
        2020/01/01 12:00 15.0 G
        2020/01/01 13:00 16.0 G
    """,
    # Two sensors at one depth: the mean of the sensors' daily means (0.20 and 0.35 on 2 Jan).
    ("CR200-2", "sm", 0.05, 0.05, "CS655-A"): """
        2020/01/02 12:00 0.20 G
        2020/01/03 12:00 0.10 G
    """,
    ("CR200-2", "sm", 0.05, 0.05, "CS655-B"): """
        2020/01/02 12:00 0.30 G
        2020/01/02 13:00 0.40 G
    """,
    # A value flagged good but outside 0..0.8 is dropped and reported.
    ("CR200-3", "sm", 0.05, 0.05, "CS655"): """
        2020/01/03 05:00 0.25 G
        2020/01/03 06:00 0.95 G
        2020/01/03 07:00 0.40 D02
    """,
    ("2001", "sm", 0.05, 0.05, "Hydraprobe"): """
        2020/01/05 00:00 0.33 G
        2020/01/05 01:00 0.35 G
    """,
}

# Expected daily means of TxSON with the defaults (0..0.05 m, flag G), 2020-01-01..03.
EXPECTED = {
    "CR200-1": [0.10, 0.30, np.nan],
    "CR200-2": [np.nan, (0.20 + 0.35) / 2, 0.10],
    "CR200-3": [np.nan, np.nan, 0.25],
}


def _stm_name(net, st, var, d0, d1, sensor):
    return f"{net}_{net}_{st}_{var}_{d0:.6f}_{d1:.6f}_{sensor}_20200101_20200131.stm"


def _header_values(net, st, lat, lon, d0, d1, sensor, rows):
    # First line: CSE NETWORK STATION lat lon elev depth_from depth_to sensor; then
    # "YYYY/MM/DD HH:MM value ismn_flag orig_flag" (ISMN pads with spaces).
    head = f"{net:<16}{net:<16}{st:<24}{lat:>12.5f}{lon:>12.5f}{420.0:>9.2f}"
    head += f"{d0:>8.2f}{d1:>8.2f}  {sensor}"
    return "\n".join([head] + [f"{t} {v:7.4f} {f} M" for t, v, f in rows]) + "\n"


def _ceop_sep(net, st, lat, lon, d0, d1, sensor, rows):
    # 15 columns, no header: date/time UTC, date/time CSE, CSE NETWORK STATION lat lon elev
    # depth_from depth_to value flag orig_flag; the depth ismn uses comes from the file name.
    return (
        "\n".join(
            f"{t} {t} {net} {net} {st} {lat:.5f} {lon:.5f} 420.00 {d0:.2f} {d1:.2f} {v:.4f} {f} M"
            for t, v, f in rows
        )
        + "\n"
    )


def _rows(text: str) -> list[tuple[str, float, str]]:
    rows = [line.split() for line in text.strip().splitlines()]
    return [(f"{d} {t}", float(v), f) for d, t, v, f in rows]


def write_ismn(root: Path, layout: str) -> Path:
    """An unpacked ISMN download at ``root`` in the "header_values" or "ceop_sep" layout."""
    write = _header_values if layout == "header_values" else _ceop_sep
    root.mkdir(parents=True)
    (root / "Metadata.xml").write_text("<?xml version='1.0'?><metadata/>\n")
    (root / "Readme.txt").write_text("ISMN test download\n")
    for (st, var, d0, d1, sensor), text in SENSORS.items():
        net, lat, lon = STATIONS[st]
        folder = root / net / st
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{net}_{net}_{st}_static_variables.csv").write_text(STATIC_CSV)
        content = write(net, st, lat, lon, d0, d1, sensor, _rows(text))
        (folder / _stm_name(net, st, var, d0, d1, sensor)).write_text(content)
    return root


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip the content of ``folder`` (network folders at the top, as ISMN's zips are)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder).as_posix())
    return target


VARIANTS = [
    ("header_values", False),
    ("header_values", True),
    ("ceop_sep", False),
    ("ceop_sep", True),
]


@pytest.fixture(
    scope="module",
    params=VARIANTS,
    ids=[f"{lay}-{'zip' if z else 'folder'}" for lay, z in VARIANTS],
)
def archive(request, tmp_path_factory):
    """(path, meta_dir) of the test download in one layout, as a folder or a zip."""
    layout, zipped = request.param
    base = tmp_path_factory.mktemp(f"ismn-{layout}-{zipped}")
    folder = write_ismn(base / "Data_separate_files_20200101_20200131", layout)
    path = zip_folder(folder, base / "download.zip") if zipped else folder
    return path, base / "meta"


def _values(ds, station):
    return ds["insitu"].sel(station=station).values.astype(float)


# --------------------------------------------------------------------------------------------
# read_ismn


def test_ismn_daily_means_flags_and_depths(archive):
    path, meta = archive
    ds, report = read_ismn(path, meta_dir=meta)
    assert list(ds["station"].values) == ["CR200-1", "CR200-2", "CR200-3"]
    assert ds["insitu"].dims == ("station", "time") and ds["insitu"].dtype == np.float32
    assert list(pd.DatetimeIndex(ds["time"].values)) == list(
        pd.date_range("2020-01-01", "2020-01-03")
    )
    for station, expected in EXPECTED.items():
        np.testing.assert_allclose(_values(ds, station), expected, atol=1e-6)
    np.testing.assert_allclose(ds["station_lat"].values, [30.30, 30.40, 30.20])
    np.testing.assert_allclose(ds["station_lon"].values, [-98.80, -98.65, -98.90])
    np.testing.assert_allclose(ds["station_depth"].values, [0.05, 0.05, 0.05])
    assert set(ds["station_network"].values) == {"TxSON"}
    # 1 + 2 + 1 soil-moisture files in the depth range were read; the 0.95 value was reported.
    assert len(report.read) == 4
    assert any("CR200-3" in p and "outside" in why for p, why in report.skipped)
    # ismn's metadata went to meta_dir, not beside the data.
    assert not (path.parent / "python_metadata").exists()
    assert not (path / "python_metadata").exists()
    assert any(meta.glob("*.csv"))


def test_ismn_depth_range_takes_deeper_sensor(archive):
    path, meta = archive
    ds, _ = read_ismn(path, meta_dir=meta, max_depth=0.1)
    # 1 Jan at CR200-1: mean of the 5 cm sensor (0.10) and the 10 cm sensor (0.40).
    np.testing.assert_allclose(_values(ds, "CR200-1"), [0.25, 0.30, np.nan], atol=1e-6)
    assert float(ds["station_depth"].sel(station="CR200-1")) == pytest.approx(0.10)
    assert float(ds["station_depth"].sel(station="CR200-2")) == pytest.approx(0.05)


def test_ismn_flags_and_window(archive):
    path, meta = archive
    ds, _ = read_ismn(path, meta_dir=meta, flags=("G", "D01"), start="2019-12-31", end="2020-01-02")
    assert list(pd.DatetimeIndex(ds["time"].values)) == list(
        pd.date_range("2019-12-31", "2020-01-02")
    )
    # D01 now counts: 2 Jan is the mean of 0.30 and 0.50; C03 still dropped.
    np.testing.assert_allclose(_values(ds, "CR200-1"), [np.nan, 0.10, 0.40], atol=1e-6)
    # CR200-3 only has data on 3 Jan, outside the window: dropped and reported.
    assert "CR200-3" not in ds["station"].values
    with pytest.raises(ReaderError, match=r"flagged Z; flags present: G .*D01"):
        read_ismn(path, meta_dir=meta, flags=("Z",))


def test_ismn_other_network_and_errors(archive):
    path, meta = archive
    ds, _ = read_ismn(path, meta_dir=meta, network="SCAN")
    assert list(ds["station"].values) == ["2001"]
    assert list(ds["station_network"].values) == ["SCAN"]
    np.testing.assert_allclose(_values(ds, "2001"), [0.34], atol=1e-6)
    with pytest.raises(ReaderError, match=r"'SMOSMANIA' is not in .*present: SCAN, TxSON"):
        read_ismn(path, meta_dir=meta, network="SMOSMANIA")
    with pytest.raises(
        ReaderError, match=r"within 0\.2\.\.0\.5 m; sensor depths present: 0\.05 m, 0\.1 m"
    ):
        read_ismn(path, meta_dir=meta, min_depth=0.2, max_depth=0.5)


def test_ismn_default_metadata_folder_in_cache(tmp_path, monkeypatch):
    folder = write_ismn(tmp_path / "data", "header_values")
    monkeypatch.setenv("STIMPUTE_CACHE_DIR", str(tmp_path / "cache"))
    read_ismn(folder)
    read_ismn(folder)  # reuses the metadata
    made = list((tmp_path / "cache" / "ismn_metadata").iterdir())
    assert len(made) == 1 and (made[0] / "data.csv").is_file()
    assert not (folder / "python_metadata").exists()


def test_ismn_unparseable_files_are_skipped_and_listed(tmp_path):
    folder = write_ismn(tmp_path / "data", "header_values")
    station = folder / "TxSON" / "CR200-3"
    # A header ismn cannot parse, and a data line whose time cannot be read.
    (station / _stm_name("TxSON", "CR200-3", "sm", 0.0, 0.05, "Broken")).write_text("oops\n")
    bad_rows = _rows("2020/01/03 05:00 0.2 G\n2020/01/03 xx:00 0.2 G\n2020/01/03 07:00 0.2 G")
    text = _header_values("TxSON", "CR200-3", 30.2, -98.9, 0.05, 0.05, "Garbled", bad_rows)
    (station / _stm_name("TxSON", "CR200-3", "sm", 0.05, 0.05, "Garbled")).write_text(text)
    ds, report = read_ismn(folder, meta_dir=tmp_path / "meta")
    skipped = {Path(p).name.split("_")[6]: why for p, why in report.skipped}
    assert "parse" in skipped["Broken"] and "cannot be read" in skipped["Garbled"]
    np.testing.assert_allclose(_values(ds, "CR200-3"), EXPECTED["CR200-3"], atol=1e-6)


def test_ismn_bad_paths(tmp_path):
    with pytest.raises(ReaderError, match="no such file or folder"):
        read_ismn(tmp_path / "missing.zip", meta_dir=tmp_path / "m")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ReaderError, match=r"corrupt\.zip: is neither a folder nor a zip"):
        read_ismn(corrupt, meta_dir=tmp_path / "m")
    whole = zip_folder(write_ismn(tmp_path / "data", "header_values"), tmp_path / "whole.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ReaderError, match="corrupt or incompletely downloaded"):
        read_ismn(truncated, meta_dir=tmp_path / "m")
    broken = tmp_path / "broken.zip"  # a zip end record, but a damaged central directory
    broken.write_bytes(whole.read_bytes().replace(b"PK\x01\x02", b"XX\x01\x02"))
    with pytest.raises(ReaderError, match=r"broken\.zip: corrupt zip archive"):
        read_ismn(broken, meta_dir=tmp_path / "m")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("Readme.txt", "nothing here")
    with pytest.raises(ReaderError, match=r"no ISMN data files \(\*\.stm\)"):
        read_ismn(empty, meta_dir=tmp_path / "m")
    # One folder too high: the data sit one level deeper.
    with pytest.raises(ReaderError, match=r"not at NETWORK/STATION/file\.stm .*: pass the folder"):
        read_ismn(tmp_path, meta_dir=tmp_path / "m")
    wrapped = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(wrapped, "w") as zf:
        zf.writestr("Data_separate_files/TxSON/CR200-1/x.stm", "TxSON TxSON CR200-1\n")
    with pytest.raises(ReaderError, match="unzip it and pass its folder 'Data_separate_files'"):
        read_ismn(wrapped, meta_dir=tmp_path / "m")


# --------------------------------------------------------------------------------------------
# read_insitu_csv


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_daily_means_across_utc_day_edges(tmp_path):
    path = _write_csv(
        tmp_path / "txson.csv",
        [
            "station,time,lat,lon,depth,soil_moisture,network",
            "S1,2020-01-01T22:00:00,30.30,-98.80,0.05,0.10,TxSON",
            "S1,2020-01-01T23:00:00Z,30.30,-98.80,0.05,0.10,TxSON",
            # 02:00 at +02:00 is 00:00 UTC on 2 Jan.
            "S1,2020-01-02T02:00:00+02:00,30.30,-98.80,0.05,0.30,TxSON",
            # 01:00 at +02:00 on 2 Jan is 23:00 UTC on 1 Jan.
            "S1,2020-01-02T01:00:00+02:00,30.30,-98.80,0.05,0.40,TxSON",
            "S1,2020-01-02 12:00,30.30,-98.80,0.05,0.50,TxSON",
            "S1,2020-01-02 12:00,30.30,-98.80,0.10,0.70,TxSON",  # too deep by default
            "S2,2020-01-04T06:00:00,30.40,-98.70,0.05,nan,TxSON",  # a plain missing value
            "S2,2020-01-04T07:00:00,30.40,-98.70,0.05,0.22,TxSON",
            "S2,2020-01-04T08:00:00,30.40,-98.70,0.02,0.26,TxSON",  # a second depth
        ],
    )
    ds, report = read_insitu_csv(path)
    assert report.skipped == [] and report.read == [str(path)]
    assert list(ds["station"].values) == ["S1", "S2"]
    assert list(pd.DatetimeIndex(ds["time"].values)) == list(
        pd.date_range("2020-01-01", "2020-01-04")
    )
    np.testing.assert_allclose(
        _values(ds, "S1"), [(0.10 + 0.10 + 0.40) / 3, 0.40, np.nan, np.nan], atol=1e-6
    )
    np.testing.assert_allclose(_values(ds, "S2"), [np.nan, np.nan, np.nan, 0.24], atol=1e-6)
    np.testing.assert_allclose(ds["station_depth"].values, [0.05, 0.05])
    assert list(ds["station_network"].values) == ["TxSON", "TxSON"]
    assert ds["insitu"].dtype == np.float32

    deeper, _ = read_insitu_csv(path, max_depth=0.1, start="2020-01-02", end="2020-01-02")
    np.testing.assert_allclose(_values(deeper, "S1"), [(0.40 + 0.70) / 2], atol=1e-6)
    assert float(deeper["station_depth"].sel(station="S1")) == pytest.approx(0.10)
    assert list(deeper["station"].values) == ["S1"]  # S2 has nothing on 2 Jan


def test_csv_malformed_rows_are_listed_by_line(tmp_path):
    path = _write_csv(
        tmp_path / "bad.csv",
        [
            "station,time,lat,lon,depth,soil_moisture",  # line 1
            "S1,2020-01-01T10:00,30.3,-98.8,0.05,0.20",  # 2
            "S1,2020-01-01T11:00,30.3,-98.8,0.05,x",  # 3: not a number
            "S1,2020-01-01T12:00,,-98.8,0.05,0.20",  # 4: missing lat
            "S1,2020-01-01T13:00,30.3,-98.8,0.05,45.0",  # 5: percent
            "",  # 6: blank, ignored
            "S1,abc,30.3,-98.8,0.05,0.20",  # 7: not a date
            "S1,2020-01-01T14:00,30.3",  # 8: too few fields
            "S1,2020-01-02T10:00,30.5,-98.8,0.05,0.40",  # 9: moved station
        ],
    )
    ds, report = read_insitu_csv(path)
    reasons = [why for _, why in report.skipped]
    assert all(p == str(path) for p, _ in report.skipped)
    assert reasons[0].startswith("line 3: soil_moisture 'x' is not a number")
    assert reasons[1].startswith("line 4: missing value(s) for lat")
    assert reasons[2].startswith("line 5: soil_moisture 45 outside 0.0..0.8")
    assert reasons[3] == "line 7: time 'abc' is not an ISO 8601 date"
    assert reasons[4].startswith("line 8: has 3 field(s)")
    assert reasons[5].startswith("line 9: station S1 at 30.5,-98.8 differs")
    np.testing.assert_allclose(_values(ds, "S1"), [0.20, 0.40], atol=1e-6)
    assert float(ds["station_lat"].sel(station="S1")) == pytest.approx(30.3)
    assert ds["station_network"].values[0] == "unknown"


def test_csv_errors(tmp_path):
    with pytest.raises(ReaderError, match=r"missing required column\(s\) depth, soil_moisture"):
        read_insitu_csv(
            _write_csv(tmp_path / "a.csv", ["station,time,lat,lon,sm", "S1,2020-01-01,1,2,3"])
        )
    with pytest.raises(ReaderError, match="no such file"):
        read_insitu_csv(tmp_path / "missing.csv")
    rows = ["station,time,lat,lon,depth,soil_moisture", "S1,2020-01-01,30.3,-98.8,0.2,0.2"]
    with pytest.raises(ReaderError, match=r"depth range 0\.\.0\.05 m; depths present: 0\.2 m"):
        read_insitu_csv(_write_csv(tmp_path / "b.csv", rows))
    rows = ["station,time,lat,lon,depth,soil_moisture", "S1,2020-01-01,30.3,-98.8,0.05,21.5"]
    with pytest.raises(ReaderError, match="percent"):
        read_insitu_csv(_write_csv(tmp_path / "c.csv", rows))
    rows = ["station,time,lat,lon,depth,soil_moisture", "S1,2020-01-01,30.3,-98.8,0.05,0.2"]
    with pytest.raises(ReaderError, match=r"2021-01-01\.\.2021-12-31; the data cover 2020-01-01"):
        read_insitu_csv(_write_csv(tmp_path / "d.csv", rows), start="2021-01-01", end="2021-12-31")


# --------------------------------------------------------------------------------------------
# attach_stations


def _cube(times: pd.DatetimeIndex) -> xr.Dataset:
    coords = grid_coords(TXSON_BOX)
    shape = (len(times), TXSON_BOX.nrows, TXSON_BOX.ncols)
    sm = np.full(shape, 0.2, dtype=np.float32)
    return xr.Dataset(
        {"soil_moisture": (("time", "y", "x"), sm, {"units": "m3/m3"})},
        coords={"time": times, **coords},
        attrs={"crs": "EPSG:6933"},
    )


def test_attach_stations_on_contract_cube(tmp_path):
    path = _write_csv(
        tmp_path / "s.csv",
        [
            "station,time,lat,lon,depth,soil_moisture",
            "A,2020-01-01T12:00,30.20,-98.90,0.05,0.10",
            "A,2020-01-03T12:00,30.20,-98.90,0.05,0.30",
            "B,2020-01-02T12:00,30.45,-98.60,0.05,0.20",
            "B,2020-01-09T12:00,30.45,-98.60,0.05,0.25",  # after the cube's last day
            "FAR,2020-01-02T12:00,31.50,-97.00,0.05,0.20",  # outside the TxSON cell
        ],
    )
    stations, _ = read_insitu_csv(path)
    cube = _cube(pd.date_range("2019-12-31", "2020-01-04"))
    out = attach_stations(cube, stations)
    validate(out)
    assert list(out["station"].values) == ["A", "B"]
    assert out.attrs["stations_outside_grid"] == "FAR"
    nan = np.nan  # days 2019-12-31 .. 2020-01-04
    expected = [[nan, 0.10, nan, 0.30, nan], [nan, nan, 0.20, nan, nan]]
    np.testing.assert_allclose(out["insitu"].values, expected, atol=1e-6)
    # Each station sits on the 1 km cell that contains it.
    iy, ix = station_cells(out)
    x, y = lonlat_to_xy(out["station_lon"].values, out["station_lat"].values)
    rows, cols = xy_to_rowcol("M01", x, y)
    np.testing.assert_array_equal(iy, rows - TXSON_BOX.row0)
    np.testing.assert_array_equal(ix, cols - TXSON_BOX.col0)
    assert (iy >= 0).all() and (ix >= 0).all()
    assert out["soil_moisture"].equals(cube["soil_moisture"])

    kept = attach_stations(out, stations, keep_outside=True)  # replaces the stations already there
    assert list(kept["station"].values) == ["A", "B", "FAR"]
    assert kept.attrs["stations_outside_grid"] == "FAR"
    assert kept.sizes["time"] == 5


def test_insitu_module_reexports_the_readers():
    """The historical path ``readers.insitu`` holds the very objects of the new modules."""
    import importlib

    old = importlib.import_module("stimpute_core.data.readers.insitu")
    homes = [
        importlib.import_module(f"stimpute_core.data.readers.{m}")
        for m in ["insitu_csv", "ismn", "stations"]
    ]
    for name in old.__all__:
        assert any(getattr(m, name, None) is getattr(old, name) for m in homes), name
