"""Training in rounds over a store's tiles (:mod:`stimpute_core.tile_sample`,
:mod:`stimpute_core.models.st_transformer.rounds`): every tile once, no validation entry of a
round in any of its inputs, a checkpoint that keeps the rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stimpute_core.models.base import NotFittedError
from stimpute_core.models.st_transformer import rounds as rounds_module
from stimpute_core.models.st_transformer.model import STTransformerImputer
from stimpute_core.models.st_transformer.rounds import train_round
from stimpute_core.tile_sample import fit_in_rounds, mosaic, tile_rounds

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


def test_rounds_deal_every_full_tile_once(tile_store):
    plan = tile_rounds(tile_store, 2, seed=5)
    assert len(plan) == 3 and all(len(r) == 2 for r in plan)
    dealt = [(t.y0, t.x0) for r in plan for t in r]
    assert len(set(dealt)) == 6 and all(y0 < 24 for y0, _ in dealt)  # full tiles only
    assert tile_rounds(tile_store, 2, seed=5) == plan and tile_rounds(tile_store, 2, seed=6) != plan
    assert len(tile_rounds(tile_store, 4, seed=5)) == 1  # a last round of 2 tiles is left out


def test_training_goes_on_over_the_next_rounds(tile_store, tmp_path):
    model = STTransformerImputer(profile="tiny", epochs=1, prior=None, seed=0)
    fit_in_rounds(model, tile_store, 2, rounds=3, seed=1)
    record = model.training_["rounds"]
    assert [r["round"] for r in record] == [0, 1, 2]
    assert len({r["data"] for r in record}) == 3  # three different mosaics
    assert all(r["val_mae_best"] <= r["val_mae_before"] for r in record[1:])
    epochs = [h["epoch"] for h in model.history_]
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
    assert {h.get("round", 0) for h in model.history_} == {0, 1, 2}
    assert model.calibration_ is not None
    loaded = STTransformerImputer.load(model.save(tmp_path / "ckpt"))
    assert loaded.training_["rounds"] == record and loaded.history_ == model.history_
    with pytest.raises(ValueError, match="rounds=4 but the store holds 3 round"):
        fit_in_rounds(STTransformerImputer(profile="tiny", epochs=1), tile_store, 2, rounds=4)


def test_a_round_changes_the_weights_and_not_the_normaliser(tile_store):
    plan = tile_rounds(tile_store, 2, seed=1)
    model = STTransformerImputer(profile="tiny", epochs=1, prior=None, seed=0)
    model.fit(mosaic(tile_store, plan[0]))
    before = {k: v.clone() for k, v in model.net_.state_dict().items()}
    norm = model.normalizer_
    train_round(model, mosaic(tile_store, plan[1]), 1)
    assert model.normalizer_ is norm
    changed = [k for k, v in model.net_.state_dict().items() if not torch.equal(v, before[k])]
    best = model.training_["rounds"][-1]
    # Either training improved this round's score and the weights moved, or the incoming
    # weights were kept (a round never leaves the network worse on what it scores).
    assert bool(changed) == (best["val_mae_best"] < best["val_mae_before"])


def test_a_round_is_refused_for_an_unfitted_model_or_a_per_cell_prior(tile_store):
    part = mosaic(tile_store, tile_rounds(tile_store, 2)[1])
    with pytest.raises(NotFittedError):
        train_round(STTransformerImputer(profile="tiny"), part, 1)
    with pytest.raises(ValueError, match="per-cell reference"):
        fit_in_rounds(STTransformerImputer(profile="tiny", prior="regression"), tile_store, 2)
    with pytest.raises(ValueError, match="round_index=0"):
        train_round(STTransformerImputer(profile="tiny"), part, 0)


@pytest.mark.parametrize("mask_kind", ["time_slice", "point"])
def test_a_rounds_validation_entries_reach_no_input(tile_store, monkeypatch, mask_kind):
    """Two rounds that differ only in the values of the round's validation entries give the
    network the same inputs (covariates, derived inputs, the boosting prior, cell context)."""
    plan = tile_rounds(tile_store, 2, seed=1)
    model = STTransformerImputer(profile="tiny", epochs=1, mask_kind=mask_kind, seed=2)
    model.fit(mosaic(tile_store, plan[0]))
    seen = []

    def fake_train(net, samples, val_mask, settings, **kwargs):
        seen.append({"y": samples.y.copy(), "u": samples.u.copy(), "val": val_mask.copy()})
        return [
            {"epoch": 0, "val_mae": 0.1},
            {"epoch": 1, "train_loss": 0.0, "val_mae": 0.0},
        ], False

    monkeypatch.setattr(rounds_module, "train_network", fake_train)
    part = mosaic(tile_store, plan[1])
    train_round(model, part, 1)
    h, w = part.sizes["y"], part.sizes["x"]
    val = seen[0]["val"][:, :h, :w]
    assert val.any()
    changed = part.copy(deep=True)
    changed["soil_moisture"].values[val] += 0.25
    train_round(model, changed, 1)
    a, b = seen
    np.testing.assert_array_equal(a["val"], b["val"])
    np.testing.assert_array_equal(a["u"], b["u"])
    np.testing.assert_array_equal(a["y"][~a["val"]], b["y"][~a["val"]])


def test_train_command_in_rounds(tile_store, tmp_path, capsys):
    from stimpute_core.cli import main

    out = tmp_path / "ckpt"
    argv = ["train", "--data", str(tile_store), "--out", str(out), "--profile", "tiny", "--epochs",
            "1", "--prior", "none", "--sample-tiles", "2", "--quiet"]  # fmt: skip
    assert main([*argv, "--tile-rounds", "all"]) == 0
    assert "over 3 round(s) of tiles" in capsys.readouterr().err
    record = STTransformerImputer.load(out).training_["rounds"]
    assert [r["round"] for r in record] == [0, 1, 2]
    assert main([*argv[:-3], "--tile-rounds", "2", "--out", str(tmp_path / "b")]) == 2
    assert "--tile-rounds: give --sample-tiles K" in capsys.readouterr().err
    assert main([*argv, "--tile-rounds", "2", "--hide-evaluation", "--overwrite"]) == 2
    assert "--tile-rounds with --hide-evaluation" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not a whole number of rounds
        main([*argv, "--tile-rounds", "0", "--overwrite"])
