"""Bad input to the model commands is refused before any work, nothing saved is lost.

Checkpoint folders (``train --out``, ``save``), checkpoint configurations checked field by field
and against the weights' header, data too small to validate on, option values, and the
benchmark's periods and table. No network is trained here: ``train_network`` is replaced by a
stand-in that returns at once (the checks under test all come before or after it).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stimpute_core.benchmark as bench
import stimpute_core.models.st_transformer.model as st_model
from stimpute_core.cli import main
from stimpute_core.data import write_netcdf
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models.baselines import MeanImputer
from stimpute_core.models.st_transformer.checkpoint import check_target, is_checkpoint
from stimpute_core.models.st_transformer.model import STTransformerImputer, pretrained_path
from stimpute_core.models.st_transformer.training import pick_device


def _no_training(net, samples, val_mask, settings, **_kw):
    """Stands in for ``train_network``: the starting weights, scored 0.05."""
    return [{"epoch": 0, "train_loss": None, "val_mae": 0.05, "elapsed_s": 0.0,
             "samples_seen": 0, "observed_seen": 0}], False  # fmt: skip


@pytest.fixture(scope="module")
def small():
    """8 x 8 cells, 90 days of the scenario."""
    ds = make_scenario(ScenarioConfig(start="2019-01-01", end="2019-03-31", n_stations=4))
    return ds.isel(x=slice(0, 8), y=slice(0, 8)).load()


@pytest.fixture(scope="module")
def small_file(small, tmp_path_factory):
    return write_netcdf(small, tmp_path_factory.mktemp("data") / "small.nc")


@pytest.fixture(scope="module")
def ckpt(small, tmp_path_factory):
    """A tiny checkpoint with a prior (untrained weights: what is checked is the folder)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(st_model, "train_network", _no_training)
        model = STTransformerImputer(profile="tiny", prior="coarse", seed=0).fit(small)
    return model.save(tmp_path_factory.mktemp("ckpt") / "ckpt")


@pytest.fixture
def no_training(monkeypatch):
    """``train_network`` returns at once; ``calls`` counts the fits that reached it."""
    calls = []

    def stand_in(*args, **kw):
        calls.append(1)
        return _no_training(*args, **kw)

    monkeypatch.setattr(st_model, "train_network", stand_in)
    return calls


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "--data", str(data), "--profile", "tiny", "--prior", "none",
                 "--out", str(out), "--quiet", *extra])  # fmt: skip


# ---- 1. checkpoint folders ---------------------------------------------------------------------


def test_train_refuses_a_folder_holding_other_files_before_training(
    small_file, tmp_path, no_training, capsys
):
    out = tmp_path / "p"
    out.mkdir()
    (out / "t.txt").write_text("x")
    assert _train(small_file, out) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint (t.txt)" in err and str(out) in err
    assert (out / "t.txt").read_text() == "x" and sorted(out.iterdir()) == [out / "t.txt"]
    assert not no_training  # refused before training
    assert _train(small_file, out, "--overwrite") == 2  # never, even when asked
    assert (out / "t.txt").read_text() == "x"


@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_train_refuses_dot_and_dotdot_before_training(
    out, small_file, tmp_path, monkeypatch, no_training, capsys
):
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert _train(small_file, Path(out)) == 2
    assert "name a folder of its own" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists() and not no_training


def test_train_refuses_a_file_and_replaces_a_checkpoint_only_when_asked(
    small_file, ckpt, tmp_path, no_training, capsys
):
    a_file = tmp_path / "notes.nc"
    a_file.write_text("x")
    assert _train(small_file, a_file) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text() == "x"

    out = tmp_path / "model"
    shutil.copytree(ckpt, out)
    before = (out / "config.json").read_text()
    assert _train(small_file, out) == 2
    assert "holds a checkpoint already: --overwrite replaces it" in capsys.readouterr().err
    assert (out / "config.json").read_text() == before and not no_training
    assert _train(small_file, out, "--overwrite") == 0
    assert len(no_training) == 1 and is_checkpoint(out)
    config = json.loads((out / "config.json").read_text())
    assert config["imputer"]["prior"] is None  # the new model, its prior file gone with the old
    assert not (out / "prior.skops").exists()


