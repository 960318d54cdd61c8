"""The workbench's views: one ``pn.viewable.Viewer`` per tab, all reading one :class:`Workbench`.

Plots do not share axes across panes (``linked_axes=False``): maps of a region and of one patch,
or series over different periods, would otherwise zoom each other.

Callbacks only call the state object (which calls ``stimpute_core``); an error in one is shown
as a notification and leaves the page as it was.
"""

from __future__ import annotations

import contextlib
import functools

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from holoviews.core.spaces import get_nested_dmaps

from stimpute_core.data import TARGET, TRUTH
from stimpute_core.data.summary import (
    daily_coverage,
    describe,
    format_description,
    observed_fraction,
)
from stimpute_core.metrics import UBRMSD_TARGET
from stimpute_core.validation import station_nests

from . import plots
from .state import Workbench


def notify_errors(fn):
    """Run a callback; show any error as a notification instead of breaking the page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if pn.state.notifications is not None:
                pn.state.notifications.error(str(err), duration=8000)
            return None

    return wrapper


def _table(frame: pd.DataFrame, **kwargs) -> pn.widgets.Tabulator:
    """A read-only table with four decimals for the float columns."""
    floats = frame.select_dtypes("float").columns
    return pn.widgets.Tabulator(
        frame,
        show_index=False,
        disabled=True,
        formatters={c: NumberFormatter(format="0.0000") for c in floats},
        **kwargs,
    )


@contextlib.contextmanager
def one_update():
    """Make every change to the page inside this block one document update.

    Bokeh walks the whole document after each plot or pane update unless its model graph is
    frozen; one walk per user action instead of one per plot is what keeps a day or cell
    change fast.
    """
    with pn.io.hold(freeze=True):
        yield


def redraw(*streams: hv.streams.Stream) -> None:
    """Redraw the plots fed by these streams as one document update (none: not in the page)."""
    shown = [s for s in streams if s.subscribers]
    if not shown:
        return
    with one_update():
        for stream in shown:
            stream.event()


def forget_frames(layout: pn.viewable.Viewable) -> None:
    """Drop the frames kept by the DynamicMaps of a view that is out of the page.

    A DynamicMap redrawn by streams keeps its first frame, and a plot made for it again starts
    from that frame: without this, a tab shown again would draw the state of its first showing.
    """
    for pane in layout.select(pn.pane.HoloViews):
        for dmap in get_nested_dmaps(pane.object):
            dmap.reset()


class _View(pn.viewable.Viewer):
    def __init__(self, wb: Workbench, **params):
        super().__init__(**params)
        self.wb = wb


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


class SparsityView(_View):
    """Observed fraction per cell, daily coverage over time and the overall missing rate."""

    @param.depends("wb.data_version", "wb.region", "wb.window")
    def _maps(self):
        sel = self.wb.selection()
        frac = observed_fraction(sel).values
        missing = 100 * (1 - np.isfinite(sel[TARGET].values).mean())
        cover = daily_coverage(sel)
        fraction = plots.grid_map(sel, frac, "observed fraction", title="Fraction of days observed")
        spikes = hv.Spikes((cover.index, 100 * cover.values), "time", "cells observed (%)").opts(
            title="Daily coverage: the overpass pattern",
            height=260,
            responsive=True,
            color="#1f77b4",
            tools=["hover"],
        )
        gaps = cover.index[cover.values > 0]
        revisit = (
            float(np.median(np.diff(gaps).astype("timedelta64[D]").astype(int)))
            if len(gaps) > 1
            else np.nan
        )
        text = pn.pane.Markdown(
            f"### {missing:.1f} % of cell-days missing\n\n"
            f"{int((cover > 0).sum())} of {len(cover)} days have an observation; "
            f"median gap between observed days: {revisit:.0f} days."
        )
        return pn.Column(
            pn.Row(pn.pane.HoloViews(fraction, sizing_mode="fixed", linked_axes=False), text),
            pn.pane.HoloViews(spikes, linked_axes=False),
        )

    def __panel__(self):
        return pn.panel(self._maps)


class ModelView(_View):
    """Choose, train (in the background), cancel, load and save models; see the scores."""

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        self.train_button = pn.widgets.Button(name="Train", button_type="primary")
        self.cancel_button = pn.widgets.Button(name="Cancel", button_type="danger", disabled=True)
        self.impute_button = pn.widgets.Button(name="Impute selection", button_type="success")
        self.load_button = pn.widgets.Button(name="Load checkpoint")
        self.save_button = pn.widgets.Button(name="Save model")
        self.progress = pn.indicators.Progress(value=0, max=100, bar_color="primary", width=320)
        self.status = pn.pane.Markdown("No job running.")
        self.curves = pn.pane.HoloViews(
            plots.training_curves([], []), sizing_mode="stretch_width", linked_axes=False
        )
        self.train_button.on_click(notify_errors(lambda _e: self.wb.train()))
        self.cancel_button.on_click(notify_errors(lambda _e: self.wb.cancel()))
        self.impute_button.on_click(notify_errors(lambda _e: self.wb.impute()))
        self.load_button.on_click(notify_errors(lambda _e: self.wb.load_checkpoint()))
        self.save_button.on_click(notify_errors(self._save))

    def _save(self, _event) -> None:
        path = self.wb.save_checkpoint()
        pn.state.notifications.success(f"saved as {path.name}")

    def update(self, snap: dict | None) -> None:
        """Refresh progress, status and curves from a job snapshot (on the session's loop)."""
        busy = snap is not None and snap["status"] == "running"
        self.cancel_button.disabled = not busy
        for button in (self.train_button, self.impute_button, self.load_button):
            button.disabled = busy
        if snap is None:
            return
        if snap["name"] == "training":  # the bar stays at the end once the model is done
            self.progress.value = round(100 * (snap["fraction"] or 0))
        eta = f" · ETA {snap['eta_s']:.0f} s" if busy and snap.get("eta_s") else ""
        self.status.object = (
            f"**{snap['name']}**: {snap['status']} · {snap['elapsed_s']:.0f} s{eta}  \n"
            f"{snap['message'] or ''}"
        )
        if snap["name"] == "training" and (busy or snap["history"]):
            self.curves.object = plots.training_curves(self.wb.losses, snap["history"])

    @param.depends("wb.model_version", "wb.results_version")
    def _model_info(self):
        wb = self.wb
        if wb.model is None:
            text = "No ST-Transformer loaded."
        else:
            cfg = wb.model.net_.cfg
            best = min(
                (h["val_mae"] for h in wb.history if h.get("val_mae") is not None), default=np.nan
            )
            text = (
                f"**ST-Transformer**: `{wb.model_label}` · profile {wb.model.profile} · "
                f"spatial {cfg.spatial} · covariates {'on' if cfg.n_covariates else 'off'} · "
                f"{len(wb.history)} epochs · best validation MAE {best:.4f} m³/m³"
            )
            if wb.model_note:
                text += f"\n\n⚠ {wb.model_note}."
        return pn.pane.Markdown(text)

    @param.depends("wb.results_version", "wb.region", "wb.window", "wb.data_version")
    def _scores(self):
        scores = self.wb.scores()
        if scores.empty:
            return pn.pane.Markdown(
                "Nothing imputed for this selection yet: press *Impute selection*."
            )
        cols = [
            c
            for c in ("model", "n", "mae", "mre", "rmse", "bias", "ubrmsd", "r", "mae_truth")
            if c in scores
        ]
        return pn.Column(
            pn.pane.Markdown(
                "**Scores on the held-out entries** (20 % of the observed days, hidden from every "
                "method; `mae_truth` scores the same entries against the synthetic truth)"
            ),
            _table(scores[cols]),
        )

    def controls(self) -> pn.Column:
        wb = self.wb
        return pn.Column(
            pn.widgets.Select.from_param(wb.param.method, name="Model shown"),
            pn.widgets.MultiChoice.from_param(wb.param.compare, name="Baselines compared"),
        )

    def __panel__(self):
        wb = self.wb
        settings = pn.Card(
            pn.widgets.RadioButtonGroup.from_param(wb.param.profile, name="Profile"),
            pn.widgets.Select.from_param(wb.param.spatial, name="Spatial attention"),
            pn.widgets.Checkbox.from_param(wb.param.covariates, name="Use covariates"),
            pn.widgets.FloatInput.from_param(wb.param.max_minutes, name="Time budget (minutes)"),
            pn.Row(self.train_button, self.cancel_button),
            self.progress,
            title="Train an ST-Transformer on the selection",
            collapsible=False,
        )
        checkpoints = pn.Card(
            pn.widgets.Select.from_param(wb.param.checkpoint, name="Checkpoint"),
            self.load_button,
            pn.widgets.TextInput.from_param(
                wb.param.save_name, name="Save as", placeholder="my-model"
            ),
            self.save_button,
            title="Checkpoints",
            collapsible=False,
        )
        return pn.Column(
            pn.Row(settings, checkpoints),
            self.impute_button,
            self.status,
            self._model_info,
            self.curves,
            self._scores,
        )


class FieldsView(_View):
    """Linked maps for one day (observations, imputation, truth or error) and a cell's series.

    The plots are redrawn by :meth:`_redraw`, in one batch per change and only those that the
    change touches: a new day redraws the three maps, a new cell the markers and the series.
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
        self._map_redraw = [hv.streams.Stream() for _ in range(3)]
        self._marker_redraw = [hv.streams.Stream() for _ in range(3)]
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
        if wb.run() is None:
            self.caption.object = f"No imputation for this selection yet (see *Model*). {cell}"
        else:
            self.caption.object = f"Imputed with **{wb.method_label()}**. {cell}"

    def _series(self):
        # Always the same three layers, so the plot is updated in place, not rebuilt.
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
        return plots.series_plot(frame, title, points=("observed",), fixed=True)

    def __panel__(self):
        wb = self.wb
        maps = []
        methods = (self._observed_map, self._imputed_map, self._third_map)
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
            pn.Row(*maps),
            pn.pane.HoloViews(
                hv.DynamicMap(self._series, streams=[self._series_redraw]), linked_axes=False
            ),
        )


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
        self._columns: tuple | None = None
        self.series = pn.pane.HoloViews(hv.Curve([]), linked_axes=False)
        wb.param.watch(
            self._station_changed,
            ["station", "results_version", "region", "window", "data_version"],
        )
        self._station_changed()

    def _station_changed(self, *_events) -> None:
        wb = self.wb
        station = wb.station if wb.station in wb.param.station.objects else None
        self._frame = wb.station_series(station) if station is not None else pd.DataFrame()
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
        )

    @param.depends("wb.results_version", "wb.region", "wb.window", "wb.data_version")
    def _tables(self):
        table = self.wb.station_table()
        if table.empty:
            return pn.pane.Markdown("No station, or nothing imputed yet, in this selection.")
        cols = ["model", "station", "nest", "n", "bias", "rmse", "ubrmsd", "r", "meets_target"]
        overall = table[table["station"] == "all"][cols]
        per_station = table[table["station"] != "all"][cols]
        return pn.Column(
            pn.pane.Markdown(
                f"**Overall** (pooled daily pairs; target ubRMSD ≤ {UBRMSD_TARGET} m³/m³). "
                "`satellite` scores the raw observations on the days they exist."
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
                ),
            ),
            self.series,
            self._tables,
        )


class LandCoverView(_View):
    """Per-cell MAE on held-out entries by IGBP class, for the chosen model and the baselines."""

    @param.depends("wb.results_version", "wb.region", "wb.window", "wb.against", "wb.data_version")
    def _content(self):
        cells, table = self.wb.land_cover()
        if table.empty:
            return pn.pane.Markdown("Nothing imputed for this selection yet.")
        cols = ["model", "name", "n_cells", "n", "mae", "rmse", "bias", "cell_mae_median"]
        return pn.Column(
            pn.pane.HoloViews(plots.error_boxes(cells), linked_axes=False),
            _table(table[[c for c in cols if c in table]]),
        )

    def __panel__(self):
        return pn.Column(
            pn.widgets.RadioButtonGroup.from_param(self.wb.param.against, name="Score against"),
            self._content,
        )


class AttentionView(_View):
    """Spatial attention over the cell's window and temporal attention over its 72 days."""

    layer = param.Integer(default=0, bounds=(0, 0))
    head = param.Integer(default=0, bounds=(0, 0))
    block = param.Integer(default=0, bounds=(0, 1), doc="Spatial block (shift 0 or 2)")
    visible = param.Boolean(default=False, doc="Set by the page: only a shown tab computes")

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        # Redrawn by hand, and only while shown: a hidden tab that rebuilt its plots on every
        # change of day or cell would make those changes slow for the whole page.
        self.content = pn.Column()
        self._stale = True
        wb.param.watch(self._changed, ["cell", "day", "model_version", "region", "window"])
        self.param.watch(self._changed, ["layer", "head", "block", "visible"])

    def _changed(self, *_events) -> None:
        self._stale = True
        if self.visible:
            self._stale = False
            self.content.objects = [notify_errors(self._content)() or pn.pane.Markdown("")]

    def _content(self):
        wb = self.wb
        if wb.model is None:
            return pn.pane.Markdown("Attention needs an ST-Transformer: load or train one.")
        try:
            att = wb.attention()
        except ValueError as err:
            return pn.pane.Markdown(f"Cannot draw attention: {err}")
        layers = att["layers"]
        self.param.layer.bounds = (0, len(layers) - 1)
        layer = layers[min(self.layer, len(layers) - 1)]
        sel = wb.selection()
        q = att["query"]
        title_cell = f"cell ({q['row']}, {q['col']}) on {q['day']:%Y-%m-%d}"
        panes = []
        if layer["spatial"]:
            self.param.block.bounds = (0, len(layer["spatial"]) - 1)
            weights = layer["spatial"][min(self.block, len(layer["spatial"]) - 1)]
            self.param.head.bounds = (0, weights.shape[0] - 1)
            heat = plots.attention_map(
                sel, weights[min(self.head, weights.shape[0] - 1)], att["patch_origin"],
                f"Spatial attention of {title_cell}",
            )  # fmt: skip
            heat = heat * plots.cell_marker(sel, q["row"], q["col"])
            panes.append(pn.pane.HoloViews(heat, sizing_mode="fixed", linked_axes=False))
        else:
            panes.append(pn.pane.Markdown("This model has no spatial attention."))
        if layer["temporal"] is not None:
            weights = layer["temporal"]
            curve = plots.attention_curve(
                att["days"], weights[min(self.head, weights.shape[0] - 1)], q["day"],
                f"Temporal attention of {title_cell} over its window",
            )  # fmt: skip
            panes.append(pn.pane.HoloViews(curve, linked_axes=False))
        else:
            panes.append(pn.pane.Markdown("This model has no temporal attention."))
        return pn.Column(*panes)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "Pick the cell on the *Imputed fields* maps and the day in the sidebar. The heat map "
                "shows where the cell looks on that day, the curve which days of its window it "
                "uses; each sums to one over its keys."
            ),
            pn.Row(
                pn.widgets.IntInput.from_param(self.param.layer, name="Layer", width=110),
                pn.widgets.IntInput.from_param(self.param.head, name="Head", width=110),
                pn.widgets.IntInput.from_param(self.param.block, name="Spatial block", width=130),
            ),
            self.content,
        )


