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

How the scenario is observed (overpasses, retrievals, ``sm_36km``, stations) is in
:mod:`.scenario_observations`. :func:`stimpute_core.data.scenario.make_scenario` calls these in a
fixed order on one generator; changing the order or the draws changes the data (bump
``GENERATOR_VERSION``). Draws are kept apart from the computations they feed (storms from their
rendering, area-wide weather series from the fields), so the tiled regional scenario
(:mod:`.scenario_region`) runs the same process tile by tile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .terrain import slope_aspect

#: IGBP codes :func:`_static_layers` assigns (woody savanna, savanna, grassland, cropland, urban).
LAND_COVER_CODES = (8, 9, 10, 12, 13)
# Central Texas monthly precipitation climatology (mm/month), Fredericksburg-like: wet May-June
# and September-October, dry July-August; ~760 mm a year.
MONTHLY_PRCP_MM = np.array([45, 50, 60, 60, 100, 90, 45, 55, 85, 85, 50, 45], dtype=float)


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


def _storms(
    rng: np.random.Generator,
    times: pd.DatetimeIndex,
    ny: int,
    nx: int,
    extra_storms: float = 0.7,
    margin: tuple[float, float] | None = None,
) -> np.ndarray:
    """Every storm of the period as rows (day, centre row, centre column, radius, heading,
    travel, depth): wet days from a two-state Markov chain, ``1 + Poisson(extra_storms)``
    storms on each, centres anywhere in the ``ny`` x ``nx`` box widened by ``margin`` cells
    (rows, columns; default half the box)."""
    my, mx = margin if margin is not None else (0.5 * ny, 0.5 * nx)
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
    rows = []
    for t in np.flatnonzero(wet):
        for _ in range(1 + rng.poisson(extra_storms)):
            # Storm centre may lie outside the box; storms move several km during the day,
            # which smears each cell into a streak along the storm's heading.
            cy = rng.uniform(-my, ny + my)
            cx = rng.uniform(-mx, nx + mx)
            radius = rng.uniform(4.0, 25.0)
            heading = rng.normal(np.deg2rad(60), 0.6)  # mostly towards the north-east
            travel = rng.uniform(5.0, 40.0)
            depth = rng.gamma(0.8, 12.0) * year_factor[times.year[t]]
            rows.append((t, cy, cx, radius, heading, travel, depth))
    return np.array(rows, dtype=float).reshape(-1, 7)


def _render_storms(storms: np.ndarray, nt: int, jj: np.ndarray, ii: np.ndarray) -> np.ndarray:
    """Rain (mm/day, before calibration) of ``storms`` on the cells at rows ``jj`` and columns
    ``ii`` (2-D index grids in the storms' frame)."""
    prcp = np.zeros((nt, *jj.shape))
    for t, cy, cx, radius, heading, travel, depth in storms:
        field = np.zeros(jj.shape)
        for s in np.linspace(-0.5, 0.5, 5):
            py = cy - s * travel * np.cos(heading)
            px = cx + s * travel * np.sin(heading)
            field += np.exp(-((jj - py) ** 2 + (ii - px) ** 2) / (2 * radius**2))
        prcp[int(t)] += depth * field / 5
    return prcp


def _monthly_factors(times: pd.DatetimeIndex, area: np.ndarray) -> np.ndarray:
    """Per-day factors that bring each calendar month's area-mean total (``area``: the daily
    area mean) to the climatology while keeping the storm process's interannual variability."""
    months = times.month.values - 1
    factors = np.ones(len(times))
    for m in range(12):
        sel = months == m
        if not sel.any():
            continue
        days_in_month = pd.Timestamp(2001, m + 1, 1).days_in_month
        expected = MONTHLY_PRCP_MM[m] * sel.sum() / days_in_month
        realised = area[sel].sum()
        if realised > 0:
            factors[sel] = expected / realised
    return factors


