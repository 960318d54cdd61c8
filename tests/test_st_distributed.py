"""Training the ST-Transformer on several processes (DistributedDataParallel, gloo on the CPU).

Two processes train as one: each draws the same shuffled global batches and masks from the
seed, trains on its half of each, and the gradients are averaged, so the steps are those of
one process on the same global batches. What differs is the order of float summations (the
loss summed per half and over the processes, the gradients summed by gloo, the validation
entries scored in other batches), not the draws. Measured on the tiny fit below: the weights
agree to 6e-8, the imputed field to 1e-8 m³/m³ and the validation MAE to 4e-8 relative
(checked at 1e-6, 1e-6 and 1e-6). The exception is the attention's key biases: softmax ignores
them, so their gradient is only rounding noise, which Adam scales up to steps of about 6e-6
that differ between the runs and change no output (checked at 1e-4). The networks are
dropout-free (the default); dropout's random masks would differ between the runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from stimpute_core.cli import main
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models.st_transformer import distributed
from stimpute_core.models.st_transformer.core import STTransformer
from stimpute_core.models.st_transformer.model import STTransformerImputer

ROOT = Path(__file__).resolve().parents[1]
#: A tiny fit with derived inputs and cell context (computed in fit on every process, which
#: check that they agree bitwise) and a fixed number of steps; no prior, so that the network
#: learns in one epoch and the trained weights are kept (a prior's network starts at the prior).
SETTINGS = {"profile": "tiny", "mask_kind": "point", "prior": None, "epochs": 1, "seed": 3}


def _small():
    """A year on one 12 x 12 patch of the scenario."""
    ds = make_scenario(ScenarioConfig(seed=2, start="2020-01-01", end="2020-12-31"))
    return ds.isel(y=slice(0, 12), x=slice(0, 12))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    assert distributed.init_from_env("cpu") == world and distributed.rank() == rank


def _fit_on_rank(rank: int, world: int, port: int, folder: str) -> None:
    """One process of ``world``: join the group, fit, and leave what it trained for the test."""
    _join(rank, world, port)
    sizes, forward = [], STTransformer.forward

    def spy(net, y, *args):
        if net.training:
            sizes.append(y.shape[0])  # the samples this process trains on in a step
        return forward(net, y, *args)

    STTransformer.forward = spy
    try:
        model = STTransformerImputer(**SETTINGS).fit(_small())
        result = {
            "weights": model.net_.state_dict(), "history": model.history_, "sizes": sizes,
            "calibrated": hasattr(model, "calibration_"),
            "field": torch.as_tensor(model.predict_cube(_small())),
        }  # fmt: skip
        # Processes whose inputs differ (here: on purpose) refuse to train together.
        same = np.arange(6.0).reshape(2, 3)
        try:
            distributed.check_same(data=same, validation=same > rank)
        except ValueError as err:
            result["refused"] = str(err)
        torch.save(result, Path(folder) / f"rank{rank}.pt")
    finally:
        distributed.close()


def test_two_processes_train_as_one(tmp_path):
    single = STTransformerImputer(**SETTINGS).fit(_small())
    mp.spawn(_fit_on_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Every process ends with the same weights, bit for bit; only rank 0 calibrates.
    for name, w in ranks[0]["weights"].items():
        assert torch.equal(w, ranks[1]["weights"][name]), name
    assert [r["calibrated"] for r in ranks] == [True, False]
    assert ranks[0]["sizes"] == ranks[1]["sizes"] == [2] * 8  # halves of the tiny batches of 4
    for r in ranks:
        assert r.get("refused", "").startswith("the processes computed different validation")
    # ...and they are the single process's, up to the order of float summations.
    for name, w in single.net_.state_dict().items():
        mine = ranks[0]["weights"][name]
        if name.endswith("qkv.bias"):  # (query, key, value): the key's is rounding noise
            mine, w = mine.view(3, -1), w.view(3, -1)
            torch.testing.assert_close(mine[1], w[1], rtol=0, atol=1e-4, msg=name)
            mine, w = mine[::2], w[::2]
        torch.testing.assert_close(mine, w, rtol=0, atol=1e-6, msg=name)
    field = single.predict_cube(_small())
    np.testing.assert_allclose(ranks[0]["field"].numpy(), field, rtol=0, atol=1e-6)
    history = ranks[0]["history"]
    assert [h["epoch"] for h in history] == [h["epoch"] for h in single.history_] == [0, 1]
    assert min(h["val_mae"] for h in history) < history[0]["val_mae"]  # trained weights kept
    for mine, one in zip(history, single.history_, strict=True):
        assert mine["val_mae"] == pytest.approx(one["val_mae"], rel=1e-6)
        assert mine["samples_seen"] == one["samples_seen"]  # global batches: the same size
        assert mine["observed_seen"] == one["observed_seen"]
        if one["train_loss"] is not None:
            assert mine["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)


def test_torchrun_trains_and_only_rank0_writes(tmp_path):
    from stimpute_core.data.io import write_netcdf

    data, out = tmp_path / "small.nc", tmp_path / "model"
    write_netcdf(_small(), data)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "stimpute_core.cli", "train", "--distributed", "--data", str(data),
        "--out", str(out), "--profile", "tiny", "--epochs", "1", "--prior", "regression",
        "--device", "cpu", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count(f"wrote {out}") == 1  # rank 0 reports...
    # ...and writes the one checkpoint; rank 1 wrote nothing (no spare copy beside it). The
    # cross-fitted prior came out the same on both processes (they check before training).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "small.nc"]
    model = STTransformerImputer.load(out)
    assert [h["epoch"] for h in model.history_] == [0, 1]


def test_distributed_needs_torchrun_and_torchrun_needs_distributed(tmp_path, monkeypatch, capsys):
    out = tmp_path / "never-written"
    argv = ["train", "--data", str(tmp_path / "missing.nc"), "--out", str(out), "--quiet"]
    for name in distributed.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert main([*argv, "--distributed"]) == 2
    assert "not set: several processes are started by torchrun" in capsys.readouterr().err
    monkeypatch.setattr("stimpute_core.cli.train_command.device", str)  # no GPU here
    assert main([*argv, "--distributed", "--device", "cuda:1"]) == 2
    assert (
        "give cuda (each process then takes the GPU of its LOCAL_RANK)" in capsys.readouterr().err
    )
    assert main([*argv, "--distributed", "--model", "diffrecon"]) == 2
    assert "the ST-Transformer only" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")  # started by torchrun, but without --distributed
    assert main(argv) == 2
    assert "add --distributed" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("n", [0, 1, 4, 7])
def test_shards_cover_the_batch_once(monkeypatch, n):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    parts = []
    for r in range(3):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        parts.append(range(n)[distributed.shard(n)])
    assert [i for p in parts for i in p] == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
