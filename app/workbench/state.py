"""The state of one workbench session: data, selection, model, imputations and the current job.

Everything here is plain ``param`` state and calls into ``stimpute_core``; no widget or plot is
made here, so the whole workflow can be driven (and tested) without a browser. Long work runs as
a :class:`~workbench.jobs.Job`; the page polls :meth:`Workbench.poll` to pick up its result.

Directories are set by whoever starts the server, never by the browser:

- ``STIMPUTE_DATA_DIR``: the folder whose entries (contract NetCDF, recipes, granule folders,
  in-situ archives) the page offers; default ``<cache>/data``;
- ``STIMPUTE_MODELS_DIR``: where checkpoints are saved and loaded; default ``<cache>/models``;
- ``STIMPUTE_DATA``: a contract NetCDF opened instead of the built-in scenario.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import tempfile
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import param
import xarray as xr

from stimpute_core.data import TARGET, TRUTH, open_dataset, select_region, select_time, write_netcdf
from stimpute_core.data.scenario import (
    ScenarioConfig,
    default_cache_dir,
    load_scenario,
    scenario_path,
)
from stimpute_core.data.selection import data_extent, station_cells
from stimpute_core.data.sources import list_sources, load_source
from stimpute_core.masks import apply_holdout
from stimpute_core.models import ALL_BASELINES, PROFILE_NAMES, make_imputer
from stimpute_core.models.st_transformer.model import (
    DEFAULT_PRETRAINED,
    STTransformerImputer,
    pretrained_path,
)
from stimpute_core.validation import (
    EVALUATION_HOLDOUT,
    cell_errors,
    evaluation_mask,
    held_out_scores,
    land_cover_table,
    mask_for,
    station_comparison,
    station_series,
)

from .jobs import Job

BUILTIN = "built-in TxSON scenario"
ST = "st-transformer"
SHIPPED = "shipped: "
#: Every baseline is offered, the covariate-aware ones too: the honest references for a model
#: that uses the covariates (see the README's benchmark).
METHODS = (ST, *ALL_BASELINES)
#: Checkpoint names typed in the page: a plain folder name, nothing that could walk elsewhere.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_DATA_LOCK = threading.Lock()
_SHARED: OrderedDict[tuple, Any] = OrderedDict()
_SHARED_MAX = 24


def data_dir() -> Path:
    """The folder whose entries the page offers (``STIMPUTE_DATA_DIR``)."""
    return Path(os.environ.get("STIMPUTE_DATA_DIR") or default_cache_dir() / "data")


def models_dir() -> Path:
    """Where checkpoints are saved and loaded (``STIMPUTE_MODELS_DIR``)."""
    return Path(os.environ.get("STIMPUTE_MODELS_DIR") or default_cache_dir() / "models")


def _shared(key: tuple, make):
    """A value shared by every session of this server (read-only data and imputations)."""
    with _DATA_LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
    value = make()
    with _DATA_LOCK:
        _SHARED[key] = value
        while len(_SHARED) > _SHARED_MAX:
            _SHARED.popitem(last=False)
    return value


def default_dataset(progress=None) -> tuple[str, xr.Dataset]:
    """The server's default data: ``STIMPUTE_DATA`` or the built-in scenario (made on first use)."""
    path = os.environ.get("STIMPUTE_DATA")
    if path:
        return Path(path).name, _shared(("data", path), lambda: open_dataset(path))
    return BUILTIN, _shared(("data", BUILTIN), lambda: load_scenario(progress=progress))


_DEFAULT_JOB: Job | None = None


def data_is_ready() -> bool:
    """Whether the default data can be opened at once (named file, or scenario cached/loaded)."""
    if os.environ.get("STIMPUTE_DATA"):
        return True
    return _default_if_loaded(BUILTIN) is not None or scenario_path(ScenarioConfig()).is_file()