def _precipitation(
    rng: np.random.Generator, times: pd.DatetimeIndex, ny: int, nx: int
) -> np.ndarray:
    """Daily precipitation (mm/day) from moving Gaussian storms, calibrated to the climatology."""
    storms = _storms(rng, times, ny, nx)
    jj, ii = np.mgrid[0:ny, 0:nx].astype(float)
    prcp = _render_storms(storms, len(times), jj, ii)
    prcp *= _monthly_factors(times, prcp.mean(axis=(1, 2)))[:, None, None]
    prcp[prcp < 0.1] = 0.0
    return prcp


def _weather_series(
    rng: np.random.Generator, times: pd.DatetimeIndex, area_rain: np.ndarray, shape: tuple
) -> dict[str, np.ndarray]:
    """The area-wide weather series (anomalies, seasonal levels) and the static local
    temperature field of shape ``shape``, drawn in the scenario's fixed order."""
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
    rainy = np.clip(area_rain / 10.0, 0.0, 1.0)
    local = 0.3 * _smooth_field(rng, shape, 5)
    tmax_area = 25.5 + 9.0 * season + anomaly - 4.0 * rainy
    tmin_area = 11.5 + 10.0 * season + 0.8 * anomaly + 1.5 * rainy + ar1(1.5, 0.5)
    clear = 330.0 + 130.0 * season + ar1(20.0, 0.4)
    vp_area = 1250.0 + 650.0 * season + ar1(180.0, 0.7) + 250.0 * rainy
    return {"tmax": tmax_area, "tmin": tmin_area, "clear": clear, "vp": vp_area, "local": local}


def _weather_fields(
    series: dict[str, np.ndarray],
    prcp: np.ndarray,
    elevation: np.ndarray,
    elevation_mean: float,
    local: np.ndarray,
) -> dict[str, np.ndarray]:
    """Daily fields on the cells of ``prcp`` from the area series, the cells' elevation (lapse
    rate about ``elevation_mean``), their local field and the rain (clouds cut radiation)."""
    lapse = -0.0065 * (elevation - elevation_mean)  # K per m
    tmax = series["tmax"][:, None, None] + lapse + local
    tmin = np.minimum(series["tmin"][:, None, None] + lapse + 0.5 * local, tmax - 2.0)
    # Radiation: seasonal clear-sky level, cut under storm clouds (local rain field).
    clear = series["clear"]
    srad = clear[:, None, None] * (1.0 - 0.55 * np.clip(prcp / 8.0, 0.0, 1.0)) - 10.0 * local
    srad = np.clip(srad, 40.0, 520.0)
    # Vapour pressure: humid Gulf air in summer, more after rain, never above saturation at tmin.
    es_tmin = 610.8 * np.exp(17.27 * tmin / (tmin + 237.3))
    vp = np.minimum(series["vp"][:, None, None] * np.ones_like(tmin), 0.97 * es_tmin)
    vp = np.clip(vp, 150.0, None)
    return {"tmax": tmax, "tmin": tmin, "srad": srad, "vp": vp}


def _weather(
    rng: np.random.Generator,
    times: pd.DatetimeIndex,
    prcp: np.ndarray,
    static: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Temperature (deg C), shortwave radiation (W/m2) and vapour pressure (Pa), Daymet-style."""
    elevation = static["elevation"]
    series = _weather_series(rng, times, prcp.mean(axis=(1, 2)), elevation.shape)
    return _weather_fields(series, prcp, elevation, elevation.mean(), series["local"])


def _water_balance(
    rng: np.random.Generator,
    prcp: np.ndarray,
    weather: dict[str, np.ndarray],
    static: dict[str, np.ndarray],
) -> np.ndarray:
    """Daily 0-5 cm volumetric soil moisture from a bucket water balance."""
    out = _bucket(prcp, weather, static)
    return _add_offset(out, 0.008 * _smooth_field(rng, out.shape[1:], 1.5))


def _add_offset(bucket: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Sub-kilometre heterogeneity the water balance does not resolve: a static per-cell
    offset, then the physical range."""
    return np.clip(bucket + offset.astype(np.float32), 0.03, 0.5)


def _bucket(
    prcp: np.ndarray, weather: dict[str, np.ndarray], static: dict[str, np.ndarray]
) -> np.ndarray:
    """The bucket water balance itself, cell by cell (no draws)."""
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
    return out
