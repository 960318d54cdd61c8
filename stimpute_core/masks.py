"""Hold-out masks: which observed entries to hide from a model so that it can be scored on them.

Every mask is a boolean array shaped like ``observed`` (``(time, y, x)``), True where an entry is
held out, and always a subset of ``observed``: only values we actually know can be scored. All
masks are drawn from ``np.random.default_rng(seed)``, so the same seed gives the same mask.

The kinds mimic different ways satellite data go missing:

- ``point``: scattered single entries (missing completely at random);
- ``time_slice``: whole days (a missed overpass; the paper's "MNAR" case);
- ``block``: runs of consecutive days in one cell (a sensor outage);
- ``spatial``: round blobs of cells on one day (clouds, RFI, a swath edge).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .data.contract import TARGET

#: Names accepted by :func:`holdout_mask` (``"time-slice"`` is accepted too).
MASK_KINDS = ("point", "time_slice", "block", "spatial")


def _check(observed: np.ndarray, fraction: float, *, grid: bool = True) -> np.ndarray:
    """Validate the inputs shared by every mask; return ``observed`` as a bool array."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction={fraction!r}: expected a number strictly between 0 and 1")
    obs = np.asarray(observed, dtype=bool)
    if grid and obs.ndim != 3:
        raise ValueError(f"observed has shape {obs.shape}: expected a (time, y, x) array")
    if not obs.any():
        raise ValueError("no observed entry: nothing to hold out")
    return obs


def draw_points(
    observed: np.ndarray, fraction: float, rng: np.random.Generator, *, at_least_one: bool = False
) -> np.ndarray:
    """Hide ``round(fraction * n)`` of the ``n`` observed entries of an array of any shape, drawn
    with ``rng`` without repeats (at least one with ``at_least_one``; none if nothing is observed).

    The one draw behind :func:`point_mask` and the training loop's masking of each sample.
    """
    obs = np.asarray(observed, dtype=bool)
    mask = np.zeros(obs.shape, dtype=bool)
    idx = np.flatnonzero(obs)
    if idx.size:
        n = round(fraction * idx.size)
        mask.flat[rng.choice(idx, size=max(1, n) if at_least_one else n, replace=False)] = True
    return mask


def draw_days(
    observed: np.ndarray, fraction: float, rng: np.random.Generator, *, at_least_one: bool = False
) -> np.ndarray:
    """Hide whole days (axis 0): every observed entry of ``round(fraction * n)`` of the ``n``
    days with any observation, drawn with ``rng`` (at least one with ``at_least_one``).

    The one draw behind :func:`time_slice_mask` and the training loop's masking of each sample.
    """
    obs = np.asarray(observed, dtype=bool)
    mask = np.zeros(obs.shape, dtype=bool)
    days = np.flatnonzero(obs.reshape(obs.shape[0], -1).any(axis=1))
    if days.size:
        n = round(fraction * days.size)
        chosen = rng.choice(days, size=max(1, n) if at_least_one else n, replace=False)
        mask[chosen] = obs[chosen]
    return mask


