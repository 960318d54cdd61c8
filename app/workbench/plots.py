"""HoloViews elements for the workbench: maps on the grid, time series, curves and boxes.

Plots only: every number drawn comes from ``stimpute_core`` through the session state. Maps
have no tiles (the server may be offline): lon/lat axes with a few ticks labelled in degrees.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr
from bokeh.models import CustomJSTickFormatter

SM_LIMITS = (0.0, 0.45)
SM_LABEL = "soil moisture (m³/m³)"
MAP_SIZE = {"height": 330, "width": 380}
NEST_COLORS = {"3km": "#d62728", "9km": "#ff7f0e", "36km": "#1f77b4", "": "#555555"}
#: Ticks per map axis: a 380 px map fits about four longitude labels side by side.
MAP_TICKS = 4
#: Degrees with a hemisphere letter and as many decimals as the tick spacing needs (in the
#: browser: Bokeh's ticker picks the ticks, so the spacing is only known there).
_DEGREES_JS = """
const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
const digits = Math.min(4, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
const letter = tick < 0 ? "{neg}" : tick > 0 ? "{pos}" : "";
return Math.abs(tick).toFixed(digits) + "°" + letter;
"""


def map_axes() -> dict:
    """Options for readable lon/lat axes: few ticks, labelled like ``98.80°W`` and ``30.35°N``.

    New formatters on every call: a Bokeh model belongs to one document (one session) only.
    """
    return {
        "xticks": MAP_TICKS,
        "yticks": MAP_TICKS,
        "xformatter": CustomJSTickFormatter(code=_DEGREES_JS.format(neg="W", pos="E")),
        "yformatter": CustomJSTickFormatter(code=_DEGREES_JS.format(neg="S", pos="N")),
        "xlabel": "longitude",
        "ylabel": "latitude",
    }


def lonlat(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """1-D longitudes (per column) and latitudes (per row) of an EASE-Grid 2.0 selection."""
    return ds["lon"].values[0, :], ds["lat"].values[:, 0]


def nearest_cell(ds: xr.Dataset, lon: float, lat: float) -> tuple[int, int]:
    """Row and column of the cell nearest to a clicked point."""
    lons, lats = lonlat(ds)
    return int(np.abs(lats - lat).argmin()), int(np.abs(lons - lon).argmin())


def grid_map(
    ds: xr.Dataset,
    values: np.ndarray,
    label: str,
    *,
    title: str = "",
    clim: tuple[float, float] | None = None,
    cmap: str = "viridis",
    symmetric: bool = False,
) -> hv.QuadMesh:
    """A (y, x) field of ``ds``'s grid as a lon/lat mesh with hover and tap."""
    lons, lats = lonlat(ds)
    mesh = hv.QuadMesh((lons, lats, np.asarray(values, dtype=float)), ["lon", "lat"], [label])
    opts: dict = dict(
        cmap=cmap,
        colorbar=True,
        tools=["hover"],
        # Each frame of a map that changes (day, model, error or truth) sets its own range.
        framewise=True,
        title=title,
        **map_axes(),
        **MAP_SIZE,
    )
    if clim is not None:
        opts["clim"] = clim
    if symmetric:
        opts["symmetric"] = True
    return mesh.opts(**opts)


def cell_marker(ds: xr.Dataset, row: int, col: int) -> hv.Points:
    lons, lats = lonlat(ds)
    row = min(max(row, 0), len(lats) - 1)
    col = min(max(col, 0), len(lons) - 1)
    return hv.Points([(lons[col], lats[row])], ["lon", "lat"]).opts(
        marker="square", size=12, fill_alpha=0, line_color="red", line_width=2
    )


def box_outline(west: float, south: float, east: float, north: float) -> hv.Rectangles:
    return hv.Rectangles([(west, south, east, north)], ["lon", "lat", "lon2", "lat2"]).opts(
        fill_alpha=0, line_color="red", line_width=2
    )


def station_points(stations: pd.DataFrame, *, size: int = 9) -> hv.Points:
    """Stations coloured by the nest they belong to (3, 9 or 36 km)."""
    frame = stations.copy()
    if "nest" not in frame:
        frame["nest"] = ""
    frame["nest"] = frame["nest"].fillna("").astype(str)
    frame = frame.rename(columns={"lon": "lon", "lat": "lat"})
    colors = {k: NEST_COLORS.get(k, "#555555") for k in frame["nest"].unique()}
    return hv.Points(frame, ["lon", "lat"], ["station", "nest"]).opts(
        color="nest",
        cmap=colors,
        size=size,
        line_color="black",
        tools=["hover"],
        nonselection_alpha=1.0,
        show_legend=True,
        legend_position="bottom_right",
    )


def series_plot(
    frame: pd.DataFrame,
    title: str,
    *,
    points: tuple[str, ...] = (),
    fixed: bool = False,
    band: pd.DataFrame | None = None,
    band_label: str = "band",
) -> hv.Overlay:
    """Columns of a time-indexed frame: those in ``points`` as markers, the rest as lines.

    Empty columns are left out, unless ``fixed``: then every column keeps its layer, so that a
    DynamicMap can update the plot in place instead of rebuilding it. ``band`` (columns
    ``lower`` and ``upper`` on the frame's days) is shaded beneath the lines; with ``fixed`` and
    no band, an empty one keeps its layer.
    """
    layers = []
    if band is None and fixed:
        band = pd.DataFrame({"lower": np.nan, "upper": np.nan}, index=frame.index)
    if band is not None:
        area = hv.Area(
            (band.index, band["lower"].values, band["upper"].values),
            "time",
            [SM_LABEL, "upper"],
            label=band_label,
        )
        layers.append(area.opts(fill_alpha=0.25, line_alpha=0, color="#7f7f7f"))
    for column in frame.columns:
        data = frame[column] if fixed else frame[column].dropna()
        if data.empty and not fixed:
            continue
        kind = hv.Scatter if column in points else hv.Curve
        element = kind((data.index, data.values), "time", SM_LABEL, label=str(column))
        layers.append(element.opts(tools=["hover"]))
    if not layers:
        return hv.Overlay([hv.Curve([], "time", SM_LABEL)]).opts(title=f"{title} (no data)")
    return hv.Overlay(layers).opts(
        hv.opts.Scatter(size=5),
        hv.opts.Overlay(title=title, legend_position="right", responsive=True, height=300),
    )


def calibration_plot(curves: pd.DataFrame) -> hv.Overlay:
    """Stated against observed coverage, one line per model (columns ``model``, ``stated``,
    ``observed``), with the diagonal of perfect calibration."""
    diagonal = hv.Curve([(0, 0), (1, 1)], "stated coverage", "observed coverage", label="ideal")
    layers = [diagonal.opts(color="black", line_dash="dashed")]
    for model, rows in curves.groupby("model", sort=False):
        line = hv.Curve(rows, "stated", "observed", label=str(model)).redim(
            stated="stated coverage", observed="observed coverage"
        )
        layers.append(line.opts(tools=["hover"]) * hv.Scatter(line).opts(size=6))
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            title="Calibration on the held-out entries: central intervals 10-90 %",
            legend_position="right",
            width=560,
            height=380,
            xlim=(0, 1),
            ylim=(0, 1),
        )
    )


