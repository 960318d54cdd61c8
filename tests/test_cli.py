"""The ``stimpute`` command: data demo/info and the benchmark, including error exits."""

import json

import numpy as np
import pytest
import xarray as xr

from stimpute_core.cli import main
from stimpute_core.models import DIFFUSION, PEERS, ST_VARIANTS


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "demo.nc"
    assert (
        main(["data", "demo", "--out", str(path), "--start", "2018-01-01", "--end", "2020-12-31"])
        == 0
    )
    return path


def test_demo_writes_a_contract_file(demo_file, capsys):
    with xr.open_dataset(demo_file) as ds:
        assert ds.sizes["time"] == 1096 and ds.sizes["station"] == 40
    assert main(["data", "info", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert "36 x 36 cells" in out and "2018-01-01 .. 2020-12-31" in out and "contract    OK" in out


def test_info_reports_contract_problems(tmp_path, demo_file, capsys):
    with xr.open_dataset(demo_file) as ds:
        bad = ds.load()
    bad["soil_moisture"] = bad["soil_moisture"] * 100  # percent instead of m3/m3
    bad["soil_moisture"].attrs["units"] = "%"
    path = tmp_path / "bad.nc"
    bad.to_netcdf(path, engine="h5netcdf")
    assert main(["data", "info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "soil_moisture" in out and "0.0..0.8" in out


def test_benchmark_writes_json_and_table(demo_file, tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    code = main(
        [
            "benchmark", "--data", str(demo_file), "--models", "mean,linear",
            "--holdout", "time-slice,point", "--seeds", "2", "--json", str(out_json), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out_json.read_text())
    records = payload["results"]
    assert len(records) == 2 * 2 * 2  # models x holdouts x periods
    for rec in records:
        assert {"model", "holdout", "period", "mae", "mre", "mae_sd", "fit_s"} <= set(rec)
        assert rec["n_seeds"] == 2 and rec["mae"] > 0
    assert {r["period"] for r in records} == {"validation", "test"}
    test_rec = next(r for r in records if r["period"] == "test")
    assert test_rec["start"] == "2019-01-01"  # default test period: the last two years
    table = capsys.readouterr().out
    assert table.startswith("| model | holdout | period | MAE") and "time-slice" in table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "info", "missing.nc"], "missing.nc: no such file"),
        (["benchmark", "--data", "x.nc", "--models", "mean,bogus"], "unknown model(s) bogus"),
        (["benchmark", "--data", "x.nc", "--holdout", "diagonal"], "unknown holdout(s) diagonal"),
        (["benchmark", "--data", "x.nc", "--skip", "bogus"], "unknown model(s) bogus"),
        (["benchmark", "--data", "x.nc", "--models", "mean", "--skip", "mean"], "no model left"),
    ],
)
def test_errors_exit_2_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_not_netcdf_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "notes.nc"
    path.write_text("not a netcdf file")
    assert main(["data", "info", str(path)]) == 2
    assert "cannot be read as NetCDF" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_impute_with_the_evaluation_hold_out_hidden(demo_file, tmp_path):
    from stimpute_core.data.io import open_dataset, write_netcdf
    from stimpute_core.models.st_transformer.model import STTransformerImputer
    from stimpute_core.validation import EVALUATION_HOLDOUT

    small = tmp_path / "small.nc"
    write_netcdf(
        open_dataset(demo_file).isel(y=slice(0, 14), x=slice(0, 13)).sel(time="2020"), small
    )
    model_dir, out = tmp_path / "model", tmp_path / "imputed.nc"
    argv = ["train", "--data", str(small), "--profile", "tiny", "--hide-evaluation"]
    assert main([*argv, "--out", str(model_dir), "--quiet"]) == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert config["training"]["holdout"] == EVALUATION_HOLDOUT
    assert STTransformerImputer.load(model_dir).training_["holdout"] == EVALUATION_HOLDOUT

    assert (
        main(["impute", "--data", str(demo_file), "--model", str(model_dir), "--out", str(out)])
        == 0
    )
    with xr.open_dataset(out) as ds:
        filled = ds["soil_moisture_imputed"].values
        observed = ds["soil_moisture"].values
    assert np.isfinite(filled).all()
    seen = np.isfinite(observed)
    np.testing.assert_allclose(filled[seen], observed[seen], rtol=1e-6)

    # The default training gives intervals: --quantiles adds them, observations kept in each.
    banded = tmp_path / "banded.nc"
    argv = ["impute", "--data", str(small), "--model", str(model_dir), "--out", str(banded)]
    assert main([*argv, "--quantiles", "0.95,0.05,0.5"]) == 0
    with xr.open_dataset(banded) as ds:
        q = ds["soil_moisture_quantile"]
        assert q.dims == ("quantile", "time", "y", "x")
        assert list(q["quantile"].values) == [0.05, 0.5, 0.95]
        values, observed = q.values, ds["soil_moisture"].values
    assert (np.diff(values, axis=0) >= 0).all() and (values[2] > values[0]).any()
    seen = np.isfinite(observed)
    np.testing.assert_allclose(values[:, seen], np.broadcast_to(observed[seen], (3, seen.sum())))


def test_benchmark_all_with_skip_runs_every_installed_method_but_those(
    demo_file, capsys, monkeypatch
):
    import stimpute_core.cli.model_commands as cli

    ran = []
    real = cli.installed_models
    monkeypatch.setattr(cli, "installed_models", lambda: ran.extend(real()) or real())
    slow = [
        "mice",
        "forest",
        "boosting",
        "boosting-smooth",
        "dineof",
        "mf",
        "kalman",
        "regression",
        "climatology",
        "idw",
        "regression-conformal",
        "idw-conformal",
        "boosting-conformal",
        *DIFFUSION,
    ]
    code = main(
        [
            "benchmark", "--data", str(demo_file), "--models", "all", "--seeds", "1",
            "--skip", ",".join([*slow, *ST_VARIANTS, *(m for m in real() if m in PEERS)]),
        ]
    )  # fmt: skip
    assert code == 0 and "mean" in ran
    captured = capsys.readouterr()
    table = captured.out
    for model in ("mean", "linear", "coarse"):
        assert f"| {model} |" in table
    assert "| mice |" not in table and "| diffrecon |" not in table
    assert "**best reference**: coarse" in table  # coarse and coarse-conformal tie; first wins
    assert "| coarse-conformal | time-slice |" in table.split("Intervals")[1]


@pytest.mark.slow
def test_train_and_impute_diffrecon_with_quantiles(demo_file, tmp_path, capsys):
    from stimpute_core.data.io import open_dataset, write_netcdf

    small = tmp_path / "small.nc"
    write_netcdf(
        open_dataset(demo_file).isel(y=slice(0, 10), x=slice(0, 9)).sel(time="2020"), small
    )
    model_dir, out = tmp_path / "dr", tmp_path / "dr.nc"
    argv = ["train", "--model", "diffrecon", "--data", str(small), "--out", str(model_dir)]
    assert main([*argv, "--spatial", "full"]) == 2  # an ST-Transformer option is refused
    assert "--spatial: options of the ST-Transformer" in capsys.readouterr().err
    assert main([*argv, "--profile", "tiny", "--epochs", "1", "--quiet"]) == 0
    argv = ["impute", "--data", str(small), "--model", str(model_dir), "--out", str(out)]
    assert main([*argv, "--quantiles", "0.05,0.5,0.95"]) == 0
    with xr.open_dataset(out) as ds:
        q, observed = ds["soil_moisture_quantile"].values, ds["soil_moisture"].values
        assert ds["soil_moisture_imputed"].attrs["model"] == "diffrecon"
    seen = np.isfinite(observed)
    assert (np.diff(q, axis=0) >= 0).all() and np.isfinite(q).all()
    np.testing.assert_allclose(q[1][seen], observed[seen], rtol=1e-6)
