"""Metrics against numbers worked out by hand, on arrays small enough to check on paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import Transformer

from stimpute_core.metrics import (
    UBRMSD_TARGET,
    bias,
    by_land_cover,
    error_map,
    mae,
    mre,
    pearson_r,
    rmse,
    score,
    station_table,
    ubrmsd,
)

PRED = np.array([0.1, 0.2, 0.4])
TRUTH = np.array([0.1, 0.3, 0.2])
# Errors are 0, -0.1, 0.2; anomalies from the means are pred [-2/15, -1/30, 1/6], truth
# [-0.1, 0.1, 0]; their differences are [-1/30, -2/15, 1/6], whose squares sum to 0.42/9.
EXPECTED = {
    "n": 3,
    "mae": 0.1,
    "mre": 0.3 / 0.6,
    "rmse": math.sqrt((0.0 + 0.01 + 0.04) / 3),
    "bias": (0.7 - 0.6) / 3,
    "ubrmsd": math.sqrt(0.42 / 9 / 3),
    "r": 0.01 / math.sqrt(0.42 / 9 * 0.02),
}


def test_each_metric_by_hand():
    assert mae(PRED, TRUTH) == pytest.approx(EXPECTED["mae"])
    assert mre(PRED, TRUTH) == pytest.approx(EXPECTED["mre"])
    assert rmse(PRED, TRUTH) == pytest.approx(EXPECTED["rmse"])
    assert bias(PRED, TRUTH) == pytest.approx(EXPECTED["bias"])
    assert ubrmsd(PRED, TRUTH) == pytest.approx(EXPECTED["ubrmsd"])
    assert pearson_r(PRED, TRUTH) == pytest.approx(EXPECTED["r"])
    assert pearson_r(PRED, TRUTH) == pytest.approx(np.corrcoef(PRED, TRUTH)[0, 1])


def test_score_has_every_key_and_matches():
    s = score(PRED, TRUTH)
    assert list(s) == ["n", "mae", "mre", "rmse", "bias", "ubrmsd", "r"]
    assert s["n"] == 3 and isinstance(s["n"], int)
    for key, value in EXPECTED.items():
        assert s[key] == pytest.approx(value), key


def test_bias_sign_is_prediction_minus_reference():
    assert bias(np.array([0.3, 0.3]), np.array([0.2, 0.2])) == pytest.approx(0.1)
    assert bias(np.array([0.2, 0.2]), np.array([0.3, 0.3])) == pytest.approx(-0.1)


def test_mre_is_a_ratio_of_sums_not_a_mean_of_ratios():
    pred, truth = np.array([0.02, 0.5]), np.array([0.01, 0.5])
    # Ratio of sums: 0.01 / 0.51. A mean of ratios would give (1.0 + 0.0) / 2 = 0.5.
    assert mre(pred, truth) == pytest.approx(0.01 / 0.51)


def test_ubrmsd_identity_on_random_data():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.4, 200)
    pred = truth + 0.03 + rng.normal(0, 0.02, 200)
    assert ubrmsd(pred, truth) ** 2 == pytest.approx(
        rmse(pred, truth) ** 2 - bias(pred, truth) ** 2
    )


def test_nan_pairs_are_dropped():
    pred = np.array([0.1, np.nan, 0.2, 0.4, 0.5])
    truth = np.array([0.1, 0.2, 0.3, 0.2, np.nan])
    s = score(pred, truth)
    for key, value in EXPECTED.items():
        assert s[key] == pytest.approx(value), key


def test_mask_selects_entries():
    pred = np.array([0.1, 0.9, 0.2, 0.4])
    truth = np.array([0.1, 0.0, 0.3, 0.2])
    mask = np.array([True, False, True, True])
    s = score(pred, truth, mask)
    for key, value in EXPECTED.items():
        assert s[key] == pytest.approx(value), key
    # Masked-in NaN entries still drop out.
    pred[2] = np.nan
    assert score(pred, truth, mask)["n"] == 2
    assert mae(pred, truth, mask) == pytest.approx(0.1)


def test_dataarrays_and_2d_inputs():
    p = xr.DataArray(PRED.reshape(3, 1), dims=("time", "x"))
    t = xr.DataArray(TRUTH.reshape(3, 1), dims=("time", "x"))
    assert rmse(p, t) == pytest.approx(EXPECTED["rmse"])
    assert mae(p, t, xr.DataArray(np.array([[True], [True], [False]]), dims=("time", "x"))) == (
        pytest.approx(0.05)
    )


def test_no_pairs_and_degenerate_cases_give_nan():
    empty = np.array([np.nan, 0.2])
    other = np.array([0.1, np.nan])
    s = score(empty, other)
    assert s["n"] == 0
    assert all(math.isnan(s[k]) for k in ("mae", "mre", "rmse", "bias", "ubrmsd", "r"))
    assert math.isnan(mae(PRED, TRUTH, np.zeros(3, bool)))
    # One pair: no correlation. Constant series: no correlation.
    assert math.isnan(pearson_r(np.array([0.1]), np.array([0.2])))
    assert math.isnan(pearson_r(np.array([0.1, 0.2]), np.array([0.3, 0.3])))
    # All-zero truth: relative error undefined.
    assert math.isnan(mre(np.array([0.1]), np.array([0.0])))


def _cube_2x2x2():
    # time 0 and 1 at cells (0,0), (0,1), (1,0), (1,1).
    truth = np.array([[[0.1, 0.2], [0.3, 0.4]], [[0.2, 0.2], [0.3, np.nan]]])
    pred = np.array([[[0.2, 0.2], [0.1, 0.4]], [[0.1, 0.5], [0.3, 0.4]]])
    mask = np.array([[[True, True], [True, False]], [[True, True], [False, True]]])
    return pred, truth, mask


def test_error_map_2x2x2():
    pred, truth, mask = _cube_2x2x2()
    # Scored errors: (0,0): +0.1, -0.1; (0,1): 0, +0.3; (1,0): -0.2; (1,1): none.
    n = error_map(pred, truth, mask, "n")
    np.testing.assert_array_equal(n.values, [[2, 2], [1, 0]])
    np.testing.assert_allclose(
        error_map(pred, truth, mask, "mae").values, [[0.1, 0.15], [0.2, np.nan]]
    )
    np.testing.assert_allclose(
        error_map(pred, truth, mask, "bias").values, [[0.0, 0.15], [-0.2, np.nan]], atol=1e-12
    )
    np.testing.assert_allclose(
        error_map(pred, truth, mask, "rmse").values,
        [[0.1, math.sqrt(0.09 / 2)], [0.2, np.nan]],
    )
    # No mask: the NaN truth at (1,1) on day 1 still drops out, day 0 scores 0.
    np.testing.assert_array_equal(error_map(pred, truth, None, "n").values, [[2, 2], [2, 1]])
    with pytest.raises(ValueError, match="stat"):
        error_map(pred, truth, mask, "median")


def test_error_map_keeps_dataarray_coords():
    pred, truth, mask = _cube_2x2x2()
    coords = {
        "time": pd.date_range("2020-01-01", periods=2),
        "y": [200.0, 100.0],
        "x": [10.0, 20.0],
        "lat": (("y", "x"), [[1.0, 1.0], [0.0, 0.0]]),
    }
    p = xr.DataArray(pred, dims=("time", "y", "x"), coords=coords)
    t = xr.DataArray(truth, dims=("time", "y", "x"), coords=coords)
    m = error_map(p, t, mask, "mae")
    assert m.dims == ("y", "x")
    np.testing.assert_array_equal(m["y"].values, [200.0, 100.0])
    np.testing.assert_array_equal(m["x"].values, [10.0, 20.0])
    assert "lat" in m.coords and "time" not in m.coords
    # Dimension order of the input does not matter.
    m2 = error_map(p.transpose("y", "x", "time"), t, mask, "mae")
    np.testing.assert_allclose(m2.values, m.values)


def test_by_land_cover_by_hand():
    pred, truth, mask = _cube_2x2x2()
    land_cover = np.array([[12, 12], [10, 12]])
    table = by_land_cover(pred, truth, mask, land_cover, {12: "croplands"})
    assert list(table.columns) == [
        "land_cover",
        "name",
        "n_cells",
        "n",
        "mae",
        "rmse",
        "bias",
        "cell_mae_median",
    ]
    assert table["land_cover"].tolist() == [10, 12]
    assert table["name"].tolist() == ["10", "croplands"]
    assert table["n_cells"].tolist() == [1, 2]  # cell (1,1) has nothing scored
    assert table["n"].tolist() == [1, 4]
    grass, crop = table.iloc[0], table.iloc[1]
    assert grass["mae"] == pytest.approx(0.2)
    assert grass["bias"] == pytest.approx(-0.2)
    assert grass["cell_mae_median"] == pytest.approx(0.2)
    # Croplands errors: +0.1, -0.1, 0, +0.3.
    assert crop["mae"] == pytest.approx(0.5 / 4)
    assert crop["rmse"] == pytest.approx(math.sqrt(0.11 / 4))
    assert crop["bias"] == pytest.approx(0.3 / 4)
    assert crop["cell_mae_median"] == pytest.approx((0.1 + 0.15) / 2)


def test_by_land_cover_names_from_cf_attrs():
    pred, truth, mask = _cube_2x2x2()
    lc = xr.DataArray(
        np.array([[12, 12], [10, 12]]),
        dims=("y", "x"),
        attrs={"flag_values": [10, 12], "flag_meanings": "grasslands croplands"},
    )
    table = by_land_cover(pred, truth, mask, lc)
    assert table["name"].tolist() == ["grasslands", "croplands"]


# A 3x3 EASE-Grid 2.0 patch; cell (row j, column i) has its centre at (X0 + D*i, Y0 - D*j).
X0, Y0, D = -9548038.0, 3710818.0, 1000.9
N_DAYS = 20


def _station_dataset() -> xr.Dataset:
    x = X0 + D * np.arange(3)
    y = Y0 - D * np.arange(3)
    to_ll = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(*np.meshgrid(x, y))
    # Stations A at cell (row 0, col 1), B at (2, 2), C far outside the grid.
    sx = np.array([x[1] + 100.0, x[2] - 200.0, x[0] - 50 * D])
    sy = np.array([y[0] - 150.0, y[2] + 100.0, y[0]])
    slon, slat = to_ll.transform(sx, sy)
    time = pd.date_range("2021-06-01", periods=N_DAYS)
    days = np.arange(N_DAYS)
    imputed = np.full((N_DAYS, 3, 3), 0.25)
    imputed[:, 0, 1] = 0.2 + 0.005 * days
    imputed[:, 2, 2] = 0.3
    insitu = np.full((3, N_DAYS), np.nan)
    # A: 16 days (4..19) with imputed - insitu = 0.01 -/+ 0.005 alternating -> bias 0.01,
    # ubrmsd 0.005, rmse sqrt(0.01**2 + 0.005**2).
    wiggle = 0.005 * (-1.0) ** days
    insitu[0, 4:] = (imputed[:, 0, 1] - 0.01 + wiggle)[4:]
    # B: only 5 days of data -> below min_pairs.
    insitu[1, :5] = 0.28
    insitu[2, :] = 0.2
    sm = np.full((N_DAYS, 3, 3), np.nan)
    sm[::2, 0, 1] = imputed[::2, 0, 1] + 0.02  # satellite: every other day, 0.02 too wet
    ds = xr.Dataset(
        {
            "soil_moisture": (("time", "y", "x"), sm),
            "insitu": (("station", "time"), insitu),
        },
        coords={
            "time": time,
            "y": y,
            "x": x,
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
            "station": ["A", "B", "C"],
            "station_lat": ("station", slat),
            "station_lon": ("station", slon),
            "station_depth": ("station", [0.05, 0.05, 0.1]),
        },
    )
    ds.attrs["crs"] = "EPSG:6933"
    imp = xr.DataArray(imputed, dims=("time", "y", "x"), coords={"time": time, "y": y, "x": x})
    return ds, imp


def test_station_table_by_hand():
    ds, imp = _station_dataset()
    table = station_table(ds, imp, min_pairs=10)
    assert list(table.columns) == [
        "station",
        "lat",
        "lon",
        "depth",
        "row",
        "col",
        "n",
        "bias",
        "rmse",
        "ubrmsd",
        "r",
        "meets_target",
    ]
    # C lies outside the grid and is left out; "all" comes last.
    assert table["station"].tolist() == ["A", "B", "all"]
    assert table["row"].tolist()[:2] == [0, 2]
    assert table["col"].tolist()[:2] == [1, 2]
    assert table["n"].tolist() == [16, 5, 16]
    a = table.iloc[0]
    assert a["bias"] == pytest.approx(0.01)
    assert a["ubrmsd"] == pytest.approx(0.005)
    assert a["rmse"] == pytest.approx(math.sqrt(0.01**2 + 0.005**2))
    p = imp.values[4:, 0, 1]
    assert a["r"] == pytest.approx(np.corrcoef(p, ds["insitu"].values[0, 4:])[0, 1])
    assert a["lat"] == pytest.approx(float(ds["station_lat"][0]))
    assert a["depth"] == pytest.approx(0.05)
    assert bool(a["meets_target"]) is True
    # B keeps its row, with n but without metrics.
    b = table.iloc[1]
    assert b["n"] == 5
    assert all(math.isnan(b[k]) for k in ("bias", "rmse", "ubrmsd", "r"))
    assert bool(b["meets_target"]) is False
    # The pooled row only holds stations with enough pairs: here just A.
    pooled = table.iloc[2]
    for key in ("bias", "rmse", "ubrmsd", "r"):
        assert pooled[key] == pytest.approx(a[key])
    assert UBRMSD_TARGET == 0.04


def test_station_table_min_pairs_and_pooling():
    ds, imp = _station_dataset()
    table = station_table(ds, imp, min_pairs=5).set_index("station")
    # B now counts: imputed 0.3, in situ 0.28 -> bias 0.02, ubrmsd 0, r undefined.
    assert table.loc["B", "bias"] == pytest.approx(0.02)
    assert table.loc["B", "ubrmsd"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(table.loc["B", "r"])
    assert table.loc["all", "n"] == 21
    assert table.loc["all", "bias"] == pytest.approx((16 * 0.01 + 5 * 0.02) / 21)
    assert math.isnan(station_table(ds, imp, min_pairs=17).set_index("station").loc["all", "bias"])


def test_station_table_accepts_arrays_and_satellite():
    ds, imp = _station_dataset()
    table = station_table(ds, imp.values, satellite=ds["soil_moisture"], min_pairs=3)
    assert {"n_sat", "ubrmsd_sat", "bias_sat"} <= set(table.columns)
    a = table.set_index("station").loc["A"]
    # Satellite on even days 4..18: 8 pairs, each 0.02 wetter than imputed, so the
    # difference to in situ is 0.03 - 0.005 = 0.025 every time.
    assert a["n_sat"] == 8
    assert a["bias_sat"] == pytest.approx(0.025)
    assert a["ubrmsd_sat"] == pytest.approx(0.0, abs=1e-12)
    assert table.set_index("station").loc["B", "n_sat"] == 0
    with pytest.raises(ValueError, match="shape"):
        station_table(ds, imp.values[:, :2])


def test_roughness_counts_dry_day_changes_only():
    from stimpute_core.metrics import roughness

    field = np.array([0.30, 0.28, 0.40, 0.37, 0.36])[:, None, None] * np.ones((5, 2, 2))
    rain = np.zeros((5, 2, 2))
    rain[2] = 20.0  # the jump to 0.40 is a wetting: not counted
    assert roughness(field, rain) == pytest.approx((0.02 + 0.03 + 0.01) / 3)
    assert roughness(field) == pytest.approx((0.02 + 0.12 + 0.03 + 0.01) / 4)
    pairs = np.zeros((5, 2, 2), bool)
    pairs[4] = True
    assert roughness(field, rain, pairs=pairs) == pytest.approx(0.01)
    assert np.isnan(roughness(field, np.full((5, 2, 2), 5.0)))