class ExportView(_View):
    """Download the imputed cube and the metric tables."""

    def __init__(self, wb: Workbench, **params):
        super().__init__(wb, **params)
        self.netcdf = pn.widgets.FileDownload(
            callback=notify_errors(wb.export_netcdf),
            filename="stimpute_imputed.nc",
            label="Imputed cube (NetCDF)",
            button_type="primary",
        )
        self.csv = pn.widgets.FileDownload(
            callback=notify_errors(wb.export_csv),
            filename="stimpute_metrics.csv",
            label="Metric tables (CSV)",
            button_type="primary",
        )
        wb.param.watch(self._enable, ["results_version", "region", "window", "data_version"])
        self._enable()

    def _enable(self, *_events) -> None:
        ready = bool(self.wb.runs())
        self.netcdf.disabled = self.csv.disabled = not ready

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "The NetCDF holds the selection (contract variables) and one "
                "`soil_moisture_imputed_<method>` variable per imputed method. The CSV holds the "
                "held-out scores, the station metrics and the land-cover table, one `table` "
                "column telling them apart."
            ),
            pn.Row(self.netcdf, self.csv),
        )


__all__ = [
    "AttentionView",
    "DataView",
    "ExportView",
    "FieldsView",
    "LandCoverView",
    "ModelView",
    "SparsityView",
    "ValidationView",
    "forget_frames",
    "notify_errors",
]
