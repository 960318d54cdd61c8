"""The *Export* tab: downloads of the imputed cube and the metric tables."""

from __future__ import annotations

import panel as pn

from ..state import Workbench
from .common import _View, notify_errors


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
                "The NetCDF holds the selection (contract variables), one "
                "`soil_moisture_imputed_<method>` variable per imputed method and, for a method "
                "with intervals, its quantiles (5, 25, 50, 75 and 95 %) as "
                "`soil_moisture_quantile_<method>`. The CSV holds the held-out scores (with "
                "CRPS, coverage and width for the methods with intervals), the station metrics, "
                "the land-cover table and, for the methods with intervals, each station's daily "
                "value with its `lower` (5 %) and `upper` (95 %) band (`station_bands`), one "
                "`table` column telling them apart."
            ),
            pn.Row(self.netcdf, self.csv),
        )
