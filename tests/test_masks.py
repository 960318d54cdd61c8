"""Hold-out masks: each kind hides only observed entries, in the shape it promises, reproducibly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stimpute_core.masks import (
    MASK_KINDS,
    apply_holdout,
    block_mask,
    holdout_mask,
    point_mask,
    spatial_mask,
    time_slice_mask,
)

SHAPE = (60, 8, 9)


@pytest.fixture(params=[0, 1, 2])
def observed(request) -> np.ndarray:
    """About 10% of a 60x8x9 cube observed, a different pattern per parameter."""
    rng = np.random.default_rng(100 + request.param)
    return rng.random(SHAPE) < 0.1


def _dataset(observed: np.ndarray) -> xr.Dataset:
    rng = np.random.default_rng(7)
    truth = rng.uniform(0.05, 0.45, SHAPE)
    sm = np.where(observed, truth, np.nan)
    return xr.Dataset(
        {
            "soil_moisture": (("time", "y", "x"), sm, {"units": "m3/m3"}),
            "soil_moisture_true": (("time", "y", "x"), truth),
            "prcp": (("time", "y", "x"), rng.random(SHAPE)),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=SHAPE[0]),
            "y": np.arange(SHAPE[1]) * -1000.0,
            "x": np.arange(SHAPE[2]) * 1000.0,
        },
    )


def _runs(mask: np.ndarray, observed: np.ndarray) -> int:
    """Runs of hidden entries along time, counted over each cell's sequence of observed days."""
    total = 0
    for r, c in np.ndindex(*observed.shape[1:]):
        seq = mask[observed[:, r, c], r, c].astype(int)
        total += int(np.count_nonzero(np.diff(np.r_[0, seq]) == 1))
    return total


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_every_mask_is_a_bool_subset_of_observed(observed, kind):
    mask = holdout_mask(observed, kind, fraction=0.2, seed=3)
    assert mask.dtype == bool
    assert mask.shape == observed.shape
    assert not (mask & ~observed).any()
    assert mask.any()


def test_point_mask_hides_exact_count(observed):
    for fraction in (0.1, 0.2, 0.35):
        mask = point_mask(observed, fraction, seed=1)
        assert mask.sum() == round(fraction * observed.sum())


def test_time_slice_mask_hides_whole_days_only(observed):
    mask = time_slice_mask(observed, 0.25, seed=4)
    hidden_days = mask.any(axis=(1, 2))
    for t in range(SHAPE[0]):
        if hidden_days[t]:
            np.testing.assert_array_equal(mask[t], observed[t])
        else:
            assert not mask[t].any()
    n_days = int(observed.any(axis=(1, 2)).sum())
    assert hidden_days.sum() == round(0.25 * n_days)


def test_time_slice_mask_skips_days_without_observations():
    obs = np.zeros((10, 2, 2), dtype=bool)
    obs[[1, 4, 7, 8], 0, 1] = True
    mask = time_slice_mask(obs, 0.5, seed=0)
    assert mask.sum() == 2
    assert set(np.flatnonzero(mask.any(axis=(1, 2)))) <= {1, 4, 7, 8}


@pytest.mark.parametrize("obs_share", [0.1, 0.5])
def test_block_mask_reaches_fraction_with_runs_in_time(obs_share):
    rng = np.random.default_rng(5)
    observed = rng.random(SHAPE) < obs_share
    fraction = 0.2
    max_days = 30
    block = block_mask(observed, fraction, seed=2, min_days=5, max_days=max_days)
    assert not (block & ~observed).any()
    n_obs = observed.sum()
    assert block.sum() >= fraction * n_obs
    # At most one block (max_days days in one cell) beyond the target.
    assert block.sum() < fraction * n_obs + max_days
    # Hidden entries cluster in time within a cell: fewer separate runs than a point mask
    # hiding as many entries, and fewer cells touched.
    point = point_mask(observed, block.sum() / n_obs, seed=2)
    assert _runs(block, observed) < 0.7 * _runs(point, observed)
    assert block.any(axis=0).sum() < point.any(axis=0).sum()


def test_block_mask_single_cell_is_one_run():
    obs = np.zeros((100, 1, 1), dtype=bool)
    obs[:, 0, 0] = True
    mask = block_mask(obs, 0.05, seed=9, min_days=5, max_days=5)
    # One block of 5 days covers exactly the 5% target (or is clipped at the end, then more).
    assert mask.sum() >= 5
    assert _runs(mask, obs) <= 2


