"""The workbench page: the layout of one browser session, and the server's warm-up.

The page only lays out views (``views/``); the session state is in ``state.py`` (on top of
``session.py``), what sessions share in ``shared.py`` and all the science in ``stimpute_core``.
"""

from __future__ import annotations

import holoviews as hv
import panel as pn
from bokeh.document import Document
from panel.io.state import set_curdoc

from .shared import data_is_ready, default_data_job
from .state import Workbench
from .views import (
    AttentionView,
    DataView,
    ExportView,
    FieldsView,
    LandCoverView,
    ModelView,
    SparsityView,
    ValidationView,
    forget_frames,
    holdout_text,
    notify_errors,
)


def extensions() -> None:
    """Panel and HoloViews set-up for a page (run for every session: Panel's config is per
    session when set inside one)."""
    pn.extension("tabulator", sizing_mode="stretch_width", notifications=True)
    hv.extension("bokeh")


POLL_MS = 400
ABOUT = f"""
**stimpute** fills the gaps of sparse SMAP/Sentinel-1 1 km soil moisture with the Spatiotemporal
Transformer of Yao, Huang and Zhu (2023), and shows how far to trust the result. Scores use a
fixed hold-out: {holdout_text()}, hidden from every method.
"""


def create_app() -> pn.template.BootstrapTemplate:
    """The page for one browser session: the workbench, once the default data are ready.

    On a fresh server the built-in scenario is generated (and cached) in the background first,
    with a progress indicator in the page.
    """
    sidebar, main = pn.Column(), pn.Column(sizing_mode="stretch_width")
    template = pn.template.BootstrapTemplate(
        title="stimpute · sparse soil-moisture workbench",
        sidebar=[sidebar],
        main=[main],
        # Bootstrap rather than Fast: the Fast design always loads a web font, which fails offline.
        header_background="#2b6a99",
        sidebar_width=330,
    )
    job = default_data_job(wait=data_is_ready())
    if job.status == "done":
        _fill(template, sidebar, main, *job.result)
        return template
    waiting = pn.pane.Markdown(
        "Preparing the data (the built-in scenario is created on first use)."
    )
    main[:] = [waiting, pn.indicators.Progress(active=True, width=320)]

    def check() -> None:
        snap = job.snapshot()
        if snap["status"] == "running":
            waiting.object = f"Preparing the data: {snap['message'] or 'starting'} …"
        elif snap["status"] == "done":
            ready.stop()
            _fill(template, sidebar, main, *job.result, shown=True)
        else:
            ready.stop()
            waiting.object = f"The data could not be prepared: {snap['error']}"

    ready = pn.state.add_periodic_callback(check, period=POLL_MS) if _in_session() else None
    if ready is None:  # no server session (scripts, tests): wait here
        job.join()
        _fill(template, sidebar, main, *job.result)
    return template


def _in_session() -> bool:
    return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None


