"""How the synthetic scenario is observed: Sentinel-1 overpasses and swath edges, per-pixel
drop-outs and retrieval noise like SPL2SMAP_S, the coarse ``sm_36km`` product on a 2-3 day
revisit, and stations nested at 36, 9 and 3 km like TxSON.

Each piece that draws is split from the piece that computes, so the built-in scenario
(:mod:`.scenario`, one generator for everything, in a fixed order) and the tiled regional
scenario (:mod:`.scenario_region`, area-wide draws once, per-cell draws per 36 km block) share
the same process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .grid import CELL_SIZE, xy_to_lonlat
from .scenario_processes import _smooth_field

# Sentinel-1B was lost on 2021-12-23; while it flew, a second track gives 6-day stretches.
S1B_PERIOD = ("2016-10-01", "2021-12-22")
# SMAP safe mode in 2019: no SMAP product at all.
SMAP_OUTAGE = ("2019-06-19", "2019-07-23")


def _pass_plan(
    rng: np.random.Generator, times: pd.DatetimeIndex, pass_availability: float
) -> list[tuple[int, tuple[float, float, bool] | None]]:
    """The days with a retrieval and what each covers: ``None`` for the whole box, else a swath
    edge (fraction of the width, tilt, whether the west side is covered)."""
    nt = len(times)
    day = np.asarray((times - pd.Timestamp("2015-01-01")).days)
    s1b = (times >= S1B_PERIOD[0]) & (times <= S1B_PERIOD[1])
    smap_off = (times >= SMAP_OUTAGE[0]) & (times <= SMAP_OUTAGE[1])
    plan: list[tuple[int, tuple[float, float, bool] | None]] = []
    for t in range(nt):
        if smap_off[t]:
            continue
        if day[t] % 12 == 3 and rng.random() < pass_availability:
            # Primary track: usually the whole box, sometimes cut by the swath edge.
            if rng.random() < 0.75:
                plan.append((t, None))
            else:
                edge = (rng.uniform(0.3, 0.8), rng.normal(0.25, 0.05), rng.random() < 0.5)
                plan.append((t, edge))
        elif s1b[t] and day[t] % 12 == 9 and rng.random() < 0.5:
            # Sentinel-1B's track six days later covers only the western part of the box.
            plan.append((t, (rng.uniform(0.25, 0.65), rng.normal(0.25, 0.05), True)))
    return plan


def _render_passes(
    plan: list, nt: int, jj: np.ndarray, ii: np.ndarray, ny: int, nx: int
) -> np.ndarray:
    """The swath coverage (time, *jj.shape) of ``plan`` on the cells at rows ``jj`` and columns
    ``ii`` of an ``ny`` x ``nx`` box; a swath edge crosses the box slightly tilted like a
    descending Sentinel-1 ground track."""
    covered = np.zeros((nt, *jj.shape), bool)
    for t, edge in plan:
        if edge is None:
            covered[t] = True
        else:
            frac, tilt, west = edge
            line = frac * nx + tilt * (jj - ny / 2)
            covered[t] = ii <= line if west else ii >= line
    return covered


def _drop_probability(land_cover: np.ndarray) -> np.ndarray:
    """Per-pixel drop-outs: urban fraction masks most urban cells; dense vegetation and random
    retrieval failures remove a few percent elsewhere."""
    lc = land_cover
    return np.select([lc == 13, lc == 8, lc == 12], [0.85, 0.3, 0.1], 0.04)


def _observation_mask(
    rng: np.random.Generator,
    times: pd.DatetimeIndex,
    static: dict[str, np.ndarray],
    pass_availability: float,
) -> np.ndarray:
    """Which cell-days SPL2SMAP_S retrieves: overpasses, swath edges, product gaps, drop-outs."""
    nt = len(times)
    ny, nx = static["elevation"].shape
    jj, ii = np.mgrid[0:ny, 0:nx].astype(float)
    covered = _render_passes(_pass_plan(rng, times, pass_availability), nt, jj, ii, ny, nx)
    covered &= rng.random((nt, ny, nx)) >= _drop_probability(static["land_cover"])
    return covered


def _retrieve(
    rng: np.random.Generator, truth: np.ndarray, mask: np.ndarray, noise_sd: float
) -> np.ndarray:
    """SPL2SMAP_S-like retrievals: truth plus a static per-cell bias and noise, where ``mask``."""
    cell_bias = 0.01 * _smooth_field(rng, truth.shape[1:], 2)
    return _retrieved(truth, mask, cell_bias, rng.normal(0.0, noise_sd, truth.shape))


def _retrieved(
    truth: np.ndarray, mask: np.ndarray, cell_bias: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """The retrievals of ``truth`` with a static ``cell_bias`` and ``noise``, NaN off ``mask``."""
    retrieved = np.clip(truth + cell_bias + noise, 0.02, 0.6)
    return np.where(mask, retrieved, np.nan).astype(np.float32)


def _sm_36km(rng: np.random.Generator, times: pd.DatetimeIndex, truth: np.ndarray) -> np.ndarray:
    """SPL3SMP-like coarse soil moisture: the area mean with bias and noise, 2-3 day revisit."""
    available = _coarse_available(rng, times)
    coarse = _coarse_series(truth.mean(axis=(1, 2)), available, rng.normal(0.0, 0.02, len(times)))
    return np.broadcast_to(coarse[:, None, None], truth.shape)


def _coarse_available(rng: np.random.Generator, times: pd.DatetimeIndex) -> np.ndarray:
    """The days with a coarse retrieval: SMAP's 8-day exact repeat over TxSON, 8 % of them
    lost, none during the 2019 outage."""
    day = np.asarray((times - pd.Timestamp("2015-01-01")).days)
    revisit = np.array([1, 0, 1, 1, 0, 1, 0, 0], bool)
    available = revisit[day % 8] & (rng.random(len(times)) > 0.08)
    available &= ~((times >= SMAP_OUTAGE[0]) & (times <= SMAP_OUTAGE[1]))
    return available


def _coarse_series(area: np.ndarray, available: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The coarse retrieval of a 36 km cell from its area-mean truth: a dry bias and noise."""
    coarse = area - 0.01 + noise
    return np.where(available, np.clip(coarse, 0.02, 0.5), np.nan)