def test_block_mask_validates_lengths(observed):
    with pytest.raises(ValueError, match="min_days"):
        block_mask(observed, 0.2, min_days=10, max_days=5)
    with pytest.raises(ValueError, match="min_days"):
        block_mask(observed, 0.2, min_days=0)


def test_spatial_mask_blobs_lie_in_one_day_within_radius():
    rng = np.random.default_rng(11)
    observed = rng.random((20, 15, 15)) < 0.6
    radius = 2.0
    fraction = 0.2
    mask = spatial_mask(observed, fraction, seed=0, radius=radius)
    assert not (mask & ~observed).any()
    assert mask.sum() >= fraction * observed.sum()
    # Each day's hidden cells are unions of disks: every hidden cell is within 2 * radius of
    # another hidden cell on the same day (a blob has several cells at this density).
    for t in range(20):
        cells = np.argwhere(mask[t])
        if len(cells) < 2:
            continue
        d = np.sqrt(((cells[:, None, :] - cells[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        assert (d.min(axis=1) <= 2 * radius).all()


def test_spatial_mask_single_blob_exact_disk():
    obs = np.ones((3, 11, 11), dtype=bool)
    # 0.9% of 363 entries is reached by the first blob alone.
    mask = spatial_mask(obs, 0.009, seed=5, radius=3.0)
    days = np.flatnonzero(mask.any(axis=(1, 2)))
    assert days.size == 1
    cells = np.argwhere(mask[days[0]])
    # Some hidden cell (the centre) has every hidden cell within the radius; a full disk of
    # radius 3 holds 29 cells (fewer when clipped at the grid edge).
    d = np.sqrt(((cells[:, None, :] - cells[None, :, :]) ** 2).sum(-1))
    assert (d.max(axis=1) <= 3.0).any()
    assert 4 <= len(cells) <= 29


def test_spatial_radius_zero_is_single_entries(observed):
    mask = spatial_mask(observed, 0.2, seed=1, radius=0.0)
    assert mask.sum() == int(np.ceil(0.2 * observed.sum()))


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_masks_are_deterministic(observed, kind):
    a = holdout_mask(observed, kind, 0.2, seed=42)
    b = holdout_mask(observed, kind, 0.2, seed=42)
    c = holdout_mask(observed, kind, 0.2, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_fraction_must_be_strictly_between_0_and_1(observed, kind, fraction):
    with pytest.raises(ValueError, match=f"fraction={fraction}"):
        holdout_mask(observed, kind, fraction=fraction)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_nothing_observed_is_an_error(kind):
    with pytest.raises(ValueError, match="nothing to hold out"):
        holdout_mask(np.zeros(SHAPE, dtype=bool), kind)


def test_hyphenated_kind_and_unknown_kind(observed):
    np.testing.assert_array_equal(
        holdout_mask(observed, "time-slice", 0.3, seed=2),
        holdout_mask(observed, "time_slice", 0.3, seed=2),
    )
    with pytest.raises(ValueError, match="point, time_slice, block, spatial"):
        holdout_mask(observed, "clouds")


def test_holdout_mask_accepts_dataset_and_passes_options(observed):
    ds = _dataset(observed)
    np.testing.assert_array_equal(
        holdout_mask(ds, "block", 0.2, seed=1, min_days=3, max_days=4),
        block_mask(observed, 0.2, seed=1, min_days=3, max_days=4),
    )


def test_apply_holdout_hides_target_only(observed):
    ds = _dataset(observed)
    mask = holdout_mask(ds, "point", 0.3, seed=0)
    out = apply_holdout(ds, mask)
    sm = out["soil_moisture"].values
    assert np.isnan(sm[mask]).all()
    keep = observed & ~mask
    np.testing.assert_array_equal(sm[keep], ds["soil_moisture"].values[keep])
    assert np.isfinite(sm).sum() == observed.sum() - mask.sum()
    xr.testing.assert_identical(out["soil_moisture_true"], ds["soil_moisture_true"])
    xr.testing.assert_identical(out["prcp"], ds["prcp"])
    assert out["soil_moisture"].attrs == ds["soil_moisture"].attrs
    # The input is not modified.
    assert np.isfinite(ds["soil_moisture"].values).sum() == observed.sum()


def test_apply_holdout_shape_mismatch(observed):
    ds = _dataset(observed)
    with pytest.raises(ValueError, match=r"\(60, 8, 8\).*\(60, 8, 9\)"):
        apply_holdout(ds, np.zeros((60, 8, 8), dtype=bool))
