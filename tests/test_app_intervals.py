"""The workbench's intervals without a browser: quantiles kept for the probabilistic methods,
the scores, calibration, width map, bands, stations in the band and the exports.

One small scenario (12 x 12 cells, 2020), imputed once by a conformal reference and a
deterministic baseline; every number is checked against the ``stimpute_core`` function that
makes it.
"""

from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.data import TARGET
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.selection import station_cells
from stimpute_core.models import CONFORMAL_VARIANTS, make_imputer
from stimpute_core.models.base import QUANTILE_NAME
from stimpute_core.models.pretrained import Pretrained
from stimpute_core.uncertainty import (
    CALIBRATION_LEVELS,
    SCORE_QUANTILES,
    calibration_curve,
    distribution_scores,
    interval_width_map,
)
from stimpute_core.validation import mask_for, station_in_band
from workbench import shared
from workbench.intervals import BAND_LABEL, FIELD_QUANTILES, impute_run
from workbench.state import ST, Workbench

PROB = "idw-conformal"
DIMS = ("quantile", "time", "y", "x")


@pytest.fixture(scope="module")
def wb(tmp_path_factory):
    """A session on a small scenario, imputed with a conformal reference and the mean."""
    root = tmp_path_factory.mktemp("intervals")
    box = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=12, ncols=12)
    cfg = ScenarioConfig(start="2020-01-01", end="2020-12-31", box=box, n_stations=6)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MODELS", "DATA", "CACHE"):
            mp.setenv(f"STIMPUTE_{name}_DIR", str(root / name.lower()))
        mp.setattr(shared, "_SHARED", OrderedDict())
        session = Workbench(make_scenario(cfg), label="intervals")
        session.method, session.compare = PROB, ["mean"]
        session.impute()
        session.wait()
        yield session
        session.close()


def _held(wb):
    sel = wb.selection()
    return sel, mask_for(sel, wb.evaluation_mask()), sel[TARGET].transpose("time", "y", "x").values


def test_probabilistic_references_are_offered_and_one_is_compared_by_default():
    fresh = Workbench.__new__(Workbench)  # the class's parameters, without data
    assert set(CONFORMAL_VARIANTS) <= set(fresh.param.compare.objects)
    assert set(CONFORMAL_VARIANTS) <= set(fresh.param.method.objects)
    assert any(m in CONFORMAL_VARIANTS for m in Workbench.param.compare.default)


def test_probabilistic_runs_keep_their_quantiles(wb):
    run, mean = wb.run(PROB), wb.run("mean")
    assert mean.quantiles is None and mean.heldout_quantiles is None
    assert set(wb.probabilistic_runs()) == {PROB}
    assert run.quantiles.dims == DIMS and run.heldout_quantiles.dims == DIMS
    np.testing.assert_allclose(run.quantiles["quantile"], FIELD_QUANTILES)
    np.testing.assert_allclose(run.heldout_quantiles["quantile"], SCORE_QUANTILES)
    obs = wb.selection()[TARGET].transpose("time", "y", "x").values
    seen = np.isfinite(obs)
    for q in run.quantiles.values:  # observed entries equal the observation in every quantile
        np.testing.assert_allclose(q[seen], obs[seen], rtol=1e-6)


def test_the_model_decides_whether_it_gives_intervals(wb):
    sel, _, _ = _held(wb)
    mask = wb.evaluation_mask()
    fitted_idw = make_imputer("idw").fit(sel)
    assert impute_run(lambda: Pretrained(fitted_idw), sel, mask)[2:] == (None, None)
    fitted = make_imputer(PROB).fit(sel)
    _, _, q, held_q = impute_run(lambda: Pretrained(fitted), sel, mask)
    assert q is not None and held_q.sizes["quantile"] == len(SCORE_QUANTILES)