def point_mask(observed: np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Hide ``round(fraction * n_observed)`` observed entries, drawn at random without repeats."""
    obs = _check(observed, fraction, grid=False)
    return draw_points(obs, fraction, np.random.default_rng(seed))


def time_slice_mask(observed: np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Hide whole days: ``round(fraction * n)`` of the ``n`` days with any observation, entirely.

    Every observed entry of a chosen day is hidden and no other day is touched, so a model must
    fill a day from its neighbours in time and from covariates alone.
    """
    obs = _check(observed, fraction)
    return draw_days(obs, fraction, np.random.default_rng(seed))


def block_mask(
    observed: np.ndarray,
    fraction: float = 0.2,
    seed: int = 0,
    min_days: int = 5,
    max_days: int = 30,
) -> np.ndarray:
    """Hide runs of consecutive days in single cells, like sensor outages.

    Repeatedly draws a cell (among cells with any observation), a start day and a length uniform
    in ``[min_days, max_days]``, and hides the observed entries of that run (clipped at the last
    day). It stops as soon as at least ``fraction`` of the observed entries is hidden, so the
    hidden share overshoots ``fraction`` by at most one block.
    """
    obs = _check(observed, fraction)
    if not 1 <= int(min_days) <= int(max_days):
        raise ValueError(
            f"min_days={min_days!r}, max_days={max_days!r}: expected 1 <= min_days <= max_days"
        )
    rng = np.random.default_rng(seed)
    n_time = obs.shape[0]
    rows, cols = np.nonzero(obs.any(axis=0))
    target = fraction * np.count_nonzero(obs)
    mask = np.zeros(obs.shape, dtype=bool)
    hidden = 0
    while hidden < target:
        k = rng.integers(rows.size)
        r, c = rows[k], cols[k]
        start = int(rng.integers(n_time))
        length = int(rng.integers(min_days, max_days + 1))
        run = slice(start, min(start + length, n_time))
        new = obs[run, r, c] & ~mask[run, r, c]
        hidden += int(np.count_nonzero(new))
        mask[run, r, c] |= new
    return mask


def _disk(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the cells within ``radius`` (Euclidean, in cells) of a centre."""
    r = int(np.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dy**2 + dx**2 <= radius**2
    return dy[inside], dx[inside]


def spatial_mask(
    observed: np.ndarray, fraction: float = 0.2, seed: int = 0, radius: float = 3.0
) -> np.ndarray:
    """Hide round blobs of cells on single days, like clouds or radio interference.

    Repeatedly draws an observed entry not yet hidden and hides every observed entry of that day
    within ``radius`` cells of it, until at least ``fraction`` of the observed entries is hidden.
    """
    obs = _check(observed, fraction)
    if not float(radius) >= 0:
        raise ValueError(f"radius={radius!r}: expected a non-negative number of cells")
    rng = np.random.default_rng(seed)
    _, ny, nx = obs.shape
    dy, dx = _disk(float(radius))
    target = fraction * np.count_nonzero(obs)
    mask = np.zeros(obs.shape, dtype=bool)
    hidden = 0
    for flat in rng.permutation(np.flatnonzero(obs)):
        if hidden >= target:
            break
        if mask.flat[flat]:
            continue
        t, r, c = np.unravel_index(flat, obs.shape)
        rr, cc = r + dy, c + dx
        ok = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
        rr, cc = rr[ok], cc[ok]
        new = obs[t, rr, cc] & ~mask[t, rr, cc]
        hidden += int(np.count_nonzero(new))
        mask[t, rr[new], cc[new]] = True
    return mask


_MAKERS = {
    "point": point_mask,
    "time_slice": time_slice_mask,
    "block": block_mask,
    "spatial": spatial_mask,
}


def holdout_mask(
    observed_or_ds: np.ndarray | xr.Dataset,
    kind: str,
    fraction: float = 0.2,
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """A hold-out mask of ``kind`` (one of :data:`MASK_KINDS`; hyphens allowed for underscores).

    ``observed_or_ds`` is either the boolean observed array or a contract Dataset, whose finite
    ``soil_moisture`` entries are then the observed ones. Extra keywords go to the mask function
    (``min_days``/``max_days`` for ``block``, ``radius`` for ``spatial``).
    """
    key = str(kind).strip().lower().replace("-", "_")
    if key not in _MAKERS:
        raise ValueError(f"unknown mask kind {kind!r}: expected one of {', '.join(MASK_KINDS)}")
    if isinstance(observed_or_ds, xr.Dataset):
        observed = np.isfinite(observed_or_ds[TARGET].values)
    else:
        observed = np.asarray(observed_or_ds, dtype=bool)
    return _MAKERS[key](observed, fraction=fraction, seed=seed, **kwargs)


def apply_holdout(ds: xr.Dataset, mask: np.ndarray) -> xr.Dataset:
    """Copy of ``ds`` with ``soil_moisture`` set to NaN where ``mask`` is True.

    Every other variable, the truth ``soil_moisture_true`` included, is left as it is, so the
    hidden values can still be scored against.
    """
    mask = np.asarray(mask, dtype=bool)
    target = ds[TARGET]
    if mask.shape != target.shape:
        raise ValueError(f"mask shape {mask.shape} differs from {TARGET} shape {target.shape}")
    values = np.array(target.values, dtype=np.result_type(target.dtype, np.float32), copy=True)
    values[mask] = np.nan
    out = ds.copy()
    out[TARGET] = target.copy(data=values)
    return out