def default_data_job(*, wait: bool = False) -> Job:
    """The server's one job that makes the default data ready; every session polls it.

    The first session of a fresh server starts it (the built-in scenario is generated and cached
    then, in seconds); later sessions find it done. A failed job is started again. ``wait``
    joins it (for data that open in a second or two, where a progress page is not worth it).
    """
    global _DEFAULT_JOB
    with _DATA_LOCK:
        job = _DEFAULT_JOB
        if job is None or job.status == "failed":
            job = _DEFAULT_JOB = Job(
                "data", lambda j: default_dataset(progress=lambda m: j.report(None, m))
            )
            job.start()
    if wait:
        job.join()
    return job


def _default_if_loaded(label: str) -> xr.Dataset | None:
    """The server's default Dataset when it is already loaded under ``label``, else None."""
    path = os.environ.get("STIMPUTE_DATA")
    key = ("data", path) if path else ("data", BUILTIN)
    name = Path(path).name if path else BUILTIN
    with _DATA_LOCK:
        return _SHARED.get(key) if label == name else None


def list_checkpoints() -> list[str]:
    """Checkpoints offered for loading: the shipped one(s), then those in the models folder."""
    shipped = [f"{SHIPPED}{DEFAULT_PRETRAINED}"]
    root = models_dir()
    saved = []
    if root.is_dir():
        saved = sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
        )
    return shipped + saved


def checkpoint_path(label: str) -> Path:
    """The folder of a checkpoint offered by :func:`list_checkpoints` (nothing else)."""
    if label not in list_checkpoints():
        raise ValueError(f"checkpoint {label!r} is not one of those offered")
    if label.startswith(SHIPPED):
        return pretrained_path(label[len(SHIPPED) :])
    if not NAME_PATTERN.match(label):
        raise ValueError(f"checkpoint {label!r} is not a plain folder name")
    return models_dir() / label


def _date(value) -> dt.date:
    return pd.Timestamp(value).date()


class Run:
    """The imputations of one method on one selection: with every observation and with the
    evaluation hold-out hidden (for scores on entries the method never saw)."""

    def __init__(self, method: str, label: str, full: xr.DataArray, heldout: xr.DataArray):
        self.method, self.label, self.full, self.heldout = method, label, full, heldout