def test_scores_and_calibration_come_from_the_core(wb):
    _, mask, obs = _held(wb)
    held = wb.run(PROB).heldout_quantiles.transpose(*DIMS).values
    scores = wb.scores().set_index("model")
    expected = distribution_scores(held, SCORE_QUANTILES, obs, mask)
    for key in ("crps", "cover90", "width90"):
        assert scores.loc[PROB, key] == pytest.approx(expected[key])
        assert np.isnan(scores.loc["mean", key])
    assert 0.5 < scores.loc[PROB, "cover90"] <= 1 and scores.loc[PROB, "crps"] > 0
    curves = wb.calibration()
    assert set(curves["model"]) == {PROB}
    np.testing.assert_allclose(curves["stated"], CALIBRATION_LEVELS)
    np.testing.assert_allclose(
        curves["observed"], calibration_curve(held, SCORE_QUANTILES, obs, mask)
    )


def test_width_map_and_bands(wb):
    q = wb.run(PROB).quantiles.transpose(*DIMS).values
    np.testing.assert_allclose(wb.width_map(5), interval_width_map(q[:, 5], FIELD_QUANTILES))
    assert (wb.width_map(5) >= 0).all() and wb.width_map(5).shape == (12, 12)
    assert wb.width_map(5, "mean") is None
    lower, upper = wb.cell_band(3, 4)
    np.testing.assert_allclose(lower, q[0, :, 3, 4])
    np.testing.assert_allclose(upper, q[-1, :, 3, 4])
    assert wb.cell_band(3, 4, "mean") is None
    band = wb.station_band()
    rows, cols = station_cells(wb.selection())
    i = [str(s) for s in wb.selection()["station"].values].index(wb.station)
    np.testing.assert_allclose(band["lower"], q[0, :, rows[i], cols[i]])
    np.testing.assert_allclose(band["upper"], q[-1, :, rows[i], cols[i]])
    assert wb.station_band(method="mean") is None
    assert BAND_LABEL == "5–95 % band"


def test_station_table_has_the_share_in_the_band(wb):
    table = wb.station_table()
    q = wb.run(PROB).quantiles.transpose(*DIMS)
    lower, upper = q.isel(quantile=0).values, q.isel(quantile=-1).values
    expected = station_in_band(wb.selection(), {PROB: (lower, upper)}).set_index("station")
    mine = table[table["model"] == PROB].set_index("station")
    np.testing.assert_allclose(mine["in_band"], expected.loc[mine.index, "in_band"])
    assert mine.loc["all", "in_band"] > 0.5
    assert table[table["model"].isin(["mean", "satellite"])]["in_band"].isna().all()


def test_exports_carry_the_quantiles_and_the_band(wb):
    raw = wb.export_netcdf().getvalue()
    with xr.open_dataset(io.BytesIO(raw), engine="h5netcdf") as handle:
        out = handle.load()
    name = f"{QUANTILE_NAME}_idw_conformal"
    assert name in out and f"{QUANTILE_NAME}_mean" not in out
    assert out[name].dims == DIMS and out[name].attrs["method"] == PROB
    np.testing.assert_allclose(out["quantile"], FIELD_QUANTILES)
    np.testing.assert_allclose(out[name].values, wb.run(PROB).quantiles.values, rtol=1e-6)

    frame = pd.read_csv(wb.export_csv())
    assert set(frame["table"]) == {"held_out_scores", "stations", "land_cover", "station_bands"}
    bands = frame[frame["table"] == "station_bands"]
    assert set(bands["model"]) == {PROB}
    one = bands[bands["station"] == wb.station]
    np.testing.assert_allclose(one["lower"], wb.station_band()["lower"], rtol=1e-6)
    np.testing.assert_allclose(one["upper"], wb.station_band()["upper"], rtol=1e-6)
    assert (bands["lower"] <= bands["imputed"] + 1e-9).all()
    scores = frame[frame["table"] == "held_out_scores"].set_index("model")
    assert np.isfinite(scores.loc[PROB, "crps"]) and np.isnan(scores.loc["mean", "crps"])


def test_a_session_without_probabilistic_runs_has_no_interval_columns(wb):
    method, compare = wb.method, list(wb.compare)
    try:
        wb.method, wb.compare = "mean", []
        wb.set_window("2020-06-01", "2020-08-31")
        wb.impute()
        wb.wait()
        assert "crps" not in wb.scores() and wb.calibration().empty
        assert "in_band" not in wb.station_table() and wb.width_map(0) is None
        assert wb.run(ST) is None
    finally:
        wb.set_window("2020-01-01", "2020-12-31")
        wb.method, wb.compare = method, compare
