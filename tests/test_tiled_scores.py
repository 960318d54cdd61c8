"""Tiled scoring (:mod:`stimpute_core.tiled_scores`): the same scores as the untiled benchmark,
sums that rebuild every metric, the point hold-out's tile draws, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stimpute_core import masks, metrics, tiled_scores
from stimpute_core.benchmark import run_benchmark
from stimpute_core.data.contract import TARGET, TRUTH
from stimpute_core.data.grid import GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.zarr_io import write_zarr
from stimpute_core.models import make_imputer
from stimpute_core.tiles import plan_tiles

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")
TEST_START = "2019-10-01"
SCORES = ["n", "mae", "mre", "rmse", "bias", "ubrmsd", "r", "mae_truth"]


@pytest.fixture(scope="module")
def cube():
    box = GridBox(row0=3400, col0=7600, nrows=10, ncols=9)
    cfg = ScenarioConfig(seed=5, start="2019-01-01", end="2019-12-31", box=box, n_stations=3)
    return make_scenario(cfg).load()


@pytest.fixture(scope="module")
def store(cube, tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "in.zarr"
    write_zarr(cube, path, tile=4)  # 3 x 3 tiles, the last row and column narrower
    return path


def test_sums_rebuild_every_score():
    rng = np.random.default_rng(0)
    pred, truth = rng.normal(0.2, 0.05, (30, 4, 3)), rng.normal(0.22, 0.05, (30, 4, 3))
    truth[0, 0, 0] = np.nan
    where = rng.random(pred.shape) < 0.4
    halves = [
        where & (np.arange(30) < 12)[:, None, None],
        where & (np.arange(30) >= 12)[:, None, None],
    ]
    sums = tiled_scores.add_sums(
        tiled_scores.error_sums(pred, truth, halves[0]),
        tiled_scores.error_sums(pred, truth, halves[1]),
    )
    got, want = tiled_scores.scores_from_sums(sums), metrics.score(pred, truth, where)
    assert got["n"] == want["n"]
    for k in ("mae", "mre", "rmse", "bias", "ubrmsd", "r"):
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    assert np.isnan(tiled_scores.scores_from_sums(dict.fromkeys(tiled_scores.SUMS, 0.0))["mae"])


def test_time_slice_scores_equal_the_untiled_benchmark(cube, store):
    models = ["mean", "linear"]
    tiled = tiled_scores.run_tiled_benchmark(store, models, seeds=(0, 1), test_start=TEST_START)
    whole = run_benchmark(cube, models, seeds=(0, 1), test_start=TEST_START)
    key = ["model", "holdout", "period", "seed"]
    merged = pd.merge(tiled, whole, on=key, suffixes=("_tiled", "_whole"))
    assert len(merged) == len(whole) == 8 and (merged["tiles"] == 9).all()
    for col in SCORES:
        np.testing.assert_allclose(merged[f"{col}_tiled"], merged[f"{col}_whole"], rtol=1e-5)


def test_point_scores_equal_untiled_scores_of_the_same_entries(cube, store):
    tiled = tiled_scores.run_tiled_benchmark(
        store, ["linear"], holdouts=("point",), seeds=(3,), test_start=TEST_START
    )
    periods = {"validation": cube.sel(time=slice(None, "2019-09-30")),
               "test": cube.sel(time=slice(TEST_START, None))}  # fmt: skip
    hidden = {}
    for k, (p, part) in enumerate(periods.items()):  # the tiles' own draws, put together
        full = np.zeros(part[TARGET].shape, bool)
        observed = np.isfinite(part[TARGET].values)
        for t in plan_tiles(10, 9, 4):
            sl = (slice(None), slice(t.y0, t.y1), slice(t.x0, t.x1))
            full[sl] = tiled_scores.holdout_for_tile(observed[sl], "point", 0.2, 3 + 1000 * k, t)
        assert abs(full.sum() / observed.sum() - 0.2) < 0.01
        hidden[p] = full
    model = make_imputer("linear").fit(
        masks.apply_holdout(periods["validation"], hidden["validation"])
    )
    for p, part in periods.items():
        pred = model.impute(masks.apply_holdout(part, hidden[p])).values
        row = tiled[tiled["period"] == p].iloc[0]
        want = metrics.score(pred, part[TARGET].values, hidden[p])
        assert row["n"] == want["n"]
        assert row["mae"] == pytest.approx(want["mae"], rel=1e-5)
        assert row["mae_truth"] == pytest.approx(
            metrics.mae(pred, part[TRUTH].values, hidden[p]), rel=1e-5
        )


def test_two_dask_workers_give_the_same_scores(store):
    from distributed import Client, LocalCluster

    alone = tiled_scores.run_tiled_benchmark(store, ["linear"], seeds=(0,), test_start=TEST_START)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as c, Client(c) as client:  # fmt: skip
        seen = []
        spread = tiled_scores.run_tiled_benchmark(
            store, ["linear"], seeds=(0,), test_start=TEST_START, client=client,
            progress=lambda done, total: seen.append((done, total)),
        )  # fmt: skip
    key = ["model", "holdout", "period", "seed"]
    pd.testing.assert_frame_equal(
        alone.sort_values(key).reset_index(drop=True)[key + SCORES],
        spread.sort_values(key).reset_index(drop=True)[key + SCORES],
    )
    assert seen[0] == (0, 9) and seen[-1] == (9, 9)


def test_what_cannot_be_scored_in_tiles_is_refused(store):
    with pytest.raises(ValueError, match="cannot be scored tile by tile"):
        tiled_scores.run_tiled_benchmark(store, ["regression"], test_start=TEST_START)
    with pytest.raises(ValueError, match="hold-out 'block'"):
        tiled_scores.run_tiled_benchmark(
            store, ["linear"], holdouts=("block",), test_start=TEST_START
        )


def test_benchmark_command_scores_a_store_by_tiles(store, tmp_path, capsys):
    import json

    from stimpute_core.cli import main

    out = tmp_path / "bench.json"
    argv = ["benchmark", "--data", str(store), "--models", "mean,linear", "--seeds", "1",
            "--test-start", TEST_START, "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "scored 9 tiles" in captured.err and "| linear |" in captured.out
    payload = json.loads(out.read_text())
    assert payload["tiled"] is True and len(payload["runs"]) == 4
    assert main([*argv[:4], "regression", *argv[5:], "--workers", "2"]) == 2
    assert "tiled scoring needs" in capsys.readouterr().err