class Workbench(param.Parameterized):
    """Data, selection, model and results of one session. Views read it; buttons call it."""

    source = param.Selector(default=BUILTIN, objects=[BUILTIN], doc="Data shown")
    region = param.NumericTuple(default=(0.0, 0.0, 0.0, 0.0), length=4, doc="W, S, E, N")
    window = param.DateRange(doc="Time window every view follows")
    day = param.CalendarDate(doc="Day shown in the maps")
    cell = param.NumericTuple(default=(0, 0), length=2, doc="Row and column in the selection")
    station = param.Selector(default=None, objects=[], allow_None=True)

    method = param.Selector(default=ST, objects=list(METHODS), doc="Model shown and validated")
    compare = param.ListSelector(
        default=["mean", "idw", "coarse", "boosting", "boosting-smooth"],
        objects=list(ALL_BASELINES),
    )
    profile = param.Selector(default="quick", objects=list(PROFILE_NAMES))
    spatial = param.Selector(default="swin", objects=["swin", "full", "none"])
    covariates = param.Boolean(default=True, doc="Use the weather, soil and 36 km covariates")
    max_minutes = param.Number(default=3.0, bounds=(0.1, 240), doc="Training time budget")
    checkpoint = param.Selector(default=None, objects=[], allow_None=True)
    save_name = param.String(default="", doc="Folder name for Save")
    against = param.Selector(default="observations", objects=["observations", "truth"])

    message = param.String(default="")
    data_version = param.Integer(default=0)
    results_version = param.Integer(default=0)
    model_version = param.Integer(default=0)
    job_version = param.Integer(default=0)

    def __init__(self, ds: xr.Dataset | None = None, label: str = BUILTIN, **params):
        super().__init__(**params)
        self.notifications: list[tuple[str, str]] = []
        self.job: Job | None = None
        self._pending: list[str] = []
        self.model: STTransformerImputer | None = None
        self.model_label = ""
        self.model_note = ""
        self.history: list[dict] = []
        self.losses: list[tuple[int, float]] = []
        self._runs: dict[tuple, dict[str, Run]] = {}
        self._selection: tuple[tuple, xr.Dataset] | None = None
        self._mask: tuple[int, xr.DataArray] | None = None
        self.param.checkpoint.objects = list_checkpoints()
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

    def load_source(self, label: str) -> Job:
        """Load an entry of the data folder in the background; the data change when it is done."""
        if label == self.param.source.objects[0]:
            name = None
        else:
            name = label.rsplit(" (", 1)[0]
        current = self.ds

        def work(job: Job):
            if name is None:
                return default_dataset(progress=lambda m: job.report(None, m))[1], None
            return load_source(current, data_dir(), name, progress=lambda m: job.report(None, m))

        return self._start("load", work, on_done=lambda result: self._set_data(label, *result))

    def _set_data(self, label: str, ds: xr.Dataset, report) -> None:
        if label not in self.param.source.objects:
            self.param.source.objects = [*self.param.source.objects, label]
        self.ds = ds
        self.data_token = label if ds is _default_if_loaded(label) else uuid.uuid4().hex
        self.source = label
        self._mask = None
        self._reset_selection()
        if report is not None and report.skipped:
            self.notify("warning", report.summary())
        self.notify("success", f"loaded {label}")
        self._queue_impute()

    def evaluation_mask(self) -> xr.DataArray:
        """The hold-out used for scores, drawn once on the whole data (see stimpute_core)."""
        if self._mask is None or self._mask[0] != self.data_version:
            self._mask = (self.data_version, evaluation_mask(self.ds, **EVALUATION_HOLDOUT))
        return self._mask[1]

    def hidden_selection(self) -> tuple[xr.Dataset, np.ndarray]:
        sel = self.selection()
        mask = mask_for(sel, self.evaluation_mask())
        return apply_holdout(sel, mask), mask

    # -- jobs ------------------------------------------------------------------------------

    def notify(self, level: str, text: str) -> None:
        """Queue a message for the page (``info``, ``success``, ``warning`` or ``error``)."""
        self.notifications.append((level, text))
        self.message = text

    def _start(self, name: str, work, on_done=None, keep_on_cancel: bool = False) -> Job:
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
                self._pending.pop(0)
                self.impute()
        return snap

    def wait(self, timeout: float = 600) -> None:
        """Run jobs to the end, queued ones included (tests and scripts)."""
        while self.job is not None:
            self.job.join(timeout)
            self.poll()
            # A job started by the poll may already be over: its result is taken next round.
            if not self.busy() and not self._pending and self.job.handled:
                break

    # -- models ----------------------------------------------------------------------------

    def method_label(self, method: str | None = None) -> str:
        """The name shown for a method: for the ST-Transformer, with the model that made the run
        on this selection (or the current model when there is no run yet)."""
        method = method or self.method
        if method != ST:
            return method
        run = self.runs().get(ST)
        label = run.label if run is not None else self.model_label
        return f"{ST} ({label})" if label else ST

    def load_checkpoint(self, label: str | None = None) -> None:
        """Load an offered checkpoint; it is checked against the data when it imputes."""
        label = label or self.checkpoint or f"{SHIPPED}{DEFAULT_PRETRAINED}"
        model = STTransformerImputer.load(checkpoint_path(label))
        model.check(self.selection())  # refuse other covariates, units or spacing
        self._set_model(model, label)
        self.checkpoint = label
        self._queue_impute()

    def _set_model(self, model: STTransformerImputer, label: str) -> None:
        self.model = model
        self.model_label = label
        self.history = list(model.history_)
        holdout = (model.training_ or {}).get("holdout")
        self.model_note = (
            ""
            if holdout == EVALUATION_HOLDOUT
            else "this model was trained without the evaluation hold-out hidden, so its scores "
            "on held-out entries are optimistic"
        )
        self.model_version += 1

    def save_checkpoint(self, name: str | None = None) -> Path:
        """Save the current model under ``name`` in the models folder (atomic)."""
        name = (name or self.save_name).strip()
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"checkpoint name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit"
            )
        if self.model is None:
            raise ValueError("no ST-Transformer to save: train or load one first")
        path = self.model.save(models_dir() / name)
        self.param.checkpoint.objects = list_checkpoints()
        self.model_label = name
        return path

    def train(self) -> Job:
        """Train an ST-Transformer on the selection, evaluation hold-out hidden, in the background.

        The finished model is saved in the models folder (``session-<time>``), so it stays
        available after the session, and the selection is imputed with it.
        """
        hidden, _ = self.hidden_selection()
        model = STTransformerImputer(
            profile=self.profile,
            spatial=self.spatial,
            use_covariates=self.covariates,
            max_minutes=self.max_minutes,
        )
        if self.busy():
            assert self.job is not None
            raise RuntimeError(f"a {self.job.name} job is running: wait for it or cancel it")
        self.losses, self.history = [], []

        def work(job: Job):
            losses: list[tuple[int, float]] = []

            def on_progress(p) -> None:
                if p.phase == "train" and p.train_loss is not None:
                    losses.append(((p.epoch - 1) * p.steps_per_epoch + p.step, float(p.train_loss)))
                    self.losses = list(losses)
                eta = f", about {p.eta_s:.0f} s left" if p.eta_s else ""
                job.report(
                    p.fraction,
                    f"epoch {p.epoch}/{p.epochs}, step {p.step}/{p.steps_per_epoch}{eta}",
                    eta_s=p.eta_s,
                    history=[dict(h) for h in p.history],
                )

            model.fit(hidden, callbacks=[on_progress], cancel=job.cancel_event)
            model.training_["holdout"] = dict(EVALUATION_HOLDOUT)
            name = f"session-{pd.Timestamp.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            model.save(models_dir() / name)
            return model, name

        return self._start("training", work, on_done=self._trained, keep_on_cancel=True)

    def _trained(self, result) -> None:
        model, name = result
        self.param.checkpoint.objects = list_checkpoints()
        self._set_model(model, name)
        self.checkpoint = name
        self.method = ST
        state = "stopped early (cancelled)" if model.cancelled_ else "finished"
        self.notify("success", f"training {state}; saved as {name}")
        self._queue_impute()

    # -- imputation ------------------------------------------------------------------------

    def _queue_impute(self) -> None:
        if self.busy():
            if "impute" not in self._pending:
                self._pending.append("impute")
        else:
            self.impute()

    def methods(self) -> list[str]:
        chosen = [self.method] + [m for m in self.compare if m != self.method]
        return [m for m in chosen if m != ST or self.model is not None]

    def runs(self) -> dict[str, Run]:
        """Imputations done on the current selection, by method."""
        return self._runs.get(self.selection_key(), {})

    def run(self, method: str | None = None) -> Run | None:
        return self.runs().get(method or self.method)

    def impute(self) -> Job:
        """Impute the selection with the chosen method and the compared baselines, twice each:
        with every observation (maps, stations) and with the evaluation hold-out hidden (scores)."""
        key = self.selection_key()
        sel = self.selection()
        hidden, _ = self.hidden_selection()
        methods = self.methods()
        model, model_label = self.model, self.model_label
        done = dict(self._runs.get(key, {}))
        todo = [m for m in methods if m not in done or (m == ST and done[m].label != model_label)]

        def one(method: str) -> Run:
            if method == ST:
                assert model is not None
                return Run(method, model_label, model.impute(sel), model.impute(hidden))
            full = make_imputer(method).fit(sel).impute(sel)
            held = make_imputer(method).fit(hidden).impute(hidden)
            return Run(method, method, full, held)

        def work(job: Job):
            out, failed = {}, {}
            for i, method in enumerate(todo):
                if job.cancel_event.is_set():
                    break
                job.report(i / max(len(todo), 1), f"imputing with {method}")
                try:
                    if method != ST or model_label.startswith(SHIPPED):
                        # A baseline or a shipped checkpoint gives the same result for every
                        # session on the same data: share it (a second session's maps at once).
                        made_by = model_label if method == ST else method
                        shared_key = ("run", self.data_token, *key[1:], made_by)
                        out[method] = _shared(shared_key, lambda m=method: one(m))
                    else:
                        out[method] = one(method)
                except Exception as err:  # e.g. a reference whose covariate the data lack
                    if method == ST:
                        raise
                    failed[method] = str(err)
            return out, failed

        def finish(result: tuple[dict[str, Run], dict[str, str]]) -> None:
            runs, failed = result
            self._runs.setdefault(key, {}).update(runs)
            for method, error in failed.items():
                self.notify("warning", f"{method} left out: {error}")
            self.results_version += 1

        return self._start("imputation", work, on_done=finish)

    # -- validation and explanation ---------------------------------------------------------

    def scores(self) -> pd.DataFrame:
        """Scores on the held-out entries of the selection, one row per imputed method."""
        sel = self.selection()
        mask = mask_for(sel, self.evaluation_mask())
        rows = []
        for method, run in self.runs().items():
            s = held_out_scores(sel, run.heldout, mask)
            rows.append({"model": self.method_label(method), **s})
        return pd.DataFrame(rows)

    def station_table(self) -> pd.DataFrame:
        runs = self.runs()
        sel = self.selection()
        if "station" not in sel.dims or not runs:
            return pd.DataFrame()
        return station_comparison(sel, {self.method_label(m): r.full for m, r in runs.items()})

    def station_series(self, station: str | None = None) -> pd.DataFrame:
        station = station or self.station
        if station is None:
            return pd.DataFrame()
        runs = self.runs()
        return station_series(
            self.selection(), station, {self.method_label(m): r.full for m, r in runs.items()}
        )

    def land_cover(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per-cell errors on held-out entries (for box plots) and the table by land cover."""
        runs = self.runs()
        if not runs:
            return pd.DataFrame(), pd.DataFrame()
        sel = self.selection()
        mask = mask_for(sel, self.evaluation_mask())
        against = self.against if TRUTH in sel.data_vars else "observations"
        cells = []
        for method, run in runs.items():
            c = cell_errors(sel, run.heldout, mask, against=against)
            c.insert(0, "model", self.method_label(method))
            cells.append(c)
        table = land_cover_table(
            sel, {self.method_label(m): r.heldout for m, r in runs.items()}, mask, against=against
        )
        return pd.concat(cells, ignore_index=True), table

    def attention(self, row: int | None = None, col: int | None = None, day=None) -> dict:
        """Attention of a cell on a day under the current ST-Transformer (see stimpute_core)."""
        if self.model is None:
            raise ValueError("attention needs an ST-Transformer: train or load one first")
        r, c = self.cell if row is None else (row, col)
        return self.model.attention(self.selection(), int(r), int(c), pd.Timestamp(day or self.day))

    # -- export ----------------------------------------------------------------------------

    def export_netcdf(self) -> io.BytesIO:
        """The selection with each method's imputation as ``soil_moisture_imputed_<method>``."""
        runs = self.runs()
        if not runs:
            raise ValueError("nothing imputed yet for this selection")
        out = self.selection().copy()
        for method, run in runs.items():
            name = f"soil_moisture_imputed_{method.replace('-', '_')}"
            out[name] = run.full.assign_attrs(method=self.method_label(method))
        with tempfile.TemporaryDirectory() as tmp:
            path = write_netcdf(out, Path(tmp) / "imputed.nc")
            return io.BytesIO(path.read_bytes())

    def export_csv(self) -> io.StringIO:
        """Held-out scores, station metrics and land-cover errors as one long CSV."""
        parts = []
        scores = self.scores()
        if not scores.empty:
            parts.append(scores.assign(table="held_out_scores"))
        stations = self.station_table()
        if not stations.empty:
            parts.append(stations.assign(table="stations"))
        _, lc = self.land_cover()
        if not lc.empty:
            parts.append(lc.assign(table="land_cover"))
        if not parts:
            raise ValueError("nothing imputed yet for this selection")
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[["table"] + [c for c in frame.columns if c != "table"]]
        return io.StringIO(frame.to_csv(index=False))
