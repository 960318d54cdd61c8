"""The *Sparsity* tab: where and how often the target is observed."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from stimpute_core.data.summary import (
    daily_coverage,
    observed_fraction,
    sparsity,
)

from .. import plots
from .common import _View


class SparsityView(_View):
    """Observed fraction per cell, daily coverage over time and the overall missing rate."""

    @param.depends("wb.data_version", "wb.region", "wb.window")
    def _maps(self):
        sel = self.wb.selection()
        frac = observed_fraction(sel).values
        cover = daily_coverage(sel)
        fraction = plots.grid_map(sel, frac, "observed fraction", title="Fraction of days observed")
        spikes = hv.Spikes((cover.index, 100 * cover.values), "time", "cells observed (%)").opts(
            title="Daily coverage: the overpass pattern",
            height=260,
            responsive=True,
            color="#1f77b4",
            tools=["hover"],
        )
        info = sparsity(sel)
        text = pn.pane.Markdown(
            f"### {info['missing_percent']:.1f} % of cell-days missing\n\n"
            f"{info['days_with_observations']} of {info['days']} days have an observation; "
            f"median gap between observed days: {info['median_gap_days']:.0f} days."
        )
        return pn.Column(
            pn.Row(pn.pane.HoloViews(fraction, sizing_mode="fixed", linked_axes=False), text),
            pn.pane.HoloViews(spikes, linked_axes=False),
        )

    def __panel__(self):
        return pn.panel(self._maps)