def _stations(
    rng: np.random.Generator,
    times: pd.DatetimeIndex,
    truth: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Stations nested at 36, 9 and 3 km like TxSON, with point-scale offsets and outages."""
    ny, nx = truth.shape[1:]
    # The dense 9 km sub-cell and, inside it, the 3 km sub-cell (indices in 1 km cells).
    c9 = (min(9, max(ny - 9, 0)), min(9, max(nx - 9, 0)))
    c3 = (c9[0] + 3, c9[1] + 3)
    n3 = max(1, round(n * 7 / 40))
    n9 = max(1, round(n * 10 / 40))
    n36 = n - n3 - n9
    rows, cols, nests = [], [], []
    for count, (r0, c0, size, nest) in (
        (n3, (*c3, 3, "3km")),
        (n9, (*c9, 9, "9km")),
        (n36, (0, 0, max(ny, nx), "36km")),
    ):
        for _ in range(count):
            rows.append(rng.uniform(r0, min(r0 + size, ny)))
            cols.append(rng.uniform(c0, min(c0 + size, nx)))
            nests.append(nest)
    rows_f, cols_f = np.array(rows), np.array(cols)
    res = CELL_SIZE["M01"]
    sx = x[0] + (cols_f - 0.5) * res
    sy = y[0] - (rows_f - 0.5) * res
    lon, lat = xy_to_lonlat(sx, sy)
    r_i = np.clip(np.floor(rows_f).astype(int), 0, ny - 1)
    c_i = np.clip(np.floor(cols_f).astype(int), 0, nx - 1)
    series = truth[:, r_i, c_i].T.astype(float)  # (station, time)
    cell_mean = series.mean(axis=1, keepdims=True)
    gain = rng.uniform(0.8, 1.2, (n, 1))
    offset = rng.normal(0.0, 0.03, (n, 1))
    insitu = cell_mean + gain * (series - cell_mean) + offset
    insitu += rng.normal(0.0, 0.01, insitu.shape)
    insitu = np.clip(insitu, 0.01, 0.55)
    nt = len(times)
    for s in range(n):
        for _ in range(rng.poisson(1.5)):
            start = rng.integers(0, max(nt, 1))
            insitu[s, start : start + rng.integers(10, 200)] = np.nan
        if rng.random() < 0.2:  # some stations were installed after the start
            insitu[s, : rng.integers(0, min(400, nt) + 1)] = np.nan
    ids = np.array([f"TXS{i + 1:02d}" for i in range(n)])
    return {
        "insitu": insitu.astype(np.float32),
        "station": ids,
        "station_lat": lat,
        "station_lon": lon,
        "station_nest": np.array(nests),
    }
