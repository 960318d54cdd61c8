"""The *Imputed fields* tab: linked maps of one day (and its uncertainty) and the series of one
cell with its band."""

from __future__ import annotations

import contextlib

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from stimpute_core.data import TARGET, TRUTH

from .. import plots
from ..intervals import BAND_LABEL
from ..state import Workbench
from .common import _View, notify_errors, one_update, redraw


class FieldsView(_View):
    """Linked maps for one day (observations, imputation, the width of its 90 % interval, truth
    or error) and a cell's series with the 5-95 % band of the model shown.

    The plots are redrawn by :meth:`_redraw`, in one batch per change and only those that the
    change touches: a new day redraws the four maps, a new cell the markers and the series.
    """

    show = param.Selector(default="error", objects=["error", "truth"])

    _MAPS = ("day", "results_version", "method", "region", "window", "data_version", "show")
    _CELL = ("cell", "results_version", "method", "region", "window", "data_version")

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        self.player = pn.widgets.Player(
            name="Play days", start=0, end=1, value=0, interval=800, loop_policy="loop",
            show_loop_controls=False, width=340,
        )  # fmt: skip
        self.player.param.watch(self._played, "value")
        self.caption = pn.pane.Markdown("")
        self.intervals = pn.pane.Markdown("")
        self._map_redraw = [hv.streams.Stream() for _ in range(4)]
        self._marker_redraw = [hv.streams.Stream() for _ in range(4)]
        self._series_redraw = hv.streams.Stream()
        wb.param.watch(self._redraw, sorted({*self._MAPS[:-1], *self._CELL, "model_version"}))
        self.param.watch(self._redraw, "show")
        self._update_caption()
        wb.param.watch(self._window_changed, ["window", "region", "data_version"])
        self._window_changed()

    def _redraw(self, *events) -> None:
        names = {e.name for e in events}
        streams = []
        if names & set(self._MAPS):
            streams += self._map_redraw
        if names & set(self._CELL):
            streams += [*self._marker_redraw, self._series_redraw]
        shown = any(s.subscribers for s in streams)
        with one_update() if shown else contextlib.nullcontext():
            if names & {*self._CELL, "model_version"}:
                self._update_caption()
            redraw(*streams)

    def _days(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.wb.selection()["time"].values)

    def _window_changed(self, *_events) -> None:
        days = self._days()
        self.player.end = max(len(days) - 1, 1)
        self.player.value = int(max(0, days.get_indexer([pd.Timestamp(self.wb.day)])[0]))

    def _played(self, event) -> None:
        days = self._days()
        if 0 <= event.new < len(days):
            self.wb.day = days[event.new].date()

    def _tapped(self, x, y) -> None:
        if x is None or y is None:
            return
        self.wb.cell = plots.nearest_cell(self.wb.selection(), x, y)

    def _day_index(self, sel) -> int:
        ti = int(pd.DatetimeIndex(sel["time"].values).get_indexer([pd.Timestamp(self.wb.day)])[0])
        return max(ti, 0)

    def _observed_map(self):
        wb = self.wb
        sel = wb.selection()
        obs = sel[TARGET].values[self._day_index(sel)]
        title = f"Observed {pd.Timestamp(wb.day):%Y-%m-%d} ({int(np.isfinite(obs).sum())} cells)"
        return plots.grid_map(
            sel, obs, plots.SM_LABEL, title=title, clim=plots.SM_LIMITS, cmap="YlGnBu"
        )

    def _imputed_map(self):
        wb = self.wb
        sel = wb.selection()
        run = wb.run()
        shape = (sel.sizes["y"], sel.sizes["x"])
        values = (
            run.full.values[self._day_index(sel)] if run is not None else np.full(shape, np.nan)
        )
        title = f"Imputed: {wb.method_label()}" if run is not None else "Not imputed yet"
        return plots.grid_map(
            sel, values, plots.SM_LABEL, title=title, clim=plots.SM_LIMITS, cmap="YlGnBu"
        )

    def _width_map(self):
        wb = self.wb
        sel = wb.selection()
        width = wb.width_map(self._day_index(sel))
        if width is None:
            shape = (sel.sizes["y"], sel.sizes["x"])
            title = f"No intervals: {wb.method_label()}" if wb.run() else "Not imputed yet"
            return plots.grid_map(sel, np.full(shape, np.nan), "n/a", title=title)
        return plots.grid_map(
            sel, width, "90 % interval width (m³/m³)", title=f"90 % interval: {wb.method_label()}",
            clim=(0.0, None), cmap="Oranges",
        )  # fmt: skip

    def _third_map(self):
        wb = self.wb
        sel = wb.selection()
        ti = self._day_index(sel)
        run = wb.run()
        shape = (sel.sizes["y"], sel.sizes["x"])
        if TRUTH not in sel.data_vars:
            mesh = plots.grid_map(sel, np.full(shape, np.nan), "n/a", title="No truth (real data)")
        elif self.show == "truth" or run is None:
            mesh = plots.grid_map(
                sel, sel[TRUTH].values[ti], plots.SM_LABEL, title="Truth (synthetic)",
                clim=plots.SM_LIMITS, cmap="YlGnBu",
            )  # fmt: skip
        else:
            mesh = plots.grid_map(
                sel, run.full.values[ti] - sel[TRUTH].values[ti], "error (m³/m³)",
                title="Imputed − truth", cmap="RdBu_r", symmetric=True,
            )  # fmt: skip
        return mesh

    def _marker(self):
        return plots.cell_marker(self.wb.selection(), *self.wb.cell)

    def _update_caption(self, *_events) -> None:
        wb = self.wb
        r, c = wb.cell
        cell = f"Cell: row {int(r)}, col {int(c)} (click a map to pick another)."
        run = wb.run()
        if run is None:
            self.caption.object = f"No imputation for this selection yet (see *Model*). {cell}"
            self.intervals.object = ""
        else:
            self.caption.object = f"Imputed with **{wb.method_label()}**. {cell}"
            self.intervals.object = (
                f"Uncertainty: the width of the 90 % interval of {wb.method_label()} on the day "
                f"shown (0 where observed) and the {BAND_LABEL} around the cell's series."
                if run.quantiles is not None
                else f"No intervals: {wb.method_label()} gives one value per cell-day. Pick a "
                "model with intervals (a `-conformal` reference, or an ST-Transformer trained "
                "here) as *Model shown* for the uncertainty map and the band."
            )

    def _series(self):
        # Always the same four layers (band, three lines), so the plot is updated in place.
        wb = self.wb
        sel = wb.selection()
        r, c = wb.cell
        r = min(max(int(r), 0), sel.sizes["y"] - 1)
        c = min(max(int(c), 0), sel.sizes["x"] - 1)
        times = sel["time"].values
        nan = np.full(len(times), np.nan)
        run = wb.run()
        frame = pd.DataFrame(
            {
                "observed": sel[TARGET].values[:, r, c],
                "imputed": run.full.values[:, r, c] if run is not None else nan,
                "truth": sel[TRUTH].values[:, r, c] if TRUTH in sel.data_vars else nan,
            },
            index=times,
        )
        lat, lon = float(sel["lat"].values[r, c]), float(sel["lon"].values[r, c])
        title = f"Cell row {r}, col {c} ({lat:.4f}°N, {lon:.4f}°E); imputed: {wb.method_label()}"
        band = wb.cell_band(r, c)
        band = (
            None
            if band is None
            else pd.DataFrame({"lower": band[0], "upper": band[1]}, index=times)
        )
        return plots.series_plot(
            frame, title, points=("observed",), fixed=True, band=band, band_label=BAND_LABEL
        )

    def __panel__(self):
        wb = self.wb
        maps = []
        methods = (self._observed_map, self._imputed_map, self._width_map, self._third_map)
        for method, redraw_map, redraw_marker in zip(
            methods, self._map_redraw, self._marker_redraw, strict=True
        ):
            dmap = hv.DynamicMap(method, streams=[redraw_map])
            # A click on any map picks the cell. The stream's source is the mesh alone: a Tap
            # on a DynamicMap that returns an overlay never fires.
            hv.streams.Tap(source=dmap).add_subscriber(notify_errors(self._tapped))
            shown = dmap * hv.DynamicMap(self._marker, streams=[redraw_marker])
            maps.append(pn.pane.HoloViews(shown, sizing_mode="fixed", linked_axes=False))
        return pn.Column(
            pn.Row(
                pn.widgets.DatePicker.from_param(wb.param.day, name="Day"),
                self.player,
                pn.widgets.RadioButtonGroup.from_param(self.param.show, name="Third map"),
            ),
            self.caption,
            # The imputation beside its uncertainty, the observations beside the error (or truth).
            pn.Column(pn.Row(maps[1], maps[2]), pn.Row(maps[0], maps[3])),
            self.intervals,
            pn.pane.HoloViews(
                hv.DynamicMap(self._series, streams=[self._series_redraw]), linked_axes=False
            ),
        )
