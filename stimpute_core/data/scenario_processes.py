"""Physical processes of the synthetic TxSON scenario, all drawn from one seeded generator.

1. Static layers with spatial structure on 1 km cells: a Hill Country DEM with a river valley,
   slope and aspect, soil texture, bulk density, organic carbon and IGBP land cover (grassland
   ~75 %, savanna ~25 %, a few woody savanna, urban and cropland cells).
2. Weather: moving, spatially correlated rain storms with Central Texas seasonality (wet spring
   and autumn, dry July-August, ~750 mm a year), temperature, radiation and vapour pressure with
   seasonal cycles and persistent weather anomalies (Daymet variable names and units).
3. Truth: a daily water balance of the 0-5 cm layer (interception, infiltration with runoff,
   drainage to field capacity, Hargreaves-type evapotranspiration limited by soil water) whose
   parameters depend on texture, land cover and temperature.
4. Observations like SPL2SMAP_S: Sentinel-1 overpasses every 12 days (plus a second, partial track
   while Sentinel-1B flew, giving 6-day stretches), swath edges, product gaps, per-pixel
   drop-outs (urban, dense vegetation) and retrieval noise; ``sm_36km`` from the area mean with
   noise on a 2-3 day revisit; stations nested at 36, 9 and 3 km.

:func:`stimpute_core.data.scenario.make_scenario` calls these in a fixed order on one generator;
changing the order or the draws changes the data (bump ``GENERATOR_VERSION``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .grid import CELL_SIZE, xy_to_lonlat
from .terrain import slope_aspect

#: IGBP codes :func:`_static_layers` assigns (woody savanna, savanna, grassland, cropland, urban).
LAND_COVER_CODES = (8, 9, 10, 12, 13)
# Central Texas monthly precipitation climatology (mm/month), Fredericksburg-like: wet May-June
# and September-October, dry July-August; ~760 mm a year.
MONTHLY_PRCP_MM = np.array([45, 50, 60, 60, 100, 90, 45, 55, 85, 85, 50, 45], dtype=float)
# Sentinel-1B was lost on 2021-12-23; while it flew, a second track gives 6-day stretches.
S1B_PERIOD = ("2016-10-01", "2021-12-22")
# SMAP safe mode in 2019: no SMAP product at all.
SMAP_OUTAGE = ("2019-06-19", "2019-07-23")


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ~``sigma`` cells."""
    pad = int(3 * sigma) + 1
    noise = rng.standard_normal((shape[0] + 2 * pad, shape[1] + 2 * pad))
    f = ndimage.gaussian_filter(noise, sigma, mode="wrap")[pad:-pad, pad:-pad]
    return (f - f.mean()) / f.std()