def test_save_never_replaces_a_folder_it_did_not_write(ckpt, tmp_path):
    model = STTransformerImputer.load(ckpt)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"not a checkpoint \(table.csv\)"):
        model.save(folder, overwrite=True)
    assert (folder / "table.csv").read_text() == "a,b\n"
    # A checkpoint with a file of the user's beside it is no longer only a checkpoint.
    mixed = tmp_path / "mixed"
    shutil.copytree(ckpt, mixed)
    (mixed / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a checkpoint"):
        model.save(mixed, overwrite=True)
    assert (mixed / "notes.txt").read_text() == "mine"
    again = tmp_path / "again"
    model.save(again)
    with pytest.raises(ValueError, match="overwrite=True replaces it"):
        model.save(again)
    assert model.save(again, overwrite=True) == again and is_checkpoint(again)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_target(empty) == empty and check_target(tmp_path / "new" / "deep") is not None
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(ValueError, match="cannot be created"):
        check_target(blocked / "model")


# ---- 3. checkpoint configurations ---------------------------------------------------------------


def _edit(ckpt: Path, tmp_path: Path, change) -> Path:
    path = tmp_path / "edited"
    shutil.copytree(ckpt, path)
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _set(section: str, key: str, value):
    def change(config):
        config[section][key] = value

    return change


def _swap_first_covariates(config):
    dynamic = config["normalizer"]["dynamic"]
    dynamic[0], dynamic[1] = dynamic[1], dynamic[0]


CASES = [
    (_set("normalizer", "y_std", 0), r"normalizer: y_std=0: expected a finite number above 0"),
    (_set("normalizer", "y_mean", math.nan), r"normalizer: y_mean=nan: expected a finite number"),
    (
        _set("normalizer", "dynamic_std", None),
        r"normalizer: dynamic_std=None: expected \d+ numbers",
    ),
    (
        _swap_first_covariates,
        r"normalizer.dynamic\[0\] = \"tmax\" but the weights were saved with \"prcp\"",
    ),
    (_set("network", "n_layers", 10_000_000), r"n_layers=10000000: expected an integer from 1"),
    (_set("network", "hidden", 10**9), r"network: hidden=1000000000: expected an integer from 1"),
    (_set("network", "n_heads", 0), r"network: n_heads=0: expected an integer from 1"),
    (_set("network", "patch", -12), r"network: patch=-12: expected an integer from 1"),
    (_set("network", "window", 36), r"network.window = 36 but the weights were saved with 72"),
    (_set("network", "hidden", 32), r"network.hidden = 32 but the weights .* have 16"),
    (_set("network", "n_covariates", 3), r"lists \d+ input channels .* network.n_covariates = 3"),
    (_set("network", "swin_shifts", [0, 9]), r"swin_shifts=\(0, 9\): expected 1 to 4 shifts"),
    (_set("network", "surprise", 1), r"network: unknown key\(s\) \['surprise'\]"),
    (_set("imputer", "surprise", 1), r"imputer: unknown key\(s\) \['surprise'\]"),
    (_set("normalizer", "surprise", 1), r"normalizer: unknown key\(s\) \['surprise'\]"),
    (_set("imputer", "spatial", "full"), r"imputer: spatial = 'full' but network.spatial = 'swin'"),
    (_set("imputer", "prior", None), r"imputer: prior = None but network.residual = True"),
    (_set("imputer", "prior_folds", 0), r"imputer: prior_folds must be a positive integer"),
    (_set("training", "epochs", 0), r"training: epochs must be a positive integer, got 0"),
    (_set("training", "surprise", 1), r"training: unknown key\(s\) \['surprise'\]"),
    (lambda c: c.update(history={}), r"history: expected a list of epochs"),
    (lambda c: c.update(format="other/2"), r"format = 'other/2': expected"),
    (lambda c: c.update(surprise=1), r"unknown key\(s\) \['surprise'\]"),
    (lambda c: c.pop("network"), r"missing key\(s\) \['network'\]"),
]


@pytest.mark.parametrize(("change", "message"), CASES)
def test_every_field_of_a_checkpoint_configuration_is_checked(ckpt, tmp_path, change, message):
    path = _edit(ckpt, tmp_path, change)
    with pytest.raises(ValueError, match=message) as info:
        STTransformerImputer.load(path)
    assert str(path / "config.json") in str(info.value)


def test_impute_with_an_edited_checkpoint_is_a_message(ckpt, small_file, tmp_path, capsys):
    path = _edit(ckpt, tmp_path, _set("normalizer", "y_std", 0))
    out = tmp_path / "out.nc"
    argv = ["impute", "--data", str(small_file), "--model", str(path), "--out", str(out)]
    assert main(argv) == 2
    assert "y_std=0" in capsys.readouterr().err and not out.exists()


def test_weights_are_checked_too(ckpt, tmp_path):
    path = tmp_path / "nan"
    shutil.copytree(ckpt, path)
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path / "model.safetensors")
    tensors["encoder.mask_token"] = torch.full_like(tensors["encoder.mask_token"], math.nan)
    save_file(tensors, path / "model.safetensors", metadata=metadata)
    with pytest.raises(ValueError, match=r"encoder\.mask_token holds NaN"):
        STTransformerImputer.load(path)
    path = tmp_path / "prior"
    shutil.copytree(ckpt, path)
    (path / "prior.skops").write_bytes((path / "prior.skops").read_bytes() + b"\0")
    with pytest.raises(ValueError, match="not the prior saved with these weights"):
        STTransformerImputer.load(path)