def training_curves(losses: list[tuple[int, float]], history: list[dict]) -> hv.Layout:
    """Training loss per step and validation MAE per epoch."""
    loss = hv.Curve(losses, "step", "training L1 loss (standardised)").opts(
        title="Training loss", responsive=True, height=240, tools=["hover"]
    )
    val = [(h["epoch"], h["val_mae"]) for h in history if h.get("val_mae") is not None]
    val_curve = hv.Curve(val, "epoch", "validation MAE (m³/m³)").opts(
        title="Validation MAE", responsive=True, height=240, tools=["hover"]
    )
    return (loss * hv.Scatter(losses[-1:], "step", "training L1 loss (standardised)")) + (
        val_curve * hv.Scatter(val, "epoch", "validation MAE (m³/m³)").opts(size=6)
    )


def error_boxes(cells: pd.DataFrame, metric: str = "mae") -> hv.BoxWhisker:
    """Per-cell error by land-cover class and model."""
    if cells.empty:
        return hv.BoxWhisker([], ["land cover", "model"], metric)
    frame = cells.rename(columns={"land_cover_name": "land cover"})
    return hv.BoxWhisker(frame, ["land cover", "model"], metric).opts(
        box_fill_color="model",
        cmap="Category10",
        responsive=True,
        height=380,
        xrotation=30,
        ylabel="per-cell MAE on held-out entries (m³/m³)",
        tools=["hover"],
    )


def attention_map(weights: xr.DataArray, title: str):
    """Spatial attention over a patch's cells inside the grid
    (:func:`~stimpute_core.models.st_transformer.attention.spatial_on_grid`)."""
    lons, lats = lonlat(weights)
    mesh = hv.QuadMesh((lons, lats, weights.values), ["lon", "lat"], ["attention"])
    return mesh.opts(
        cmap="magma",
        colorbar=True,
        tools=["hover"],
        title=title,
        clim=(0, None),
        **map_axes(),
        **MAP_SIZE,
    )


def attention_curve(days: pd.DatetimeIndex, weights: np.ndarray, query_day, title: str):
    curve = hv.Curve((days, weights), "day", "attention").opts(
        responsive=True, height=260, title=title, tools=["hover"]
    )
    mark = hv.VLine(pd.Timestamp(query_day)).opts(color="red", line_dash="dashed")
    return curve * mark