def _fill(
    template, sidebar: pn.Column, main: pn.Column, label: str, ds, *, shown: bool = False
) -> None:
    """Build the workbench for one session on ``ds`` and put it into the page."""
    wb = Workbench(ds, label=label)
    data = DataView(wb)
    model = ModelView(wb)
    views = {
        "Data & region": data,
        "Sparsity": SparsityView(wb),
        "Model": model,
        "Imputed fields": FieldsView(wb),
        "Validation (TxSON)": ValidationView(wb),
        "Land cover": LandCoverView(wb),
        "Attention": AttentionView(wb),
        "Export": ExportView(wb),
    }
    # Only the shown tab is in the page: each view is built the first time its tab is shown,
    # kept, and taken out of the page while another tab is shown. Bokeh walks every model of
    # the page after each plot update, so a page holding every view (about a thousand models)
    # made a day or cell change several times slower. (Panel's own dynamic tabs are not used:
    # they keep the models of hidden tabs detached, and updating those makes Panel point their
    # stylesheets at its CDN, which fails offline.)
    names = list(views)
    built: dict[int, pn.viewable.Viewable] = {0: pn.panel(views[names[0]])}
    slots = [pn.Column(sizing_mode="stretch_width") for _ in names]
    slots[0].objects = [built[0]]
    tabs = pn.Tabs(*zip(names, slots, strict=True), sizing_mode="stretch_width")
    attention = views["Attention"]

    def _tab_changed(event) -> None:
        if event.new not in built:
            built[event.new] = pn.panel(views[names[event.new]])
        else:
            forget_frames(built[event.new])  # draw what the state is now
        with pn.io.hold(freeze=True):
            if event.old is not None and 0 <= event.old < len(slots):
                slots[event.old].objects = []
            slots[event.new].objects = [built[event.new]]
        attention.visible = names[event.new] == "Attention"

    tabs.param.watch(_tab_changed, "active")

    load = pn.widgets.Button(name="Load data", button_type="primary")
    load.on_click(notify_errors(lambda _e: wb.load_source(wb.source)))
    refresh = pn.widgets.Button(name="↻", width=40)
    refresh.on_click(notify_errors(lambda _e: wb.refresh_sources()))
    window = pn.widgets.DateRangeSlider(
        name="Time window",
        start=wb.param.window.bounds[0],
        end=wb.param.window.bounds[1],
        value=wb.window,
        format="%Y-%m-%d",
    )

    @notify_errors
    def _window(event) -> None:
        try:
            wb.set_window(*event.new)
        except Exception:
            window.value = wb.window
            raise

    window.param.watch(_window, "value_throttled")

    def _data_changed(_event) -> None:
        window.param.update(
            start=wb.param.window.bounds[0], end=wb.param.window.bounds[1], value=wb.window
        )

    wb.param.watch(_data_changed, "data_version")
    job_line = pn.pane.Markdown("", sizing_mode="stretch_width")

    def poll() -> None:
        snap = wb.poll()
        model.update(snap)
        while wb.notifications:
            level, text = wb.notifications.pop(0)
            if pn.state.notifications is not None:
                getattr(pn.state.notifications, level)(text, duration=6000)
        if snap is None:
            job_line.object = ""
        else:
            pct = 100 * (snap["fraction"] or 0)
            job_line.object = (
                f"{snap['name']}: {snap['status']} ({pct:.0f} %) {snap['message'] or ''}"
            )

    controls = [
        pn.pane.Markdown("#### Data", margin=(0, 10)),
        pn.Row(pn.widgets.Select.from_param(wb.param.source, name=""), refresh),
        load,
        pn.pane.Markdown("#### Region (lon/lat, snapped to cells)", margin=(0, 10)),
        data.controls(),
        pn.pane.Markdown("#### Time", margin=(0, 10)),
        window,
        pn.widgets.DatePicker.from_param(wb.param.day, name="Day"),
        pn.pane.Markdown("#### Model", margin=(0, 10)),
        model.controls(),
        job_line,
        pn.pane.Markdown(ABOUT),
    ]
    sidebar[:] = controls
    main[:] = [tabs]
    template.workbench = wb  # for tests and debugging
    # The shipped checkpoint is loaded at once so the imputation views work immediately (after
    # the page is shown, when there is a page).
    if _in_session():
        pn.state.add_periodic_callback(poll, period=POLL_MS)
        pn.state.on_session_destroyed(lambda _ctx: wb.close())
    if _in_session() and not shown:
        pn.state.onload(notify_errors(wb.load_checkpoint))
    else:
        notify_errors(wb.load_checkpoint)()


def warm_up() -> None:
    """Make a fresh server's first page as quick as the next ones (called as the server starts).

    Builds one page off-screen on the default data: the imports, the data opened once for all
    sessions, the default selection imputed by the shipped checkpoint and the compared baselines
    (results every session shares) and the first rendering of every kind of plot. When the built-in scenario is not cached yet, it is
    only started in the background instead, and the first page shows its progress.
    """
    if not data_is_ready():
        default_data_job()
        return
    extensions()
    template = create_app()  # no session: waits for the data and loads the checkpoint
    wb = template.workbench
    wb.wait()  # the default imputation, shared with every session
    doc = Document()
    with set_curdoc(doc):
        template.server_doc(doc)
        tabs = next(t for part in template.main for t in part.select(pn.Tabs))
        for i in (*range(1, len(tabs)), 0):  # build (and render) every view once
            tabs.active = i
    wb.close()
    doc.clear()
