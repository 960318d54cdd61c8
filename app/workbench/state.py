"""The state of one workbench session: model, imputations, scores and exports.

:class:`Workbench` adds to a :class:`~workbench.session.Session` (data, selection, job) the
models and their results. Everything here is plain ``param`` state and calls into
``stimpute_core``; no widget or plot is made here, so the whole workflow can be driven (and
tested) without a browser. Long work runs as a :class:`~workbench.jobs.Job`; the page polls
:meth:`Workbench.poll` to pick up its result. What all sessions of a server share (folders,
default data, cached results) is in ``shared.py``.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import param
import xarray as xr

from stimpute_core.data import TRUTH, write_netcdf
from stimpute_core.data.sources import load_source
from stimpute_core.models import ALL_BASELINES, CONFORMAL_VARIANTS, PROFILE_NAMES, make_imputer
from stimpute_core.models.pretrained import Pretrained
from stimpute_core.models.st_transformer.model import (
    DEFAULT_PRETRAINED,
    STTransformerImputer,
)
from stimpute_core.protocol import (
    fit_for_evaluation,
    hide_evaluation,
    trained_without_evaluation,
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

from .intervals import Intervals, impute_run
from .jobs import Job
from .session import Session
from .shared import (
    AUTOSAVE,
    BUILTIN,
    SHIPPED,
    _default_if_loaded,
    _shared,
    checkpoint_path,
    data_dir,
    default_dataset,
    list_checkpoints,
    save_in_models_dir,
)

ST = "st-transformer"
#: Every baseline is offered, the covariate-aware ones too: the honest references for a model
#: that uses the covariates (see the README's benchmark); and the references with intervals.
REFERENCES = (*ALL_BASELINES, *CONFORMAL_VARIANTS)
METHODS = (ST, *REFERENCES)


class Run:
    """The imputations of one method on one selection: with every observation and with the
    evaluation hold-out hidden (for scores on entries the method never saw); for a probabilistic
    method the quantiles of each too (``None`` otherwise; see ``intervals.py``)."""

    def __init__(self, method: str, label: str, full: xr.DataArray, heldout: xr.DataArray,
                 quantiles: xr.DataArray | None = None,
                 heldout_quantiles: xr.DataArray | None = None):  # fmt: skip
        self.method, self.label, self.full, self.heldout = method, label, full, heldout
        self.quantiles, self.heldout_quantiles = quantiles, heldout_quantiles


class Workbench(Intervals, Session):
    """Data, selection, model and results of one session. Views read it; buttons call it."""

    method = param.Selector(default=ST, objects=list(METHODS), doc="Model shown and validated")
    compare = param.ListSelector(
        default=["mean", "idw", "coarse", "boosting", "boosting-smooth", "regression-conformal"],
        objects=list(REFERENCES),
    )
    profile = param.Selector(default="quick", objects=list(PROFILE_NAMES))
    spatial = param.Selector(default="swin", objects=["swin", "full", "none"])
    covariates = param.Boolean(default=True, doc="Use the weather, soil and 36 km covariates")
    max_minutes = param.Number(default=3.0, bounds=(0.1, 240), doc="Training time budget")
    checkpoint = param.Selector(default=None, objects=[], allow_None=True)
    save_name = param.String(default="", doc="Folder name for Save")
    overwrite = param.Boolean(default=False, doc="Save replaces this session's checkpoint")
    against = param.Selector(default="observations", objects=["observations", "truth"])

    results_version = param.Integer(default=0)
    model_version = param.Integer(default=0)

    def __init__(self, ds: xr.Dataset | None = None, label: str = BUILTIN, **params):
        super().__init__(ds, label, **params)
        self.model: STTransformerImputer | None = None
        self.model_label = ""
        self.model_note = ""
        self.history: list[dict] = []
        self.losses: list[tuple[int, float]] = []
        self._runs: dict[tuple, dict[str, Run]] = {}
        self._mask: tuple[int, xr.DataArray] | None = None
        self._saved: set[str] = set()  # checkpoints this session saved: the ones it may replace
        self.param.checkpoint.objects = list_checkpoints()

    # -- data ------------------------------------------------------------------------------

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
        """The selection with the evaluation hold-out hidden, and the hidden entries."""
        return hide_evaluation(self.selection(), mask=self.evaluation_mask())

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
        self.model_note = (
            ""
            if trained_without_evaluation(model)
            else "this model was trained without the evaluation hold-out hidden, so its scores "
            "on held-out entries are optimistic"
        )
        self.model_version += 1

    def save_checkpoint(self, name: str | None = None, *, overwrite: bool | None = None) -> Path:
        """Save the current model under ``name`` in the models folder (atomic). A checkpoint of
        that name is replaced only with ``overwrite`` (default: the Overwrite box, cleared after
        each save) and only if this session saved it (see ``shared.save_in_models_dir``)."""
        name = (name or self.save_name).strip()
        if name.startswith(AUTOSAVE):
            raise ValueError(f"checkpoint name {name!r}: names starting with {AUTOSAVE!r} are "
                             "kept for the models saved after training")  # fmt: skip
        if self.model is None:
            raise ValueError("no ST-Transformer to save: train or load one first")
        overwrite = self.overwrite if overwrite is None else overwrite
        path = save_in_models_dir(self.model, name, overwrite=overwrite, own=self._saved)
        self._saved.add(name)
        self.overwrite = False
        self.param.checkpoint.objects = list_checkpoints()
        self.model_label = name
        return path

    def train(self) -> Job:
        """Train an ST-Transformer on the selection, evaluation hold-out hidden, in the background.

        The finished model is saved in the models folder as ``session-<session id>-<time>``
        (never replacing anything), so it stays available after the session, and the selection
        is imputed with it. A model that cannot be saved is kept in the session, with a warning.
        """
        sel, mask = self.selection(), self.evaluation_mask()
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

            fit_for_evaluation(
                model, sel, mask=mask, callbacks=[on_progress], cancel=job.cancel_event
            )
            return (model, *self._save_trained(model))

        return self._start("training", work, on_done=self._trained, keep_on_cancel=True)

    def _save_trained(self, model: STTransformerImputer) -> tuple[str, str | None]:
        """Save a trained model under a name of this session's own; return the name and, if
        it could not be saved, why (the name then only labels it in the session)."""
        name = f"{AUTOSAVE}{self.session_id}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
        name += f"-{secrets.token_hex(2)}"
        try:
            save_in_models_dir(model, name)
        except (OSError, ValueError) as err:
            return f"unsaved-{name[len(AUTOSAVE) :]}", str(err)
        self._saved.add(name)
        return name, None

    def _trained(self, result) -> None:
        model, name, error = result
        self.param.checkpoint.objects = list_checkpoints()
        self._set_model(model, name)
        self.checkpoint = None if error else name
        self.method = ST
        state = "stopped early (cancelled)" if model.cancelled_ else "finished"
        if error:
            self.notify("warning", f"training {state} but not saved ({error}): save it by name")
        else:
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
        sel, mask = self.selection(), self.evaluation_mask()
        methods = self.methods()
        model, model_label = self.model, self.model_label
        done = dict(self._runs.get(key, {}))
        todo = [m for m in methods if m not in done or (m == ST and done[m].label != model_label)]

        def one(method: str) -> Run:
            # The trained model imputes as it is (Pretrained); a reference is fitted twice.
            if method == ST:
                make, label = (lambda: Pretrained(model)), model_label
            else:
                make, label = (lambda: make_imputer(method)), method
            return Run(method, label, *impute_run(make, sel, mask))

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
            rows[-1].update(self.interval_scores(run, sel, mask))
        return pd.DataFrame(rows)

    def station_table(self) -> pd.DataFrame:
        runs = self.runs()
        sel = self.selection()
        if "station" not in sel.dims or not runs:
            return pd.DataFrame()
        table = station_comparison(sel, {self.method_label(m): r.full for m, r in runs.items()})
        return self.with_in_band(table)

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
        """The selection with each method's imputation as ``soil_moisture_imputed_<method>`` and,
        for a probabilistic one, its quantiles as ``soil_moisture_quantile_<method>``."""
        runs = self.runs()
        if not runs:
            raise ValueError("nothing imputed yet for this selection")
        out = self.selection().copy()
        for method, run in runs.items():
            name = f"soil_moisture_imputed_{method.replace('-', '_')}"
            out[name] = run.full.assign_attrs(method=self.method_label(method))
        out = self.add_quantiles(out)
        with tempfile.TemporaryDirectory() as tmp:
            path = write_netcdf(out, Path(tmp) / "imputed.nc")
            return io.BytesIO(path.read_bytes())

    def export_csv(self) -> io.StringIO:
        """Held-out scores, station metrics, land-cover errors and (for the probabilistic methods)
        the 5-95 % band at the stations as one long CSV."""
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
        bands = self.band_table()
        if not bands.empty:
            parts.append(bands.assign(table="station_bands"))
        if not parts:
            raise ValueError("nothing imputed yet for this selection")
        frame = pd.concat(parts, ignore_index=True)
        frame = frame[["table"] + [c for c in frame.columns if c != "table"]]
        return io.StringIO(frame.to_csv(index=False))