def test_a_checkpoint_loads_with_its_settings_and_the_asked_device(ckpt):
    model = STTransformerImputer.load(ckpt, device="cpu")
    assert model.device == "cpu" and model.prior == "coarse" and model.net_.cfg.hidden == 16
    with pytest.raises(ValueError, match="device 'bogus': expected cpu, cuda or cuda:N"):
        STTransformerImputer.load(ckpt, device="bogus")
    shipped = STTransformerImputer.load(pretrained_path())
    assert shipped.net_.cfg.n_covariates == 46


def test_the_shipped_checkpoint_carries_its_record(tmp_path):
    """Reordering two covariates of the shipped config.json keeps every size valid: only the
    record in the weights' metadata can catch it."""
    path = tmp_path / "shipped"
    shutil.copytree(pretrained_path(), path)
    meta = json.loads((path / "config.json").read_text())
    dyn = meta["normalizer"]["dynamic"]
    dyn[0], dyn[1] = dyn[1], dyn[0]
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"normalizer.dynamic\[0\] = .* was changed after saving"):
        STTransformerImputer.load(path)


# ---- 4. too little data to validate on ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        ({"time": slice(0, 1)}, "on at least 6 observed days"),
        ({"x": slice(0, 1), "y": slice(0, 1)}, "at least 20 observed entries"),
    ],
)
def test_training_without_validation_entries_is_refused_before_it_starts(
    small, cut, expected, tmp_path, no_training, capsys
):
    data = write_netcdf(small.isel(cut), tmp_path / "cut.nc")
    assert _train(data, tmp_path / "model") == 2
    err = capsys.readouterr().err
    assert "no observed entries left for validation" in err and expected in err
    assert not no_training and not (tmp_path / "model").exists()


# ---- 5. option values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--seeds", "0"], "argument --seeds: '0': expected a whole number of at"),
        (["train", "--epochs", "0"], "argument --epochs: '0': expected a whole number"),
        (["train", "--epochs", "2.5"], "argument --epochs: '2.5'"),
        (["train", "--max-minutes", "0"], "argument --max-minutes: '0': expected a number of"),
        (["train", "--max-minutes", "nan"], "argument --max-minutes: 'nan'"),
        (["train", "--max-minutes", "-1"], "argument --max-minutes: '-1'"),
        (["benchmark", "--max-minutes", "inf"], "argument --max-minutes: 'inf'"),
        (["train", "--seed", "-1"], "argument --seed: '-1': expected a whole number of at least 0"),
        (["train", "--device", "bogus"], "argument --device: device 'bogus': expected cpu, cuda"),
        (["impute", "--device", "gpu"], "argument --device: device 'gpu'"),
        (["benchmark", "--fraction", "1.5"], "argument --fraction: '1.5': expected a number betw"),
        (["benchmark", "--fraction", "nan"], "argument --fraction: 'nan'"),
        (["benchmark", "--test-start", "soon"], "argument --test-start: 'soon': expected a day"),
        (["impute", "--quantiles", "0.5,1"], "quantile 1.0: expected a number strictly between"),
        (["impute", "--quantiles", "a,b"], "argument --quantiles: 'a,b': expected levels between"),
        (["impute", "--quantiles", "0.5,0.5"], "each level may be given once"),
    ],
)
def test_bad_option_values_are_refused_before_any_work(argv, message, tmp_path, capsys):
    needed = {"train": ["--out", str(tmp_path / "m")], "impute": ["--model", "m", "--out", "o.nc"]}
    full = [*argv, "--data", str(tmp_path / "missing.nc"), *needed.get(argv[0], [])]
    with pytest.raises(SystemExit) as stop:
        main(full)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_cuda_without_a_gpu_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no GPU is available here"):
        pick_device("cuda")
    with pytest.raises(SystemExit):
        main(["train", "--data", "x.nc", "--device", "cuda:1", "--out", str(tmp_path / "m")])
    assert "device 'cuda:1': no GPU is available here" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no GPU"):
        STTransformerImputer(device="cuda")._validate_params()


