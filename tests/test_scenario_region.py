"""The regional scenario: generated tile by tile into Zarr, the same process as the built-in
scenario, never the whole cube in memory."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import xarray as xr

from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario_region import (
    BLOCK,
    FIELDS,
    RegionConfig,
    plan_region,
    region_block,
    write_region_store,
)
from stimpute_core.data.zarr_io import open_zarr

warnings.filterwarnings("ignore", module="zarr")


def _cfg(rows: int, cols: int, end: str = "2019-12-31") -> RegionConfig:
    return RegionConfig(
        seed=2, start="2019-01-01", end=end, box=GridBox(TXSON_BOX.row0, TXSON_BOX.col0, rows, cols)
    )


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """A 2 x 3 block region (the last column of blocks cut to 28 cells), one year."""
    cfg = _cfg(2 * BLOCK, 2 * BLOCK + 28)
    path = tmp_path_factory.mktemp("region") / "region.zarr"
    summary = write_region_store(cfg, path, tile=BLOCK)
    return cfg, path, summary


def test_store_is_a_valid_tiled_contract_store(region):
    _, path, summary = region
    ds = open_zarr(path)  # validates
    assert dict(ds.sizes) == {"time": 365, "y": 72, "x": 100}
    assert summary["tiles"] == 6 and summary["shape"] == [365, 72, 100]
    assert ds["soil_moisture"].chunksizes["y"] == (36, 36)
    assert ds["elevation"].chunksizes["x"] == (36, 36, 28)
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())  # no partial left


def test_store_does_not_depend_on_the_tile_size(region, tmp_path):
    cfg, path, _ = region
    other = write_region_store(cfg, tmp_path / "big.zarr", tile=3 * BLOCK)
    assert other["tiles"] == 1
    xr.testing.assert_identical(open_zarr(path).load(), open_zarr(tmp_path / "big.zarr").load())


def test_same_process_as_the_built_in_scenario(region):
    cfg, path, _ = region
    ds = open_zarr(path).load()
    observed = float(ds["soil_moisture"].notnull().mean())
    assert 0.02 < observed < 0.09  # a pass every 12 days, swath edges, drop-outs
    annual = float(ds["prcp"].sum("time").mean())
    assert 650 < annual < 870  # calibrated to the ~760 mm climatology
    truth = ds["soil_moisture_true"].values
    assert truth.min() >= 0.03 and truth.max() <= 0.5
    ok = ds["soil_moisture"].notnull().values
    err = ds["soil_moisture"].values[ok] - truth[ok]
    assert abs(err.std() - cfg.retrieval_noise) < 0.006


def test_coarse_product_is_each_blocks_own_mean(region):
    _, path, _ = region
    ds = open_zarr(path).load()
    sm36, truth = ds["sm_36km"].values, ds["soil_moisture_true"].values
    day = int(np.flatnonzero(np.isfinite(sm36[:, 0, 0]))[0])
    values = []
    for r0, c0, r1, c1 in ((0, 0, 36, 36), (36, 72, 72, 100)):
        block = sm36[day, r0:r1, c0:c1]
        assert np.unique(block).size == 1  # one value a block
        values.append(block[0, 0])
        assert abs(block[0, 0] - (truth[day, r0:r1, c0:c1].mean() - 0.01)) < 0.08
    assert values[0] != values[1]


def test_storms_cross_block_edges(region):
    """Rain is continuous across a block edge: the jump between the last column of one block
    and the first of the next is no larger than between two columns inside a block."""
    _, path, _ = region
    prcp = open_zarr(path)["prcp"].values
    across = np.abs(prcp[:, :, BLOCK] - prcp[:, :, BLOCK - 1]).mean()
    inside = np.abs(prcp[:, :, BLOCK - 1] - prcp[:, :, BLOCK - 2]).mean()
    assert across > 0 and across < 1.5 * inside


def test_block_fields_and_refusals(tmp_path):
    plan = plan_region(_cfg(BLOCK, BLOCK + 10, end="2019-03-31"))
    block = region_block(plan, 0, 1)
    assert set(block) == set(FIELDS)
    assert all(v.shape == (90, 36, 10) and v.dtype == np.float32 for v in block.values())
    with pytest.raises(ValueError, match="outside"):
        region_block(plan, 1, 0)
    with pytest.raises(ValueError, match="multiple of 36"):
        write_region_store(plan.cfg, tmp_path / "a.zarr", tile=50)
    with pytest.raises(ValueError, match=r"\.zarr"):
        write_region_store(plan.cfg, tmp_path / "a.nc")
    (tmp_path / "file.zarr").write_text("not a store")
    with pytest.raises(ValueError, match="not a Zarr store"):
        write_region_store(plan.cfg, tmp_path / "file.zarr")
    with pytest.raises(ValueError, match="empty"):
        plan_region(RegionConfig(start="2019-02-01", end="2019-01-01"))


def _peak_bytes(cfg: RegionConfig, path) -> int:
    tracemalloc.start()
    try:
        write_region_store(cfg, path, tile=BLOCK)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_a_tile_not_the_cube(tmp_path):
    """The peak allocation of writing a region in 36-cell tiles does not grow with the region:
    9 times the area costs about the same, and far less than its cube."""
    end = "2019-03-01"  # 60 days
    _peak_bytes(_cfg(BLOCK, BLOCK, end), tmp_path / "warm.zarr")  # imports, caches
    small = _peak_bytes(_cfg(2 * BLOCK, 2 * BLOCK, end), tmp_path / "small.zarr")
    large = _peak_bytes(_cfg(6 * BLOCK, 6 * BLOCK, end), tmp_path / "large.zarr")
    cube = 60 * (6 * BLOCK) ** 2 * 4 * len(FIELDS)
    assert large < 1.6 * small, (small / 1e6, large / 1e6)
    assert large < cube / 2.5, (large / 1e6, cube / 1e6)
    assert open_zarr(tmp_path / "large.zarr").sizes["time"] == 60


def test_data_region_command(tmp_path, capsys):
    from stimpute_core.cli import main

    out = tmp_path / "r.zarr"
    argv = ["data", "region", "--out", str(out), "--rows", "36", "--cols", "40"]
    assert main([*argv, "--start", "2019-01-01", "--end", "2019-01-31", "--tile", "36"]) == 0
    assert "36 x 40 cells, 31 days" in capsys.readouterr().err
    assert open_zarr(out).sizes["x"] == 40
    assert main([*argv, "--tile", "40"]) == 2
    assert "multiple of 36" in capsys.readouterr().err
