"""The *Attention* tab: where and when the ST-Transformer looks for one cell and day."""

from __future__ import annotations

import panel as pn
import param

from stimpute_core.models.st_transformer.attention import spatial_on_grid

from .. import plots
from ..state import Workbench
from .common import _View, notify_errors


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
            on_grid = spatial_on_grid(
                sel, att, layer=min(self.layer, len(layers) - 1),
                block=min(self.block, len(layer["spatial"]) - 1),
                head=min(self.head, weights.shape[0] - 1),
            )  # fmt: skip
            heat = plots.attention_map(on_grid, f"Spatial attention of {title_cell}")
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
