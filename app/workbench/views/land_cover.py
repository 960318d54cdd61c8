"""The *Land cover* tab: errors on held-out entries by IGBP land-cover class."""

from __future__ import annotations

import panel as pn
import param

from .. import plots
from .common import _table, _View


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