def _rescale(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return lo + (f - f.min()) / (f.max() - f.min()) * (hi - lo)


def _static_layers(rng: np.random.Generator, ny: int, nx: int) -> dict[str, np.ndarray]:
    """Terrain, soil and land cover with spatial structure."""
    jj, ii = np.mgrid[0:ny, 0:nx]
    # A river valley running roughly west to east (the Pedernales) with uplands to the north-west.
    valley_row = ny * 0.55 + 3 * np.sin(ii / max(nx, 1) * 2 * np.pi * 0.8)
    valley = np.exp(-(((jj - valley_row) / (0.12 * ny + 1)) ** 2))
    relief = (
        0.6 * _smooth_field(rng, (ny, nx), 6)
        + 0.25 * _smooth_field(rng, (ny, nx), 2)
        - 1.6 * valley
        + 0.9 * (1 - jj / max(ny - 1, 1))
        - 0.4 * (ii / max(nx - 1, 1))
    )
    elevation = _rescale(relief, 355.0, 655.0)
    # Rows run north to south, so the northward step is -1000 m.
    slope, aspect = slope_aspect(elevation, 1000.0, -1000.0)

    texture = 0.7 * _smooth_field(rng, (ny, nx), 4) + 0.6 * valley
    clay = _rescale(texture + 0.3 * _smooth_field(rng, (ny, nx), 2), 21.0, 33.0)  # percent
    sand = np.clip(88.0 - 1.6 * clay + 2.0 * _smooth_field(rng, (ny, nx), 3), 33.0, 57.0)
    soc = _rescale(0.6 * _smooth_field(rng, (ny, nx), 3) + 0.5 * valley, 8.0, 28.0)  # g/kg
    bulk_density = np.clip(1.62 - 0.004 * (clay - 21) - 0.006 * (soc - 8), 1.35, 1.62)  # g/cm3

    # Land cover: savanna where a smooth "woodiness" field is high (steeper, upland slopes).
    wood = _smooth_field(rng, (ny, nx), 3) + 0.4 * (slope - slope.mean()) / (slope.std() + 1e-9)
    land_cover = np.full((ny, nx), 10, dtype=np.int16)
    land_cover[wood > np.quantile(wood, 0.75)] = 9
    n_cells = ny * nx
    order = np.argsort(wood, axis=None)[::-1]
    n_woody = max(1, round(4 * n_cells / 1296))
    land_cover.flat[order[:n_woody]] = 8
    # A small town near the valley and two cropland fields on the flood plain.
    flat_valley = np.argsort(-valley, axis=None)
    town = flat_valley[len(flat_valley) // 20]
    tr, tc = divmod(int(town), nx)
    urban = [(tr, tc), (tr, min(tc + 1, nx - 1)), (min(tr + 1, ny - 1), tc)]
    for r, c in urban[: max(1, round(3 * n_cells / 1296))]:
        land_cover[r, c] = 13
    crops = [int(i) for i in flat_valley if land_cover.flat[int(i)] == 10]
    for i in crops[-max(1, round(2 * n_cells / 1296)) :] if n_cells >= 100 else crops[:1]:
        land_cover.flat[i] = 12
    return {
        "elevation": elevation,
        "slope": slope,
        "aspect": aspect,
        "clay": clay,
        "sand": sand,
        "bulk_density": bulk_density,
        "soc": soc,
        "land_cover": land_cover,
        "_valley": valley,
    }


def _precipitation(
    rng: np.random.Generator, times: pd.DatetimeIndex, ny: int, nx: int
) -> np.ndarray:
    """Daily precipitation (mm/day) from moving Gaussian storms, calibrated to the climatology."""
    nt = len(times)
    months = times.month.values - 1
    # Storm-day probability follows the monthly climatology; a two-state Markov chain gives
    # persistence (wet spells) and yearly factors give wet and dry years.
    p_storm = np.clip(0.1 + 0.0021 * MONTHLY_PRCP_MM[months], 0.05, 0.5)
    year_factor = {y: rng.lognormal(0.0, 0.3) for y in np.unique(times.year)}
    wet = np.zeros(nt, bool)
    for t in range(nt):
        p = p_storm[t] * (1.8 if t and wet[t - 1] else 0.8)
        wet[t] = rng.random() < min(p, 0.85)
    jj, ii = np.mgrid[0:ny, 0:nx].astype(float)
    prcp = np.zeros((nt, ny, nx))
    for t in np.flatnonzero(wet):
        for _ in range(1 + rng.poisson(0.7)):
            # Storm centre may lie outside the box; storms move several km during the day,
            # which smears each cell into a streak along the storm's heading.
            cy = rng.uniform(-0.5 * ny, 1.5 * ny)
            cx = rng.uniform(-0.5 * nx, 1.5 * nx)
            radius = rng.uniform(4.0, 25.0)
            heading = rng.normal(np.deg2rad(60), 0.6)  # mostly towards the north-east
            travel = rng.uniform(5.0, 40.0)
            depth = rng.gamma(0.8, 12.0) * year_factor[times.year[t]]
            field = np.zeros((ny, nx))
            for s in np.linspace(-0.5, 0.5, 5):
                py = cy - s * travel * np.cos(heading)
                px = cx + s * travel * np.sin(heading)
                field += np.exp(-((jj - py) ** 2 + (ii - px) ** 2) / (2 * radius**2))
            prcp[t] += depth * field / 5
    # Calibrate each calendar month's area-mean total to the climatology while keeping the
    # interannual variability of the storm process.
    area = prcp.mean(axis=(1, 2))
    for m in range(12):
        sel = months == m
        if not sel.any():
            continue
        days_in_month = pd.Timestamp(2001, m + 1, 1).days_in_month
        expected = MONTHLY_PRCP_MM[m] * sel.sum() / days_in_month
        realised = area[sel].sum()
        if realised > 0:
            prcp[sel] *= expected / realised
    prcp[prcp < 0.1] = 0.0
    return prcp


def _weather(
    rng: np.random.Generator,
    times: pd.DatetimeIndex,
    prcp: np.ndarray,
    static: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Temperature (deg C), shortwave radiation (W/m2) and vapour pressure (Pa), Daymet-style."""
    nt = len(times)
    doy = times.day_of_year.values.astype(float)
    season = np.cos(2 * np.pi * (doy - 200) / 365.25)  # +1 in mid-July, -1 in mid-January

    def ar1(scale: float, phi: float) -> np.ndarray:
        e = rng.normal(0.0, scale * np.sqrt(1 - phi**2), nt)
        out = np.zeros(nt)
        for t in range(1, nt):
            out[t] = phi * out[t - 1] + e[t]
        return out

    anomaly = ar1(2.5, 0.75)
    area_rain = prcp.mean(axis=(1, 2))
    rainy = np.clip(area_rain / 10.0, 0.0, 1.0)
    lapse = -0.0065 * (static["elevation"] - static["elevation"].mean())  # K per m
    local = 0.3 * _smooth_field(rng, static["elevation"].shape, 5)
    tmax_area = 25.5 + 9.0 * season + anomaly - 4.0 * rainy
    tmin_area = 11.5 + 10.0 * season + 0.8 * anomaly + 1.5 * rainy + ar1(1.5, 0.5)
    tmax = tmax_area[:, None, None] + lapse + local
    tmin = np.minimum(tmin_area[:, None, None] + lapse + 0.5 * local, tmax - 2.0)
    # Radiation: seasonal clear-sky level, cut under storm clouds (local rain field).
    clear = 330.0 + 130.0 * season + ar1(20.0, 0.4)
    srad = clear[:, None, None] * (1.0 - 0.55 * np.clip(prcp / 8.0, 0.0, 1.0)) - 10.0 * local
    srad = np.clip(srad, 40.0, 520.0)
    # Vapour pressure: humid Gulf air in summer, more after rain, never above saturation at tmin.
    es_tmin = 610.8 * np.exp(17.27 * tmin / (tmin + 237.3))
    vp_area = 1250.0 + 650.0 * season + ar1(180.0, 0.7) + 250.0 * rainy
    vp = np.minimum(vp_area[:, None, None] * np.ones_like(tmin), 0.97 * es_tmin)
    vp = np.clip(vp, 150.0, None)
    return {"tmax": tmax, "tmin": tmin, "srad": srad, "vp": vp}


def _water_balance(
    rng: np.random.Generator,
    prcp: np.ndarray,
    weather: dict[str, np.ndarray],
    static: dict[str, np.ndarray],
) -> np.ndarray:
    """Daily 0-5 cm volumetric soil moisture from a bucket water balance."""
    clay, sand, soc = static["clay"], static["sand"], static["soc"]
    lc, slope = static["land_cover"], static["slope"]
    # Texture-dependent hydraulic parameters (Saxton-Rawls-like magnitudes).
    porosity = np.clip(0.50 - 0.0018 * (sand - 35) + 0.0012 * (soc - 8), 0.38, 0.50)
    field_cap = np.clip(0.23 + 0.0045 * (clay - 20) - 0.0012 * (sand - 35), 0.19, 0.36)
    residual = np.clip(0.04 + 0.002 * (clay - 20), 0.035, 0.07)
    drain_rate = np.clip(0.15 + 0.004 * (sand - 35), 0.12, 0.3)  # per day above field capacity
    layer_mm = 120.0
    et_depth_mm = 200.0  # evapotranspiration draws from below the sensing depth too
    crop_coef = np.select([lc == 8, lc == 9, lc == 12, lc == 13], [1.15, 1.05, 1.1, 0.6], 1.0)
    interception = np.select([lc == 8, lc == 9, lc == 13], [2.0, 1.2, 0.3], 0.6)  # mm/day
    impervious = np.where(lc == 13, 0.5, 0.0)
    runoff_base = 0.05 + 0.03 * slope

    tmax, tmin, srad = weather["tmax"], weather["tmin"], weather["srad"]
    tmean = 0.5 * (tmax + tmin)
    srad_mm = srad * 0.0864 / 2.45  # W/m2 -> MJ/m2/day -> mm/day of evaporation
    pet = 0.0023 * srad_mm * (tmean + 17.8) * np.sqrt(np.clip(tmax - tmin, 0.0, None))
    pet = np.clip(pet, 0.1, 9.0)

    nt = prcp.shape[0]
    theta = 0.6 * field_cap + 0.4 * residual
    out = np.empty_like(prcp, dtype=np.float32)
    spin_up = min(365, nt)
    for step in range(spin_up + nt):
        t = step - spin_up if step >= spin_up else step
        p_eff = np.clip(prcp[t] - interception, 0.0, None) * (1 - impervious)
        wetness = np.clip((theta - residual) / (porosity - residual), 0.0, 1.0)
        runoff_frac = np.clip(runoff_base + 0.5 * wetness**3 + 0.004 * p_eff, 0.0, 0.9)
        infil = p_eff * (1 - runoff_frac)
        theta = theta + infil / layer_mm
        excess = np.clip(theta - porosity, 0.0, None)  # saturation excess leaves at once
        theta = theta - excess
        above = np.clip(theta - field_cap, 0.0, None)
        theta = theta - drain_rate * above
        stress = np.clip((theta - residual) / (field_cap - residual), 0.0, 1.0) ** 1.5
        et = crop_coef * pet[t] * stress
        theta = np.clip(theta - et / et_depth_mm, residual, porosity)
        if step >= spin_up:
            out[t] = theta
    # Sub-kilometre heterogeneity the water balance does not resolve: a static per-cell offset.
    out += (0.008 * _smooth_field(rng, theta.shape, 1.5)).astype(np.float32)
    return np.clip(out, 0.03, 0.5)


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
    day = np.asarray((times - pd.Timestamp("2015-01-01")).days)
    covered = np.zeros((nt, ny, nx), bool)
    s1b = (times >= S1B_PERIOD[0]) & (times <= S1B_PERIOD[1])
    smap_off = (times >= SMAP_OUTAGE[0]) & (times <= SMAP_OUTAGE[1])

    def swath(edge_frac: float, tilt: float, west: bool) -> np.ndarray:
        # A swath edge crossing the box, slightly tilted like a descending S1 ground track.
        edge = edge_frac * nx + tilt * (jj - ny / 2)
        return ii <= edge if west else ii >= edge

    for t in range(nt):
        if smap_off[t]:
            continue
        if day[t] % 12 == 3 and rng.random() < pass_availability:
            # Primary track: usually the whole box, sometimes cut by the swath edge.
            if rng.random() < 0.75:
                covered[t] = True
            else:
                covered[t] = swath(
                    rng.uniform(0.3, 0.8), rng.normal(0.25, 0.05), rng.random() < 0.5
                )
        elif s1b[t] and day[t] % 12 == 9 and rng.random() < 0.5:
            # Sentinel-1B's track six days later covers only the western part of the box.
            covered[t] = swath(rng.uniform(0.25, 0.65), rng.normal(0.25, 0.05), True)
    # Per-pixel drop-outs: urban fraction masks most urban cells; dense vegetation and random
    # retrieval failures remove a few percent elsewhere.
    lc = static["land_cover"]
    p_drop = np.select([lc == 13, lc == 8, lc == 12], [0.85, 0.3, 0.1], 0.04)
    covered &= rng.random((nt, ny, nx)) >= p_drop
    return covered


def _retrieve(
    rng: np.random.Generator, truth: np.ndarray, mask: np.ndarray, noise_sd: float
) -> np.ndarray:
    """SPL2SMAP_S-like retrievals: truth plus a static per-cell bias and noise, where ``mask``."""
    cell_bias = 0.01 * _smooth_field(rng, truth.shape[1:], 2)
    noise = rng.normal(0.0, noise_sd, truth.shape)
    retrieved = np.clip(truth + cell_bias + noise, 0.02, 0.6)
    return np.where(mask, retrieved, np.nan).astype(np.float32)


def _sm_36km(rng: np.random.Generator, times: pd.DatetimeIndex, truth: np.ndarray) -> np.ndarray:
    """SPL3SMP-like coarse soil moisture: the area mean with bias and noise, 2-3 day revisit."""
    nt = len(times)
    day = np.asarray((times - pd.Timestamp("2015-01-01")).days)
    revisit = np.array([1, 0, 1, 1, 0, 1, 0, 0], bool)  # SMAP's 8-day exact repeat over TxSON
    available = revisit[day % 8] & (rng.random(nt) > 0.08)
    available &= ~((times >= SMAP_OUTAGE[0]) & (times <= SMAP_OUTAGE[1]))
    area = truth.mean(axis=(1, 2))
    coarse = area - 0.01 + rng.normal(0.0, 0.02, nt)
    coarse = np.where(available, np.clip(coarse, 0.02, 0.5), np.nan)
    return np.broadcast_to(coarse[:, None, None], truth.shape)


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
