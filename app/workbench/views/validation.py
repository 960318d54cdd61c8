"""The *Validation* tab: the stations, one station's series (with the band of the model shown,
when it gives intervals) and the station metrics (with the share of days inside that band)."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from stimpute_core.data.summary import (
    observed_fraction,
)
from stimpute_core.metrics import UBRMSD_TARGET
from stimpute_core.validation import station_nests

from .. import plots
from ..intervals import BAND_LABEL
from ..state import Workbench
from .common import _table, _View, notify_errors, redraw


class ValidationView(_View):
    """Stations on the map, one station's series, and the metrics against the 0.04 target.

    A change of station redraws the ring on the map and the series in place, in one batch; the
    series plot is rebuilt only when its set of lines changes (other methods, other data).
    """

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        self._ring_redraw = hv.streams.Stream()
        self._series_redraw = hv.streams.Stream()
        self._frame = pd.DataFrame()
        self._band: pd.DataFrame | None = None
        self._columns: tuple | None = None
        self.band_note = pn.pane.Markdown("")
        self.series = pn.pane.HoloViews(hv.Curve([]), linked_axes=False)
        wb.param.watch(
            self._station_changed,
            ["station", "results_version", "region", "window", "data_version", "method"],
        )
        self._station_changed()

    def _station_changed(self, *_events) -> None:
        wb = self.wb
        station = wb.station if wb.station in wb.param.station.objects else None
        self._frame = wb.station_series(station) if station is not None else pd.DataFrame()
        self._band = wb.station_band(station) if station is not None else None
        label = wb.method_label()
        if wb.run() is None:
            self.band_note.object = ""
        elif self._band is None:
            self.band_note.object = f"No band: {label} gives one value per cell-day."
        else:
            self.band_note.object = (
                f"Shaded: the {BAND_LABEL} of {label} at the station's cell; `in_band` in the "
                "tables is the share of the station's days inside it (a point against a 1 km "
                "cell: expect less than 90 %)."
            )
        columns = tuple(self._frame.columns)
        if columns != self._columns:  # other lines: a new plot
            self._columns = columns
            self.series.object = hv.DynamicMap(self._series, streams=[self._series_redraw])
            redraw(self._ring_redraw)
        else:
            redraw(self._ring_redraw, self._series_redraw)

    def _tapped(self, x, y) -> None:
        if x is None:
            return
        stations = station_nests(self.wb.selection())
        if stations.empty:
            return
        d = (stations["lon"] - x) ** 2 + (stations["lat"] - y) ** 2
        self.wb.station = str(stations.loc[d.idxmin(), "station"])

    @param.depends("wb.region", "wb.window", "wb.data_version")
    def _map(self):
        sel = self.wb.selection()
        frac = observed_fraction(sel).values
        return plots.grid_map(
            sel, frac, "observed fraction", title="Stations: nested 36, 9 and 3 km", cmap="Greys"
        )

    def _stations(self):
        stations = station_nests(self.wb.selection())
        if stations.empty:
            return hv.Points([], ["lon", "lat"]) * hv.Points([], ["lon", "lat"])
        chosen = stations[stations["station"] == self.wb.station]
        ring = hv.Points(chosen, ["lon", "lat"]).opts(
            size=18, fill_alpha=0, line_color="red", line_width=3
        )
        return plots.station_points(stations) * ring

    def _series(self):
        frame = self._frame
        if frame.empty:
            return hv.Curve([]).opts(title="No station in this selection")
        return plots.series_plot(
            frame,
            f"Station {self.wb.station}: in situ, satellite and imputed",
            points=("satellite",),
            fixed=True,
            band=None if self._band is None else self._band.reindex(frame.index),
            band_label=BAND_LABEL,
        )

    @param.depends("wb.results_version", "wb.region", "wb.window", "wb.data_version")
    def _tables(self):
        table = self.wb.station_table()
        if table.empty:
            return pn.pane.Markdown("No station, or nothing imputed yet, in this selection.")
        cols = ["model", "station", "nest", "n", "bias", "rmse", "ubrmsd", "r", "meets_target"]
        cols += [c for c in ("in_band",) if c in table]
        overall = table[table["station"] == "all"][cols]
        per_station = table[table["station"] != "all"][cols]
        return pn.Column(
            pn.pane.Markdown(
                f"**Overall** (pooled daily pairs; target ubRMSD ≤ {UBRMSD_TARGET} m³/m³). "
                "`satellite` scores the raw observations on the days they exist; `in_band`: "
                f"share of the station's days inside the model's {BAND_LABEL} (models with "
                "intervals)."
            ),
            _table(overall),
            pn.pane.Markdown("**Per station**"),
            _table(per_station, groupby=["station"], height=360, pagination=None),
        )

    def __panel__(self):
        base = hv.DynamicMap(self._map)
        # A click on the map picks the nearest station (the stream's source is the mesh alone).
        hv.streams.Tap(source=base).add_subscriber(notify_errors(self._tapped))
        station_map = base * hv.DynamicMap(self._stations, streams=[self._ring_redraw])
        return pn.Column(
            pn.Row(
                pn.pane.HoloViews(station_map, sizing_mode="fixed", linked_axes=False),
                pn.Column(
                    pn.widgets.Select.from_param(self.wb.param.station, name="Station"),
                    pn.pane.Markdown("Click a station on the map, or pick it here."),
                    self.band_note,
                ),
            ),
            self.series,
            self._tables,
        )