def test_impute_checks_its_output_path_before_the_work(ckpt, small_file, tmp_path, capsys):
    argv = ["impute", "--data", str(small_file), "--model", str(ckpt), "--out"]
    assert main([*argv, str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder" in capsys.readouterr().err
    assert main([*argv, str(small_file)]) == 2
    assert "is the input file" in capsys.readouterr().err


def test_quantiles_from_a_checkpoint_without_calibration_are_refused(ckpt, small_file, tmp_path,
                                                                     capsys):  # fmt: skip
    old = tmp_path / "old"
    shutil.copytree(ckpt, old)
    meta = json.loads((old / "config.json").read_text())
    del meta["calibration"]  # as saved before intervals were added
    (old / "config.json").write_text(json.dumps(meta))
    out = tmp_path / "o.nc"
    argv = ["impute", "--data", str(small_file), "--model", str(old), "--out", str(out)]
    assert main([*argv, "--quantiles", "0.05,0.95"]) == 2
    assert "holds no calibration" in capsys.readouterr().err and not out.exists()


# ---- 6. the benchmark's table -----------------------------------------------------------------


def _summary(rows):
    cols = ["model", "holdout", "period", "mae", "mae_truth"]
    frame = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])
    return frame.assign(mae_sd=0.001, mre=0.3, mre_sd=0.01, mae_truth_sd=0.001, fit_s=1.0,
                        impute_s=0.5, n_points=100)  # fmt: skip


def test_table_when_a_hold_out_has_no_reference():
    """A reference that ran (or succeeded) on one hold-out only: the other's ratios are nan."""
    summary = _summary([
        ("mean", "time_slice", "validation", 0.06, 0.05),
        ("st-transformer", "time_slice", "validation", 0.03, 0.02),
        ("st-transformer", "point", "validation", 0.04, 0.03),
    ])  # fmt: skip
    text = bench.markdown_table(summary)
    assert (
        "| st-transformer | time-slice | validation | 0.0300 ± 0.0010 | 30.00 ± 1.00 | 0.50 |"
        in text
    )
    assert "| st-transformer | point | validation | 0.0400 ± 0.0010 | 30.00 ± 1.00 | nan |" in text


def test_table_when_the_references_have_no_truth_scores():
    summary = _summary([
        ("mean", "time_slice", "test", 0.06, math.nan),
        ("st-transformer", "time_slice", "test", 0.03, 0.02),
    ])  # fmt: skip
    text = bench.markdown_table(summary)
    assert (
        "| st-transformer | time-slice | test | 0.0300 ± 0.0010 | 30.00 ± 1.00 | 0.50 | 0.0200"
        in text
    )
    assert "**best reference**: mean" in text


def test_a_benchmark_where_every_run_failed_says_so(small_file, monkeypatch, capsys):
    class Broken(MeanImputer):
        def fit(self, ds):
            raise RuntimeError("out of memory")

    monkeypatch.setattr(bench, "make_imputer", lambda name, **kw: Broken())
    argv = ["benchmark", "--data", str(small_file), "--models", "mean", "--seeds", "1",
            "--test-start", "2019-03-01", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "failed: mean" in err and "every run failed" in err


# ---- 7. the benchmark's periods ---------------------------------------------------------------


def test_benchmark_of_short_data_says_to_choose_the_test_start(small_file, capsys):
    assert main(["benchmark", "--data", str(small_file), "--models", "mean", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "two years or less" in err and "--test-start (e.g. 2019-03-13)" in err


@pytest.mark.parametrize("holdout", ["time_slice", "point"])
def test_a_period_with_nothing_to_score_fails_before_any_model_runs(small, holdout, monkeypatch):
    ran = []
    real = bench.make_imputer
    monkeypatch.setattr(bench, "make_imputer", lambda name, **kw: ran.append(kw) or real(name))
    ds = small.copy()
    values = ds["soil_moisture"].values.copy()
    observed_days = np.flatnonzero(np.isfinite(values).any(axis=(1, 2)))
    values[observed_days[-1] :] = np.nan
    values[observed_days[-1], 0, 0] = 0.2  # the test period: one observed entry on its one day
    ds["soil_moisture"] = ds["soil_moisture"].copy(data=values)
    start = f"{pd.Timestamp(ds.time.values[observed_days[-1]]):%Y-%m-%d}"
    with pytest.raises(ValueError, match=r"the test period .* has 1 observed entries on 1 day"):
        bench.run_benchmark(ds, ["mean"], [holdout], [0], test_start=start)
    assert not [kw for kw in ran if kw]  # no model was made to run
