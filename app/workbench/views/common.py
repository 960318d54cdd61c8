"""What the views share: error notifications, tables, batched redraws and their base class.

Plots do not share axes across panes (``linked_axes=False``): maps of a region and of one patch,
or series over different periods, would otherwise zoom each other.

Callbacks only call the state object (which calls ``stimpute_core``); an error in one is shown
as a notification and leaves the page as it was.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter
from holoviews.core.spaces import get_nested_dmaps

from stimpute_core.validation import EVALUATION_HOLDOUT

from ..state import Workbench

#: How each hold-out kind hides entries, in words (see ``stimpute_core.masks``).
_HOLDOUT_UNITS = {
    "time_slice": "observed days",
    "point": "observed entries",
    "block": "observed entries, in runs of days per cell",
    "spatial": "observed entries, in patches of cells",
}


def holdout_text(holdout: dict | None = None) -> str:
    """The evaluation hold-out in words, e.g. "20 % of the observed days"."""
    holdout = EVALUATION_HOLDOUT if holdout is None else holdout
    unit = _HOLDOUT_UNITS.get(holdout["kind"], f"observed entries ({holdout['kind']})")
    return f"{round(100 * holdout['fraction'], 6):g} % of the {unit}"


def notify_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
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
def one_update() -> Iterator[None]:
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
    """A tab's view: it reads and drives one session's :class:`Workbench`."""

    def __init__(self, wb: Workbench, **params):
        super().__init__(**params)
        self.wb = wb
