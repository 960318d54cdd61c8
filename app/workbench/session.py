"""The data, selection, messages and background job of one browser session.

:class:`Session` is the base of :class:`~workbench.state.Workbench`: it holds what any session
has before a model comes in (the Dataset, the region, time window, day, cell and station chosen
in it, the notifications for the page and the one job at a time). Plain ``param`` state; the
selection itself is made by ``stimpute_core``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import param
import xarray as xr

from stimpute_core.data import TARGET, select_region, select_time
from stimpute_core.data.selection import data_extent, station_cells
from stimpute_core.data.sources import list_sources

from .jobs import Job
from .shared import BUILTIN, _default_if_loaded, data_dir, default_dataset


def _date(value) -> dt.date:
    return pd.Timestamp(value).date()


class Session(param.Parameterized):
    """Data, selection, notifications and the current job of one session."""

    source = param.Selector(default=BUILTIN, objects=[BUILTIN], doc="Data shown")
    region = param.NumericTuple(default=(0.0, 0.0, 0.0, 0.0), length=4, doc="W, S, E, N")
    window = param.DateRange(doc="Time window every view follows")
    day = param.CalendarDate(doc="Day shown in the maps")
    cell = param.NumericTuple(default=(0, 0), length=2, doc="Row and column in the selection")
    station = param.Selector(default=None, objects=[], allow_None=True)

    message = param.String(default="")
    data_version = param.Integer(default=0)
    job_version = param.Integer(default=0)

    def __init__(self, ds: xr.Dataset | None = None, label: str = BUILTIN, **params):
        super().__init__(**params)
        #: Names what this session saves in the shared models folder (see ``state.train``).
        self.session_id = secrets.token_hex(4)
        self.notifications: list[tuple[str, str]] = []
        self.job: Job | None = None
        #: Work queued while a job runs (method names), started by :meth:`poll`.
        self._pending: list[str] = []
        self._selection: tuple[tuple, xr.Dataset] | None = None
        self.param.source.objects = [label] + [s.label for s in list_sources(data_dir())]
        self.ds: xr.Dataset = ds if ds is not None else default_dataset()[1]
        # Names the data for results shared between sessions: only the server's default data
        # (the same object in every session) is shared; anything else gets a token of its own.
        self.data_token = (
            label if ds is None or ds is _default_if_loaded(label) else uuid.uuid4().hex
        )
        self.source = label
        self._reset_selection()

    # -- data and selection ----------------------------------------------------------------

    def _reset_selection(self) -> None:
        ds = self.ds
        times = pd.DatetimeIndex(ds["time"].values)
        self.param.window.bounds = (times[0].to_pydatetime(), times[-1].to_pydatetime())
        # Default window: the last calendar year of the data (or all of it when shorter), which
        # keeps the first imputation a matter of seconds on a CPU.
        last = times[-1]
        start = max(times[0], pd.Timestamp(year=last.year, month=1, day=1))
        if (last - start).days < 180:
            start = max(times[0], last - pd.Timedelta(days=364))
        with param.parameterized.batch_call_watchers(self):
            self.region = data_extent(ds)
            self.window = (start.to_pydatetime(), last.to_pydatetime())
            self.data_version += 1
        self._after_selection()

    def _after_selection(self) -> None:
        sel = self.selection()
        times = pd.DatetimeIndex(sel["time"].values)
        self.param.day.bounds = (times[0].date(), times[-1].date())
        obs = np.isfinite(sel[TARGET].values)
        days = times[obs.any(axis=(1, 2))]
        stations = [str(s) for s in sel["station"].values] if "station" in sel.dims else []
        self.param.station.objects = stations
        rows, cols = station_cells(sel)
        cell = (int(rows[0]), int(cols[0])) if len(rows) and rows[0] >= 0 else None
        cell = cell or (sel.sizes["y"] // 2, sel.sizes["x"] // 2)
        with param.parameterized.batch_call_watchers(self):
            self.day = (days[0] if len(days) else times[0]).date()
            self.station = stations[0] if stations else None
            self.cell = cell

    def selection_key(self) -> tuple:
        start, end = self.window
        return (
            self.data_version,
            tuple(round(v, 6) for v in self.region),
            _date(start),
            _date(end),
        )

    def selection(self) -> xr.Dataset:
        """The data inside the region and time window (cached until either changes)."""
        key = self.selection_key()
        if self._selection is None or self._selection[0] != key:
            start, end = self.window
            sub = select_region(self.ds, list(self.region))
            sub = select_time(sub, f"{_date(start)}", f"{_date(end)}")
            self._selection = (key, sub)
        return self._selection[1]

    def set_region(self, west: float, south: float, east: float, north: float) -> None:
        """Select the cells whose centres lie in the box, snapped to them; refuse an empty one."""
        sub = select_region(self.ds, [west, south, east, north])
        start, end = self.window
        sub_t = select_time(sub, f"{_date(start)}", f"{_date(end)}")
        if not np.isfinite(sub_t[TARGET].values).any():
            raise ValueError(
                f"region W={west:.4f}, S={south:.4f}, E={east:.4f}, N={north:.4f} has no "
                f"observation between {_date(start)} and {_date(end)}"
            )
        self.region = data_extent(sub)
        self._after_selection()

    def reset_region(self) -> None:
        self.set_region(*data_extent(self.ds))

    def set_window(self, start, end) -> None:
        """Change the time window; refuse one without observations in the region."""
        sub = select_time(
            select_region(self.ds, list(self.region)), f"{_date(start)}", f"{_date(end)}"
        )
        if not np.isfinite(sub[TARGET].values).any():
            raise ValueError(
                f"no observation in the region between {_date(start)} and {_date(end)}"
            )
        self.window = (pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime())
        self._after_selection()

    def refresh_sources(self) -> None:
        current = self.source
        self.param.source.objects = [self.param.source.objects[0]] + [
            s.label for s in list_sources(data_dir())
        ]
        if current in self.param.source.objects:
            self.source = current

    # -- jobs ------------------------------------------------------------------------------

    def poll(self) -> dict | None:
        """Called by the page: take a finished job's result; start queued work. Returns the
        current job's snapshot (None when there is none)."""
        job = self.job
        if job is None:
            return None
        snap = job.snapshot()
        if job.finished and not job.handled:
            job.handled = True
            keep = snap["status"] == "done" or (
                snap["status"] == "cancelled" and job.keep_on_cancel
            )
            if snap["status"] == "failed":
                self.notify("error", f"{job.name} failed: {snap['error']}")
            elif snap["status"] == "cancelled" and (not keep or job.result is None):
                self.notify("info", f"{job.name} cancelled; nothing changed")
            elif job.on_done is not None:
                try:
                    job.on_done(job.result)
                except Exception as err:
                    self.notify("error", f"{job.name}: {err}")
            self.job_version += 1
            if self._pending and not self.busy():
                getattr(self, self._pending.pop(0))()  # the queued work, e.g. "impute"
        return snap

    def wait(self, timeout: float = 600) -> None:
        """Run jobs to the end, queued ones included (tests and scripts)."""
        while self.job is not None:
            self.job.join(timeout)
            self.poll()
            # A job started by the poll may already be over: its result is taken next round.
            if not self.busy() and not self._pending and self.job.handled:
                break

    def notify(self, level: str, text: str) -> None:
        """Queue a message for the page (``info``, ``success``, ``warning`` or ``error``)."""
        self.notifications.append((level, text))
        self.message = text

    def _start(
        self,
        name: str,
        work: Callable[[Job], Any],
        on_done: Callable[[Any], None] | None = None,
        keep_on_cancel: bool = False,
    ) -> Job:
        if self.job is not None and not self.job.finished:
            raise RuntimeError(f"a {self.job.name} job is running: wait for it or cancel it")
        job = Job(name, work, on_done=on_done, keep_on_cancel=keep_on_cancel)
        self.job = job.start()
        self.job_version += 1
        return job

    def busy(self) -> bool:
        return self.job is not None and not self.job.finished

    def cancel(self) -> None:
        if self.busy():
            assert self.job is not None
            self.job.cancel()

    def close(self) -> None:
        """The session ended: stop its work (a finished model is already saved)."""
        self._pending.clear()
        self.cancel()
