"""The intervals of the probabilistic methods in a workbench session.

A method is probabilistic when its model says so (``is_probabilistic``: the conformal references,
an ST-Transformer trained with calibration; a checkpoint without calibration is not), never by
its name. Its :class:`~workbench.state.Run` then keeps, besides the two fields, the quantiles of
each (:func:`impute_run`): those of the fit on every observation at :data:`FIELD_QUANTILES`
(maps, bands, exports) and those of the fit with the hold-out hidden at
:data:`~stimpute_core.uncertainty.SCORE_QUANTILES` (scores and calibration). Deterministic
methods are imputed as before, with no quantiles.

:class:`Intervals` is the part of the session state that reads them: it is mixed into
:class:`~workbench.state.Workbench`, and every number it returns comes from
:mod:`stimpute_core.uncertainty` or :mod:`stimpute_core.validation`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from stimpute_core.data import INSITU, TARGET, TRUTH
from stimpute_core.models.base import OUTPUT_NAME, QUANTILE_NAME, Imputer, is_probabilistic
from stimpute_core.protocol import distribution_for_evaluation, impute_for_evaluation
from stimpute_core.uncertainty import (
    BAND,
    CALIBRATION_LEVELS,
    SCORE_QUANTILES,
    calibration_curve,
    distribution_scores,
    interval_bounds,
    interval_width_map,
)
from stimpute_core.validation import mask_for, station_in_band, station_series

#: Quantile levels kept of the field fitted on every observation: the band's ends (5 % and
#: 95 %), the quartiles and the median.
FIELD_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
#: The band in words, as the plots and tables name it.
BAND_LABEL = f"{round(50 * (1 - BAND))}–{round(50 * (1 + BAND))} % band"
_DIMS = ("quantile", "time", "y", "x")


def impute_run(
    make: Callable[[], Imputer], sel: xr.Dataset, mask: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray | None, xr.DataArray | None]:
    """The two fields of ``stimpute_core.protocol`` and, for a probabilistic model, their
    quantiles (``None`` for a deterministic one): full, held-out, full quantiles, held-out
    quantiles. ``make`` builds the model (a wrapped checkpoint answers for the model inside)."""
    if not is_probabilistic(make()):
        full, held = impute_for_evaluation(make, sel, mask=mask)
        return full, held, None, None
    full, held = distribution_for_evaluation(make, sel, SCORE_QUANTILES, mask=mask)
    kept = full[QUANTILE_NAME].sel(quantile=list(FIELD_QUANTILES), method="nearest")
    return full[OUTPUT_NAME], held[OUTPUT_NAME], kept.copy(), held[QUANTILE_NAME]


def _values(q: xr.DataArray) -> tuple[np.ndarray, list[float]]:
    """A quantile field as a (quantile, time, y, x) array, and its levels."""
    return q.transpose(*_DIMS).values, [float(v) for v in q["quantile"].values]


def _target(sel: xr.Dataset, name: str = TARGET) -> np.ndarray:
    return sel[name].transpose("time", "y", "x").values


class Intervals:
    """What the views and exports read of the intervals (mixed into the Workbench, whose
    ``runs``, ``run``, ``selection``, ``evaluation_mask``, ``method_label``, ``method`` and
    ``station`` it uses)."""

    def probabilistic_runs(self) -> dict:
        """The runs on the current selection that have quantiles, by method."""
        return {m: r for m, r in self.runs().items() if r.quantiles is not None}

    def interval_scores(self, run, sel: xr.Dataset, mask: np.ndarray) -> dict[str, float]:
        """CRPS, coverage and width on the held-out entries (against the synthetic truth too,
        when there is one) for a run with quantiles; nothing for one without."""
        if run.heldout_quantiles is None:
            return {}
        values, levels = _values(run.heldout_quantiles)
        out = distribution_scores(values, levels, _target(sel), mask)
        if TRUTH in sel.data_vars:
            out.update(
                distribution_scores(values, levels, _target(sel, TRUTH), mask, suffix="_truth")
            )
        return out

    def calibration(self) -> pd.DataFrame:
        """Stated against observed coverage of the central intervals (10 % .. 90 %) on the
        held-out entries, one block of rows per probabilistic method: model, stated, observed."""
        sel = self.selection()
        mask = mask_for(sel, self.evaluation_mask())
        frames = []
        for method, run in self.probabilistic_runs().items():
            values, levels = _values(run.heldout_quantiles)
            observed = calibration_curve(values, levels, _target(sel), mask, CALIBRATION_LEVELS)
            frames.append(
                pd.DataFrame(
                    {
                        "model": self.method_label(method),
                        "stated": list(CALIBRATION_LEVELS),
                        "observed": observed,
                    }
                )
            )
        if not frames:
            return pd.DataFrame({"model": [], "stated": [], "observed": []})
        return pd.concat(frames, ignore_index=True)

    def width_map(self, day_index: int, method: str | None = None) -> np.ndarray | None:
        """The (y, x) width of the 90 % interval of ``method`` (the one shown) on a day of the
        selection, or ``None`` when that method has no intervals (or nothing is imputed)."""
        run = self.run(method)
        if run is None or run.quantiles is None:
            return None
        values, levels = _values(run.quantiles)
        return interval_width_map(values[:, day_index], levels, BAND)

    def cell_band(self, row: int, col: int, method: str | None = None):
        """The lower and upper ends of the band of ``method`` (the one shown) at a cell, over
        the selection's days, or ``None`` when it has no intervals."""
        run = self.run(method)
        if run is None or run.quantiles is None:
            return None
        values, levels = _values(run.quantiles)
        return interval_bounds(values[:, :, int(row), int(col)], levels, BAND)

    def _bands(self, runs: dict) -> dict:
        """The band's ends of each run as (time, y, x) DataArrays, by method label."""
        out = {}
        for method, run in runs.items():
            q = run.quantiles.transpose(*_DIMS)
            lower, upper = interval_bounds(q.values, [float(v) for v in q["quantile"].values])
            like = run.full.transpose("time", "y", "x")
            out[self.method_label(method)] = (like.copy(data=lower), like.copy(data=upper))
        return out

    def station_band(self, station: str | None = None, method: str | None = None):
        """The band of ``method`` (the one shown) at a station's cell as a frame (``lower``,
        ``upper``) indexed by day, or ``None`` when it has no intervals."""
        station = station or self.station
        run = self.run(method)
        if station is None or run is None or run.quantiles is None:
            return None
        lower, upper = self._bands({method or self.method: run})[self.method_label(method)]
        frame = station_series(self.selection(), station, {"lower": lower, "upper": upper})
        return frame[["lower", "upper"]]

    def with_in_band(self, table: pd.DataFrame) -> pd.DataFrame:
        """The station table with ``n_band`` and ``in_band`` (share of in-situ values inside
        the band) for the probabilistic methods (NaN on the other rows)."""
        runs = self.probabilistic_runs()
        if table.empty or not runs:
            return table
        shares = station_in_band(self.selection(), self._bands(runs))
        return table.merge(shares, on=["model", "station"], how="left")

    def add_quantiles(self, out: xr.Dataset) -> xr.Dataset:
        """``out`` with ``soil_moisture_quantile_<method>`` (quantile, time, y, x) for every
        probabilistic method: the quantiles of the field fitted on every observation."""
        for method, run in self.probabilistic_runs().items():
            name = f"{QUANTILE_NAME}_{method.replace('-', '_')}"
            out[name] = run.quantiles.assign_attrs(method=self.method_label(method))
        return out

    def band_table(self) -> pd.DataFrame:
        """Each probabilistic method's imputed value and band (``lower`` 5 %, ``upper`` 95 %) at
        every station's cell and day, beside the in-situ value: the CSV's ``station_bands``."""
        sel = self.selection()
        runs = self.probabilistic_runs()
        if INSITU not in sel.data_vars or "station" not in sel.coords or not runs:
            return pd.DataFrame()
        bands = self._bands(runs)
        frames = []
        for method, run in runs.items():
            label = self.method_label(method)
            lower, upper = bands[label]
            fields = {"imputed": run.full, "lower": lower, "upper": upper}
            for station in sel["station"].values:
                try:
                    frame = station_series(sel, str(station), fields)
                except ValueError:  # a station outside the grid has no cell
                    continue
                frame = frame[["insitu", "imputed", "lower", "upper"]].reset_index()
                frames.append(frame.assign(model=label, station=str(station)))
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        first = ["model", "station", "time"]
        return table[first + [c for c in table.columns if c not in first]]
