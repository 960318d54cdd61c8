"""A sample of a store's tiles as a training mosaic (:mod:`stimpute_core.tile_sample`)."""

from __future__ import annotations

import numpy as np
import pytest

from stimpute_core import tiles
from stimpute_core.data.contract import TARGET, validate
from stimpute_core.data.zarr_io import open_zarr
from stimpute_core.models.base import OUTPUT_NAME
from stimpute_core.tile_sample import sample_tiles

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


def test_mosaic_holds_the_drawn_tiles_side_by_side(tile_store):
    mosaic = sample_tiles(tile_store, 4, seed=3)
    validate(mosaic, source="mosaic")
    assert dict(mosaic.sizes) == {"time": 181, "y": 24, "x": 24} and "insitu" not in mosaic
    src = open_zarr(tile_store)
    picked = mosaic.attrs["tile_sample"].split(": ", 1)[1].split(", ")
    assert len(picked) == 4 and all("rows 24" not in p for p in picked)  # full tiles only
    first = picked[0].split()
    y0, x0 = int(first[1].split("-")[0]), int(first[3].split("-")[0])
    np.testing.assert_array_equal(
        mosaic[TARGET].values[:, :12, :12],
        src[TARGET].values[:, y0 : y0 + 12, x0 : x0 + 12],
    )
    step = float(src["x"][1] - src["x"][0])
    np.testing.assert_allclose(np.diff(mosaic["x"].values), step)
    assert sample_tiles(tile_store, 4, seed=3).identical(mosaic)
    assert not sample_tiles(tile_store, 4, seed=4).identical(mosaic)


def test_too_many_tiles_are_refused(tile_store):
    with pytest.raises(ValueError, match="6 full tiles of 12 x 12 cells"):
        sample_tiles(tile_store, 7)
    with pytest.raises(ValueError, match="count=0"):
        sample_tiles(tile_store, 0)


def test_a_model_fitted_on_a_sample_imputes_the_whole_store_in_tiles(tile_store, tmp_path):
    from stimpute_core.models.st_transformer.model import STTransformerImputer

    model = STTransformerImputer(profile="tiny", epochs=1, prior=None, seed=0)
    ckpt = model.fit(sample_tiles(tile_store, 3, seed=0)).save(tmp_path / "ckpt")
    tiles.impute_tiled(tile_store, str(ckpt), tmp_path / "out.zarr")
    field = open_zarr(tmp_path / "out.zarr", check=False)[OUTPUT_NAME].values
    assert field.shape == (181, 26, 36) and np.isfinite(field).all()


def test_train_command_on_a_sample_of_tiles(tile_store, tmp_path, capsys):
    from stimpute_core.cli import main

    out = tmp_path / "ckpt"
    argv = ["train", "--data", str(tile_store), "--out", str(out), "--profile", "tiny",
            "--epochs", "1", "--prior", "none", "--sample-tiles", "2", "--quiet"]  # fmt: skip
    assert main(argv) == 0 and (out / "config.json").is_file()
    assert "1 epoch(s)" in capsys.readouterr().err  # the untrained score is not an epoch
    nc = tmp_path / "in.nc"
    open_zarr(tile_store).load().to_netcdf(nc)
    assert main([*argv[:2], str(nc), "--out", str(tmp_path / "other"), *argv[5:]]) == 2
    assert "not a Zarr store" in capsys.readouterr().err
