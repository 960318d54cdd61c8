"""stimpute workbench: ``panel serve app/``.

This first version opens the built-in TxSON scenario and shows its sparsity: the data summary, the
map of how often each cell is observed, the daily coverage over time (the overpass pattern) and
the observations of a chosen day. All data logic lives in ``stimpute_core``; this file only lays
out views.
"""

from __future__ import annotations

import os

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from stimpute_core.data import open_dataset, select_time
from stimpute_core.data.scenario import load_scenario
from stimpute_core.data.summary import (
    daily_coverage,
    describe,
    format_description,
    observed_fraction,
)

pn.extension(sizing_mode="stretch_width", notifications=True)
hv.extension("bokeh")


def _dataset():
    """The Dataset shown, shared by all sessions of this server process.

    ``STIMPUTE_DATA`` (set by whoever starts the server, never by the browser) names a contract
    NetCDF file; without it the cached built-in TxSON scenario is used.
    """
    path = os.environ.get("STIMPUTE_DATA")
    if path:
        return pn.state.as_cached(f"stimpute-data-{path}", open_dataset, path=path)
    return pn.state.as_cached("stimpute-default-scenario", load_scenario)


class StudyArea(param.Parameterized):
    """The Dataset and the chosen time window and day."""

    window = param.DateRange(doc="Time window shown in every view")
    day = param.CalendarDate(doc="Day shown in the observation map")

    def __init__(self, ds, **params):
        self.ds = ds
        times = pd.DatetimeIndex(ds["time"].values)
        bounds = (times[0].to_pydatetime(), times[-1].to_pydatetime())
        self.param.window.bounds = bounds
        self.param.day.bounds = (times[0].date(), times[-1].date())
        params.setdefault("window", bounds)
        observed_days = times[np.isfinite(ds["soil_moisture"].values).any(axis=(1, 2))]
        params.setdefault("day", (observed_days[0] if len(observed_days) else times[0]).date())
        super().__init__(**params)

    @param.depends("window")
    def selection(self):
        start, end = self.window
        return select_time(self.ds, f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}")


def _grid_image(values: np.ndarray, ds, label: str, clim=None, cmap="viridis") -> hv.QuadMesh:
    lon = ds["lon"].values[0, :]
    lat = ds["lat"].values[:, 0]
    mesh = hv.QuadMesh((lon, lat, values), kdims=["lon", "lat"], vdims=[label])
    opts = dict(
        cmap=cmap,
        colorbar=True,
        tools=["hover"],
        height=380,
        width=450,
        xlabel="longitude (°)",
        ylabel="latitude (°)",
    )
    if clim is not None:
        opts["clim"] = clim
    return mesh.opts(**opts)


class SparsityView(pn.viewable.Viewer):
    """Observed fraction per cell, daily coverage over time and one day's observations."""

    def __init__(self, area: StudyArea, **params):
        super().__init__(**params)
        self.area = area

    @param.depends("area.window")
    def _fraction_map(self):
        sel = self.area.selection()
        frac = observed_fraction(sel).values
        return _grid_image(frac, sel, "observed fraction").opts(title="Fraction of days observed")

    @param.depends("area.window")
    def _coverage(self):
        cover = daily_coverage(self.area.selection())
        curve = hv.Spikes((cover.index, 100 * cover.values), "time", "cells observed (%)")
        return curve.opts(
            title="Daily coverage (overpass pattern)",
            height=240,
            responsive=True,
            color="#1f77b4",
            tools=["hover"],
        )

    @param.depends("area.day")
    def _day_map(self):
        ds = self.area.ds
        day = pd.Timestamp(self.area.day)
        values = ds["soil_moisture"].sel(time=day).values
        n = int(np.isfinite(values).sum())
        return _grid_image(
            values, ds, "soil moisture (m³/m³)", clim=(0.0, 0.45), cmap="YlGnBu"
        ).opts(title=f"Observations on {day:%Y-%m-%d} ({n} cells)")

    @param.depends("area.window")
    def _summary(self):
        text = format_description(describe(self.area.selection()))
        return pn.pane.Markdown(f"```text\n{text}\n```")

    def __panel__(self):
        return pn.Column(
            pn.Row(
                pn.pane.HoloViews(self._fraction_map, sizing_mode="fixed"),
                pn.pane.HoloViews(self._day_map, sizing_mode="fixed"),
            ),
            pn.pane.HoloViews(self._coverage),
            self._summary,
        )


def _title(ds) -> str:
    return ds.attrs.get("title") or os.path.basename(os.environ.get("STIMPUTE_DATA", "")) or "Data"


def create_app() -> pn.template.BootstrapTemplate:
    """The page for one browser session."""
    area = StudyArea(_dataset())
    controls = pn.Param(
        area,
        parameters=["window", "day"],
        widgets={
            "window": pn.widgets.DatetimeRangePicker,
        },
        show_name=False,
    )
    return pn.template.BootstrapTemplate(
        title="stimpute · sparse soil-moisture workbench",
        sidebar=[pn.pane.Markdown(f"### {_title(area.ds)}"), controls],
        main=[SparsityView(area)],
        # Bootstrap rather than Fast: the Fast design always loads a web font, which fails offline.
        header_background="#2b6a99",
    )


create_app().servable()
