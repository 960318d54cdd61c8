"""The *Data & region* tab: the data summary and the region, drawn on a map or typed."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from stimpute_core.data.summary import (
    describe,
    format_description,
    observed_fraction,
)
from stimpute_core.validation import station_nests

from .. import plots
from ..state import Workbench
from .common import _View, notify_errors


class DataView(_View):
    """The data summary, the region map (draw a box to select) and typed region bounds."""

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        w, s, e, n = wb.region
        self.west = pn.widgets.FloatInput(name="West (°)", value=w, step=0.01, format="0.0000")
        self.south = pn.widgets.FloatInput(name="South (°)", value=s, step=0.01, format="0.0000")
        self.east = pn.widgets.FloatInput(name="East (°)", value=e, step=0.01, format="0.0000")
        self.north = pn.widgets.FloatInput(name="North (°)", value=n, step=0.01, format="0.0000")
        self.apply = pn.widgets.Button(name="Apply region", button_type="primary")
        self.reset = pn.widgets.Button(name="Whole area")
        self.apply.on_click(notify_errors(lambda _e: self._apply()))
        self.reset.on_click(notify_errors(lambda _e: self.wb.reset_region()))
        wb.param.watch(self._sync_inputs, "region")

    def _sync_inputs(self, event) -> None:
        for widget, value in zip(
            (self.west, self.south, self.east, self.north), event.new, strict=True
        ):
            widget.value = round(float(value), 4)

    def _apply(self) -> None:
        self.wb.set_region(self.west.value, self.south.value, self.east.value, self.north.value)

    def _drawn(self, bounds) -> None:
        if bounds is None:
            return
        x0, y0, x1, y1 = bounds
        if abs(x1 - x0) < 1e-6 or abs(y1 - y0) < 1e-6:
            return
        self.wb.set_region(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def controls(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.west, self.east),
            pn.Row(self.south, self.north),
            pn.Row(self.apply, self.reset),
        )

    @param.depends("wb.data_version")
    def _area_map(self):
        ds = self.wb.ds
        frac = observed_fraction(ds).values
        mesh = plots.grid_map(
            ds, frac, "observed fraction", title="Whole data: drag a box to select a region"
        )
        # The drawn box only selects the region: keep every cell drawn as it was.
        return mesh.opts(
            tools=["hover", "box_select"], active_tools=["box_select"], nonselection_alpha=1.0
        )

    @param.depends("wb.data_version")
    def _stations(self):
        stations = station_nests(self.wb.ds)
        if stations.empty:
            return hv.Points([], ["lon", "lat"])
        return plots.station_points(stations, size=6)

    @param.depends("wb.region")
    def _outline(self):
        return plots.box_outline(*self.wb.region)

    @param.depends("wb.data_version", "wb.region", "wb.window")
    def _summary(self):
        text = format_description(describe(self.wb.selection()))
        w, s, e, n = self.wb.region
        start, end = self.wb.window
        return pn.Column(
            pn.pane.Markdown(
                f"**Selection**: W {w:.4f}, S {s:.4f}, E {e:.4f}, N {n:.4f} (cell centres), "
                f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
            ),
            pn.pane.Str(text, styles={"font-size": "12px"}),
        )

    def __panel__(self):
        data_map = hv.DynamicMap(self._area_map)
        # Dragging a box on the map selects the region (snapped to the cells inside it).
        hv.streams.BoundsXY(source=data_map).add_subscriber(notify_errors(self._drawn))
        area = data_map * hv.DynamicMap(self._stations) * hv.DynamicMap(self._outline)
        return pn.Row(
            pn.pane.HoloViews(area, sizing_mode="fixed", linked_axes=False),
            pn.Column(self._summary, sizing_mode="stretch_width"),
        )
