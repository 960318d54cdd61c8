"""What the real products' files hold: outputs fed back, SoilGrids integers, granule versions,
missing quality flags, granule dates and bad in-situ CSVs are refused or handled, and said so."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from test_readers_smap import ROWS, granule_name, ramp, write_granule, write_spl3smp

from stimpute_core.cli import main
from stimpute_core.data import ContractError, covariate_names, validate, write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox, grid_coords
from stimpute_core.data.readers import ReaderError
from stimpute_core.data.readers.insitu_csv import read_insitu_csv
from stimpute_core.data.readers.rasters import read_static_covariates
from stimpute_core.data.readers.smap import (
    granule_date_from_name,
    read_sm_36km,
    read_smap_cube,
    read_spl2smap_s,
)
from stimpute_core.data.readers.spl2smap_s import FALLBACKS

# --------------------------------------------------------------------------- outputs as inputs


def _contract(nt: int = 6) -> xr.Dataset:
    box = GridBox(TXSON_BOX.row0, TXSON_BOX.col0, 3, 4)
    sm = np.full((nt, 3, 4), np.nan, dtype=np.float32)
    sm[::2, 0, :] = 0.2
    return xr.Dataset(
        {
            "soil_moisture": (("time", "y", "x"), sm, {"units": "m3/m3"}),
            "clay": (("y", "x"), np.full((3, 4), 25.0), {"units": "%"}),
        },
        coords={"time": pd.date_range("2020-01-01", periods=nt), **grid_coords(box)},
    )


@pytest.mark.parametrize(
    "name, attrs",
    [
        ("soil_moisture_imputed", {}),  # stimpute impute
        ("soil_moisture_imputed_mean", {}),  # the app's export
        ("sm_filled", {"model": "mean", "model_settings": "{}"}),  # renamed, attrs kept
    ],
)
def test_an_imputation_given_back_is_refused_and_never_a_covariate(name, attrs):
    ds = _contract()
    ds[name] = ds["soil_moisture"].fillna(0.25).assign_attrs(attrs)
    assert covariate_names(ds) == ([], ["clay"])
    with pytest.raises(ContractError) as info:
        validate(ds, source="imputed.nc")
    (problem,) = info.value.problems
    assert f"'{name}'" in problem and "original input file" in problem and "drop" in problem
    validate(ds, allow_outputs=True)  # checking a file the tool has just written


def test_cli_refuses_an_imputed_file_as_benchmark_input(tmp_path, capsys):
    ds = _contract(40)
    ds["soil_moisture_imputed"] = ds["soil_moisture"].fillna(0.25)
    path = write_netcdf(ds, tmp_path / "imputed.nc")
    argv = ["benchmark", "--data", str(path), "--models", "mean", "--seeds", "1", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "soil_moisture_imputed" in err and "original input file" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- static rasters

SMALL = GridBox(TXSON_BOX.row0, TXSON_BOX.col0, 4, 4)


def _tif(path, value, *, dtype="int16", scale=None, units=None, nodata=-32768):
    """A 0.005-degree lat/lon GeoTIFF holding ``value`` everywhere around the SMALL box."""
    west, north, res, n = -99.1, 30.6, 0.005, 80
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=n,
        width=n,
        count=1,
        dtype=dtype,
        crs="EPSG:4326",
        transform=from_origin(west, north, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(np.full((n, n), value, dtype=dtype), 1)
        if scale is not None:
            dst.scales = (scale,)
        if units is not None:
            dst.set_band_unit(1, units)
    return path


@pytest.mark.parametrize(
    "name, file, raw, want",
    [
        ("bulk_density", "bdod_0-5cm_mean.tif", 145, 1.45),  # SoilGrids name: cg/cm3
        ("soc", "soc_0-5cm_mean_1000.tif", 152, 15.2),  # SoilGrids name: dg/kg
        ("clay", "clay.tif", 253, 25.3),  # no name, no units: g/kg by the value range
        ("bulk_density", "bd.tif", 152, 1.52),  # value range: cg/cm3
    ],
)
def test_soilgrids_integers_are_converted_with_a_warning(tmp_path, name, file, raw, want):
    path = _tif(tmp_path / file, raw)
    with pytest.warns(UserWarning, match=rf"{file}: '{name}' converted"):
        static = read_static_covariates({name: path}, SMALL)
    np.testing.assert_allclose(static[name].values, want, rtol=1e-6)
    assert (
        "x 0.1" in static[name].attrs["conversion"] or "x 0.01" in static[name].attrs["conversion"]
    )


def test_units_and_scales_decide_before_any_guess(tmp_path):
    path = _tif(tmp_path / "bdod_0-5cm_mean.tif", 145)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        given = read_static_covariates(
            {"bulk_density": path}, SMALL, scales={"bulk_density": {"scale": 0.01, "units": None}}
        )
        unit = read_static_covariates({"clay": _tif(tmp_path / "c.tif", 300, units="g/kg")}, SMALL)
        band = read_static_covariates({"sand": _tif(tmp_path / "s.tif", 4500, scale=0.01)}, SMALL)
    np.testing.assert_allclose(given["bulk_density"].values, 1.45, rtol=1e-6)
    assert given["bulk_density"].attrs["units"] == "g/cm3"
    np.testing.assert_allclose(unit["clay"].values, 30.0, rtol=1e-6)
    np.testing.assert_allclose(band["sand"].values, 45.0, rtol=1e-6)  # the band's own scale
    with pytest.raises(ValueError, match="units 'furlongs' unknown"):
        read_static_covariates({"clay": path}, SMALL, scales={"clay": {"units": "furlongs"}})
    with pytest.raises(ValueError, match="scales given for soc"):
        read_static_covariates({"clay": path}, SMALL, scales={"soc": {"scale": 0.1}})


def test_implausible_static_values_are_refused_naming_the_file(tmp_path):
    bdod = _tif(tmp_path / "bdod_0-5cm_mean.tif", 145)
    with pytest.raises(ReaderError, match=r"bdod_0-5cm_mean\.tif: 'bulk_density' has values 145"):
        read_static_covariates({"bulk_density": bdod}, SMALL, scales={"bulk_density": {}})
    dem = _tif(tmp_path / "dem.tif", -30000, nodata=None)  # nodata not tagged
    with pytest.raises(ReaderError, match=r"dem\.tif: 'elevation' has values -3e\+04.*m within"):
        read_static_covariates({"elevation": dem}, SMALL)
    with pytest.raises(ReaderError, match="named like the SoilGrids map 'bdod' but is given as"):
        read_static_covariates({"clay": bdod}, SMALL)
    ds = _contract()
    ds["bulk_density"] = (("y", "x"), np.full((3, 4), 145.0))
    with pytest.raises(
        ContractError, match=r"'bulk_density' has values 145\.\.145: expected g/cm3"
    ):
        validate(ds)


# --------------------------------------------------------------------------- SMAP granules


def _versioned(day: str, crid: str, counter: str) -> str:
    return granule_name(day).replace("_R16515_001.h5", f"_{crid}_{counter}.h5")


def test_only_the_latest_version_of_a_scene_is_read(tmp_path):
    old = write_granule(tmp_path / _versioned("2020-02-09", "R18240", "001"), values=ramp())
    new = write_granule(tmp_path / _versioned("2020-02-09", "R19240", "001"), values=ramp(base=0.3))
    again = write_granule(
        tmp_path / _versioned("2020-02-09", "R19240", "002"), values=ramp(base=0.2)
    )
    ds, report = read_smap_cube(tmp_path, start="2020-02-09", end="2020-02-09")
    assert report.read == [str(again)]
    dropped = dict(report.skipped)
    assert set(dropped) == {str(old), str(new)}
    assert all(again.name in why and "older version" in why for why in dropped.values())
    assert ds.attrs["granules_superseded"] == 2 and ds.attrs["granules_skipped"] == 0
    got = ds["soil_moisture"].values[0, 0, 0]  # global M01 (3600, 7812): ramp cell (2, 2)
    assert got == pytest.approx(0.2 + 0.001 * 18, abs=1e-6)


def test_spl3smp_reads_the_latest_version_of_a_day(tmp_path):
    for crid, value in (("R18290", 0.2), ("R19240", 0.3)):
        write_spl3smp(tmp_path / f"SMAP_L3_SM_P_20200209_{crid}_001.h5", {(100, 217): value}, {})
    sm, report = read_sm_36km(tmp_path, SMALL, "2020-02-09", "2020-02-09")
    assert np.allclose(sm.values, 0.3) and len(report.read) == 1
    assert "R19240" in report.skipped[0][1] and sm.attrs["files_superseded"] == 1


def _add_3km_flag(path, flag3):
    """Add a 3 km group whose cells cover the 1 km sub-grid ROWS x COLS of write_granule."""
    rows3 = np.arange(ROWS[0] // 3, ROWS[-1] // 3 + 1)
    cols3 = np.arange(7810 // 3, 7817 // 3 + 1)
    rr, cc = np.meshgrid(rows3, cols3, indexing="ij")
    with h5py.File(path, "a") as f:
        g = f.create_group("Soil_Moisture_Retrieval_Data_3km")
        g["EASE_row_index_3km"] = rr.astype(np.uint16)
        g["EASE_column_index_3km"] = cc.astype(np.uint16)
        g["retrieval_qual_flag_3km"] = flag3(rr, cc).astype(np.uint16)


def test_missing_1km_quality_flag_falls_back_and_says_so_once(tmp_path):
    drop = ("retrieval_qual_flag_1km",)
    with_3km = write_granule(tmp_path / granule_name("2020-02-09"), values=ramp(), drop=drop)
    # 3 km cells with an odd column are not recommended (bit 0 set).
    _add_3km_flag(with_3km, lambda rr, cc: cc % 2)
    bare = write_granule(tmp_path / granule_name("2020-02-10"), values=ramp(), drop=drop)
    cells = read_spl2smap_s(with_3km)
    assert cells.quality_flag == FALLBACKS[0]
    assert cells.values.size and ((cells.cols // 3) % 2 == 0).all()
    assert read_spl2smap_s(bare).quality_flag == FALLBACKS[1]
    assert read_spl2smap_s(bare).values.size == 48  # every valid retrieval
    with pytest.warns(UserWarning) as caught:
        ds, report = read_smap_cube(tmp_path, start="2020-02-09", end="2020-02-10")
    said = [str(w.message) for w in caught if "retrieval_qual_flag_1km" in str(w.message)]
    assert len(said) == 1  # once per load, not once per granule
    assert "1 granule(s): retrieval_qual_flag_3km" in said[0]
    assert "1 granule(s): none: all retrievals accepted" in said[0]
    assert len(report.read) == 2 and not report.skipped
    assert np.isfinite(ds["soil_moisture"].values[1]).any()


def test_the_smap_time_of_the_name_gives_the_day():
    # SMAP_L2_SM_SP_<S1 code>_<SMAP time>_<Sentinel-1 time>_<tile>_<CRID>_<counter>.h5
    name = "SMAP_L2_SM_SP_1AIWDV_20250924T142712_20250923T135925_099W31N_R19240_001.h5"
    assert granule_date_from_name(name) == pd.Timestamp("2025-09-24")
    name = "SMAP_L2_SM_SP_1BIWDV_20210301T053807_20210302T172013_009E36N_R17000_001.h5"
    assert granule_date_from_name(name) == pd.Timestamp("2021-03-01")


# --------------------------------------------------------------------------- in-situ CSV

HEADER = "station,time,lat,lon,depth,soil_moisture"


def _csv(path, rows, *, encoding="utf-8"):
    path.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode(encoding))
    return path


def test_csv_implausible_dates_and_infinities_are_malformed_rows(tmp_path):
    ahead = (date.today() + timedelta(days=800)).isoformat()
    path = _csv(
        tmp_path / "s.csv",
        [
            "S1,2020-01-01T10:00,30.3,-98.8,0.05,0.20",
            "S1,9999-01-01,30.3,-98.8,0.05,0.20",  # line 3
            "S1,9999-12-31T23:00:00-05:00,30.3,-98.8,0.05,0.20",  # 4: beyond datetime's range
            f"S1,{ahead},30.3,-98.8,0.05,0.20",  # 5
            "S1,1900-01-01,30.3,-98.8,0.05,0.20",  # 6
            "S1,2020-01-02T10:00,30.3,-98.8,0.05,inf",  # 7
            "S1,2020-01-02T11:00,30.3,-98.8,0.05,1e400",  # 8
            "S1,2020-01-02T12:00,30.3,-98.8,0.05,nan",  # a plain missing value
        ],
    )
    ds, report = read_insitu_csv(path)
    assert ds.sizes["time"] == 1  # not an 8,000-year axis
    reasons = [why for _, why in report.skipped]
    assert [r.split(":")[0] for r in reasons] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert "outside the plausible span 1950-01-01.." in reasons[0]
    assert "'inf' is infinite" in reasons[4] and "'1e400' is infinite" in reasons[5]


def test_csv_errors_quote_the_malformed_rows_themselves(tmp_path):
    path = _csv(tmp_path / "bad.csv", ["S1,abc,30.3,-98.8,0.05,0.2", "S1,2020-01-01,x,1,1,1"])
    with pytest.raises(ReaderError) as info:
        read_insitu_csv(path)
    msg = str(info.value)
    assert "see the report" not in msg and "2 malformed row(s)" in msg
    assert "line 2: time 'abc' is not an ISO 8601 date" in msg and "line 3: lat 'x'" in msg
    with pytest.raises(ReaderError, match="has a header but no data row"):
        read_insitu_csv(_csv(tmp_path / "empty.csv", []))


def test_csv_encodings_binary_and_system_files(tmp_path):
    latin = _csv(
        tmp_path / "l.csv", ["Bärenfels,2020-01-01,30.3,-98.8,0.05,0.2"], encoding="latin-1"
    )
    ds, report = read_insitu_csv(latin)
    assert list(ds["station"].values) == ["Bärenfels"]
    assert report.skipped == [
        (str(latin), "not UTF-8: read as Latin-1 (check non-ASCII station names)")
    ]

    secret = "root:x:0:0:root:/root:/bin/bash"
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x7fELF\x02\x01\x00\x00" + secret.encode() + bytes(range(256)))
    system = tmp_path / "passwd.csv"
    system.write_text(secret + "\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    for path, why in ((binary, "binary file"), (system, "not a CSV header")):
        with pytest.raises(ReaderError) as info:
            read_insitu_csv(path)
        assert str(path) in str(info.value) and why in str(info.value)
        assert "/bin/bash" not in str(info.value) and "ELF" not in str(info.value)
        assert HEADER in str(info.value)
