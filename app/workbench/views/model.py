"""The *Model* tab: train, cancel, load and save models, impute, the held-out scores and the
calibration of the models that give intervals."""

from __future__ import annotations

import numpy as np
import panel as pn
import param

from .. import plots
from ..state import Workbench
from .common import _table, _View, holdout_text, notify_errors


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
            for c in (
                *("model", "n", "mae", "mre", "rmse", "bias", "ubrmsd", "r", "mae_truth"),
                *("crps", "cover90", "width90"),
            )
            if c in scores
        ]
        intervals = (
            "; for the models with intervals, `crps` (m³/m³), `cover90` (share of the entries "
            "inside the 90 % interval) and `width90` (its mean width, m³/m³)"
            if "crps" in scores
            else ""
        )
        return pn.Column(
            pn.pane.Markdown(
                f"**Scores on the held-out entries** ({holdout_text()}, hidden from every "
                f"method; `mae_truth` scores the same entries against the synthetic truth{intervals})"
            ),
            _table(scores[cols]),
        )

    @param.depends("wb.results_version", "wb.region", "wb.window", "wb.data_version")
    def _calibration(self):
        curves = self.wb.calibration()
        if curves.empty:
            return pn.pane.Markdown(
                "**Calibration**: no model with intervals imputed on this selection. Compare a "
                "`-conformal` reference (or train an ST-Transformer here) to see its intervals."
            )
        return pn.Column(
            pn.pane.Markdown(
                "**Calibration**: the stated coverage of each central interval (10 % to 90 %) "
                "against the share of the held-out observations inside it. On the diagonal: "
                "calibrated; below: intervals too narrow; above: too wide."
            ),
            pn.pane.HoloViews(plots.calibration_plot(curves), linked_axes=False),
        )

    def controls(self) -> pn.Column:
        wb = self.wb
        return pn.Column(
            pn.widgets.Select.from_param(wb.param.method, name="Model shown"),
            pn.widgets.MultiChoice.from_param(wb.param.compare, name="References compared"),
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
            pn.Row(
                self.save_button,
                pn.widgets.Checkbox.from_param(
                    wb.param.overwrite, name="Overwrite (a checkpoint this session saved)"
                ),
            ),
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
            self._calibration,
        )
