"""Validation helpers: a mask that subsets consistently, and scores checked on exact cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data.contract import IGBP_CLASSES, INSITU, TARGET, TRUTH
from stimpute_core.data.grid import TXSON_BOX, GridBox, xy_to_lonlat
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.selection import station_cells
from stimpute_core.masks import apply_holdout
from stimpute_core.models import make_imputer
from stimpute_core.validation import (
    CELL_COLUMNS,
    EVALUATION_HOLDOUT,
    NEST_COLUMNS,
    STATION_COLUMNS,
    cell_errors,
    evaluation_mask,
    held_out_scores,
    land_cover_table,
    mask_for,
    station_comparison,
    station_nests,
    station_series,
)

SMALL_BOX = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=12, ncols=12)


@pytest.fixture(scope="module")
def scenario() -> xr.Dataset:
    """A 12x12-cell, 121-day scenario with 12 nested stations (generated in well under 1 s)."""
    cfg = ScenarioConfig(
        start="2020-01-01", end="2020-04-30", box=SMALL_BOX, n_stations=12, pass_availability=1.0
    )
    return make_scenario(cfg)


# The exact case: a 4x5 grid over 30 days where the observations equal the truth wherever
# observed (no retrieval noise), land cover grassland (10) in columns 0-2 and savanna (9) in 3-4,
# and three stations at cell centres whose in-situ series is the truth at their cell.
NT, NY, NX = 30, 4, 5
STATION_CELLS = {"S1": (0, 0), "S2": (2, 3), "S3": (3, 4)}


def _exact_dataset(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    box = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=NY, ncols=NX)
    x, y = box.coords()
    lon, lat = xy_to_lonlat(*np.meshgrid(x, y))
    truth = rng.uniform(0.1, 0.4, (NT, NY, NX))
    observed = rng.random((NT, NY, NX)) < 0.5
    observed[::3] = False  # some days without any observation
    sm = np.where(observed, truth, np.nan)
    land_cover = np.full((NY, NX), 10, dtype=np.int16)
    land_cover[:, 3:] = 9
    rows = np.array([rc[0] for rc in STATION_CELLS.values()])
    cols = np.array([rc[1] for rc in STATION_CELLS.values()])
    slon, slat = xy_to_lonlat(x[cols], y[rows])
    return xr.Dataset(
        {
            TARGET: (("time", "y", "x"), sm),
            TRUTH: (("time", "y", "x"), truth),
            "land_cover": (
                ("y", "x"),
                land_cover,
                {
                    "flag_values": np.array([9, 10], dtype=np.int16),
                    "flag_meanings": f"{IGBP_CLASSES[9]} {IGBP_CLASSES[10]}",
                },
            ),
            INSITU: (("station", "time"), truth[:, rows, cols].T.copy()),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=NT),
            "y": y,
            "x": x,
            "lat": (("y", "x"), lat),
            "lon": (("y", "x"), lon),
            "station": list(STATION_CELLS),
            "station_lat": ("station", slat),
            "station_lon": ("station", slon),
            "station_depth": ("station", np.full(3, 0.05)),
            "station_nest": ("station", ["3km", "9km", "36km"]),
        },
        attrs={"crs": "EPSG:6933"},
    )


# --- the evaluation mask ---------------------------------------------------------------------


def test_evaluation_mask_hides_a_fifth_of_the_observed_days(scenario):
    mask = evaluation_mask(scenario)
    observed = np.isfinite(scenario[TARGET].values)
    assert mask.dims == ("time", "y", "x") and mask.dtype == bool
    assert mask.name == "evaluation_mask"
    assert {"lat", "lon"} <= set(mask.coords)
    assert mask.attrs["kind"] == "time_slice" and mask.attrs["fraction"] == 0.2
    assert mask.attrs["seed"] == 0
    np.testing.assert_array_equal(mask["time"].values, scenario["time"].values)
    # Only observed entries, and whole observed days.
    assert mask.values.any() and not (mask.values & ~observed).any()
    hidden_days = mask.values.any(axis=(1, 2))
    np.testing.assert_array_equal(mask.values[hidden_days], observed[hidden_days])
    observed_days = int(observed.any(axis=(1, 2)).sum())
    assert hidden_days.sum() == round(0.2 * observed_days)
    # The defaults are the app's hold-out.
    np.testing.assert_array_equal(mask.values, evaluation_mask(scenario, **EVALUATION_HOLDOUT))
    assert not np.array_equal(mask.values, evaluation_mask(scenario, seed=1).values)


def test_a_subset_takes_the_matching_part_of_the_mask(scenario):
    mask = evaluation_mask(scenario)
    sub = scenario.isel(y=slice(2, 9), x=slice(4, 11)).sel(time=slice("2020-02-01", "2020-03-31"))
    times = pd.DatetimeIndex(scenario["time"].values)
    t0, t1 = times.get_loc("2020-02-01"), times.get_loc("2020-03-31")
    expected = mask.values[t0 : t1 + 1, 2:9, 4:11]
    np.testing.assert_array_equal(mask_for(sub, mask), expected)
    np.testing.assert_array_equal(
        mask.sel(time=sub["time"], y=sub["y"], x=sub["x"]).values, expected
    )
    # A DataArray of the subset works as well as the Dataset.
    np.testing.assert_array_equal(mask_for(sub[TARGET], mask), expected)


def test_mask_for_names_the_coordinates_outside_the_mask(scenario):
    mask = evaluation_mask(scenario.isel(time=slice(0, 60)))
    with pytest.raises(ValueError, match=r"coordinate 'time'.*2020-03-01"):
        mask_for(scenario.isel(time=slice(50, 70)), mask)
    shifted = scenario.isel(time=slice(0, 10)).assign_coords(x=scenario["x"] + 500.0)
    with pytest.raises(ValueError, match="coordinate 'x'"):
        mask_for(shifted, mask)


# --- held-out scores -------------------------------------------------------------------------


def test_held_out_scores_of_the_truth_and_of_an_offset():
    ds = _exact_dataset()
    mask = evaluation_mask(ds)
    n_hidden = int(mask.values.sum())
    assert n_hidden > 0
    perfect = held_out_scores(ds, ds[TRUTH], mask)
    assert perfect["n"] == n_hidden
    assert perfect["mae"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["mae_truth"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["r"] == pytest.approx(1.0)
    wet = held_out_scores(ds, ds[TRUTH] + 0.05, mask)
    assert wet["bias"] == pytest.approx(0.05)
    assert wet["mae"] == pytest.approx(0.05)
    assert wet["mae_truth"] == pytest.approx(0.05)
    assert wet["ubrmsd"] == pytest.approx(0.0, abs=1e-9)
    # Entries outside the mask do not count: spoil them and nothing changes.
    spoiled = (ds[TRUTH] + 0.05).where(mask, 9.0)
    assert held_out_scores(ds, spoiled.values, mask)["mae"] == pytest.approx(0.05)


def test_held_out_scores_without_truth_and_after_hiding():
    ds = _exact_dataset()
    mask = evaluation_mask(ds)
    scores = held_out_scores(ds.drop_vars(TRUTH), ds[TRUTH], mask)
    assert scores["mae"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(scores["mae_truth"])
    hidden = apply_holdout(ds, mask.values)
    with pytest.raises(ValueError, match="before hiding"):
        held_out_scores(hidden, ds[TRUTH], mask)


def test_held_out_scores_on_a_subset_with_a_full_imputation(scenario):
    mask = evaluation_mask(scenario)
    hidden = apply_holdout(scenario, mask.values)
    imputed = make_imputer("mean").fit(hidden).impute(hidden)
    full = held_out_scores(scenario, imputed, mask)
    assert full["n"] == int(mask.values.sum())
    assert 0 < full["mae"] < 0.2 and 0 < full["mae_truth"] < 0.2
    sub = scenario.isel(y=slice(0, 6), x=slice(0, 6))
    part = held_out_scores(sub, imputed, mask)  # field and mask both matched by coordinates
    assert part["n"] == int(mask.values[:, :6, :6].sum())
    assert part["mae"] == pytest.approx(
        np.nanmean(
            np.abs(imputed.values - scenario[TARGET].values)[:, :6, :6][mask.values[:, :6, :6]]
        )
    )


# --- per-cell errors and land cover ----------------------------------------------------------


def test_cell_errors_by_hand():
    ds = _exact_dataset()
    truth = ds[TRUTH].values
    observed = np.isfinite(ds[TARGET].values)
    mask = np.zeros((NT, NY, NX), bool)
    pred = truth.copy()
    # Cell (0, 1): two scored entries with errors +0.1 and -0.3 -> MAE 0.2.
    days01 = np.flatnonzero(observed[:, 0, 1])[:2]
    mask[days01, 0, 1] = True
    pred[days01, 0, 1] += [0.1, -0.3]
    # Cell (2, 4): one scored entry with error +0.05.
    day24 = np.flatnonzero(observed[:, 2, 4])[0]
    mask[day24, 2, 4] = True
    pred[day24, 2, 4] += 0.05
    # Errors off the mask are ignored.
    pred[:, 3, 3] += 1.0
    table = cell_errors(ds, pred, mask)
    assert list(table.columns) == CELL_COLUMNS
    assert table[["row", "col"]].values.tolist() == [[0, 1], [2, 4]]
    assert table["n"].tolist() == [2, 1]
    np.testing.assert_allclose(table["mae"], [0.2, 0.05])
    assert table["land_cover"].tolist() == [10, 9]
    assert table["land_cover_name"].tolist() == ["grasslands", "savannas"]
    assert table["lat"].iloc[0] == pytest.approx(float(ds["lat"][0, 1]))
    # Against the truth: same numbers here, because observations equal the truth.
    np.testing.assert_allclose(cell_errors(ds, pred, mask, against="truth")["mae"], [0.2, 0.05])


def test_cell_errors_refuses_a_missing_truth_and_unknown_reference():
    ds = _exact_dataset()
    mask = evaluation_mask(ds)
    with pytest.raises(ValueError, match="soil_moisture_true"):
        cell_errors(ds.drop_vars(TRUTH), ds[TRUTH], mask, against="truth")
    with pytest.raises(ValueError, match="against='insitu'"):
        cell_errors(ds, ds[TRUTH], mask, against="insitu")


def test_land_cover_table_per_model():
    ds = _exact_dataset()
    mask = evaluation_mask(ds)
    models = {"perfect": ds[TRUTH], "wet": ds[TRUTH] + 0.05}
    table = land_cover_table(ds, models, mask)
    assert table.columns[0] == "model"
    assert table["model"].tolist() == ["perfect", "perfect", "wet", "wet"]
    assert table["name"].tolist() == ["savannas", "grasslands"] * 2
    for _, block in table.groupby("model"):
        assert block["n"].sum() == int(mask.values.sum())
    cells = cell_errors(ds, ds[TRUTH] + 0.05, mask)
    wet = table[table["model"] == "wet"].set_index("land_cover")
    for code, count in cells.groupby("land_cover")["n"].sum().items():
        assert wet.loc[code, "n"] == count
        assert wet.loc[code, "n_cells"] == int((cells["land_cover"] == code).sum())
    np.testing.assert_allclose(wet["bias"], 0.05)
    np.testing.assert_allclose(table[table["model"] == "perfect"]["mae"], 0.0, atol=1e-12)
    empty = land_cover_table(ds, {}, mask)
    assert empty.empty and empty.columns[0] == "model"


# --- stations --------------------------------------------------------------------------------


def test_station_comparison_by_hand():
    ds = _exact_dataset()
    models = {"perfect": ds[TRUTH], "wet": ds[TRUTH] + 0.05}
    table = station_comparison(ds, models, min_pairs=3)
    assert list(table.columns) == STATION_COLUMNS
    assert table["model"].unique().tolist() == ["perfect", "wet", "satellite"]
    for _, block in table.groupby("model"):
        assert block["station"].tolist() == ["S1", "S2", "S3", "all"]
        assert block["nest"].tolist() == ["3km", "9km", "36km", ""]
    perfect = table[table["model"] == "perfect"].set_index("station")
    assert (perfect["n"].iloc[:3] == NT).all() and perfect.loc["all", "n"] == 3 * NT
    np.testing.assert_allclose(perfect["ubrmsd"], 0.0, atol=1e-9)
    np.testing.assert_allclose(perfect["bias"], 0.0, atol=1e-12)
    assert perfect["meets_target"].all()
    wet = table[table["model"] == "wet"].set_index("station")
    np.testing.assert_allclose(wet["bias"], 0.05)
    np.testing.assert_allclose(wet["ubrmsd"], 0.0, atol=1e-9)
    # The satellite block pairs only the observed days at each station's cell.
    sat = table[table["model"] == "satellite"].set_index("station")
    observed = np.isfinite(ds[TARGET].values)
    for name, (r, c) in STATION_CELLS.items():
        assert sat.loc[name, "n"] == int(observed[:, r, c].sum())
    np.testing.assert_allclose(sat["ubrmsd"], 0.0, atol=1e-9)
    # Too few pairs: the row stays, with NaN metrics and no target met.
    strict = station_comparison(ds, {}, min_pairs=NT)
    assert strict["model"].unique().tolist() == ["satellite"]
    assert strict["ubrmsd"].isna().all() and not strict["meets_target"].any()
    with pytest.raises(ValueError, match="satellite"):
        station_comparison(ds, {"satellite": ds[TRUTH]})


def test_station_comparison_on_the_scenario_with_baselines(scenario):
    mask = evaluation_mask(scenario)
    hidden = apply_holdout(scenario, mask.values)
    models = {name: make_imputer(name).fit(hidden).impute(hidden) for name in ("mean", "idw")}
    table = station_comparison(scenario, models)
    assert table["model"].unique().tolist() == ["mean", "idw", "satellite"]
    assert (table["station"] == "all").sum() == 3
    inside = station_cells(scenario)[0] >= 0
    assert (table["model"] == "mean").sum() == int(inside.sum()) + 1
    assert set(table["nest"]) <= {"3km", "9km", "36km", ""}
    pooled = table[(table["station"] == "all") & (table["model"] != "satellite")]
    assert pooled["ubrmsd"].notna().all() and (pooled["n"] > 0).all()


def test_station_series_columns_and_values():
    ds = _exact_dataset()
    wet = ds[TRUTH] + 0.05
    series = station_series(ds, "S2", {"wet": wet})
    assert list(series.columns) == ["insitu", "satellite", "wet", "truth"]
    assert series.index.name == "time" and len(series) == NT
    r, c = STATION_CELLS["S2"]
    np.testing.assert_allclose(series["truth"], ds[TRUTH].values[:, r, c])
    np.testing.assert_allclose(series["wet"], ds[TRUTH].values[:, r, c] + 0.05)
    np.testing.assert_array_equal(
        series["satellite"].notna(), np.isfinite(ds[TARGET].values[:, r, c])
    )
    np.testing.assert_allclose(series["insitu"], series["truth"])
    assert "truth" not in station_series(ds.drop_vars(TRUTH), "S2", {}).columns


def test_station_series_errors():
    ds = _exact_dataset()
    with pytest.raises(ValueError, match=r"'NOPE' unknown.*S1, S2, S3"):
        station_series(ds, "NOPE", {})
    far = ds.assign_coords(station_lon=ds["station_lon"] - [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="'S1' lies outside the grid"):
        station_series(far, "S1", {})
    with pytest.raises(ValueError, match="no 'insitu' stations"):
        station_series(ds.drop_vars(INSITU), "S1", {})


def test_station_nests(scenario):
    table = station_nests(scenario)
    assert list(table.columns) == NEST_COLUMNS
    assert len(table) == scenario.sizes["station"]
    rows, cols = station_cells(scenario)
    np.testing.assert_array_equal(table["row"], rows)
    np.testing.assert_array_equal(table["col"], cols)
    assert table["nest"].tolist() == [str(n) for n in scenario["station_nest"].values]
    assert set(table["nest"]) == {"3km", "9km", "36km"}
    no_stations = scenario.drop_vars(INSITU).drop_dims("station")
    empty = station_nests(no_stations)
    assert empty.empty and list(empty.columns) == NEST_COLUMNS
