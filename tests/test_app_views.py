"""The workbench page without a browser: what the views put in the Bokeh document and when.

The page is built as the server builds it (``workbench.page.create_app``) on a small scenario
named by ``STIMPUTE_DATA`` and attached to a Bokeh ``Document``; setting the session state then
runs every watcher and plot update synchronously, as a browser event would on the server.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Legend, Title
from panel.io.state import set_curdoc

from stimpute_core.data import TARGET, write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from workbench import page, shared


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One page on a 12 x 12 scenario, attached to a document, its first imputation done."""
    root = tmp_path_factory.mktemp("views")
    box = GridBox(row0=TXSON_BOX.row0, col0=TXSON_BOX.col0, nrows=12, ncols=12)
    cfg = ScenarioConfig(start="2020-01-01", end="2020-12-31", box=box, n_stations=6)
    path = write_netcdf(make_scenario(cfg), root / "small.nc")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MODELS", "DATA", "CACHE"):
            mp.setenv(f"STIMPUTE_{name}_DIR", str(root / name.lower()))
        mp.setenv("STIMPUTE_DATA", str(path))
        mp.setattr(shared, "_SHARED", OrderedDict())
        mp.setattr(shared, "_DEFAULT_JOB", None)
        page.extensions()
        template = page.create_app()
        wb = template.workbench
        wb.compare = ["mean"]
        wb.wait()
        doc = Document()
        with set_curdoc(doc):
            template.server_doc(doc)
            tabs = next(t for part in template.main for t in part.select(pn.Tabs))
            yield template, wb, doc, tabs
        wb.close()


def titles(doc: Document) -> list[str]:
    return [m.text for m in doc.models if isinstance(m, Title) and m.text]


def show(tabs: pn.Tabs, name: str) -> None:
    tabs.active = list(tabs._names).index(name)


def count_recomputes(doc: Document, monkeypatch) -> list[int]:
    """Count Bokeh's walks of the whole document (its costly step after a plot update)."""
    calls = [0]
    real = doc.models.recompute

    def counted():
        calls[0] += 1
        real()

    monkeypatch.setattr(doc.models, "recompute", counted)
    return calls


def next_observed_day(wb) -> dt.date:
    sel = wb.selection()
    times = pd.DatetimeIndex(sel["time"].values)
    days = [t.date() for t in times[np.isfinite(sel[TARGET].values).any(axis=(1, 2))]]
    later = [d for d in days if d > wb.day]
    return later[0] if later else days[0]


def test_only_the_shown_tab_is_in_the_document(app):
    _, _, doc, tabs = app
    show(tabs, "Validation (TxSON)")
    assert "Stations: nested 36, 9 and 3 km" in titles(doc)
    with_validation = len(doc.models)
    show(tabs, "Sparsity")
    assert "Stations: nested 36, 9 and 3 km" not in titles(doc)
    assert "Fraction of days observed" in titles(doc)
    assert len(doc.models) < with_validation
    show(tabs, "Validation (TxSON)")  # built once, shown again
    assert "Stations: nested 36, 9 and 3 km" in titles(doc)


def test_day_change_redraws_the_maps_in_one_document_update(app, monkeypatch):
    _, wb, doc, tabs = app
    show(tabs, "Imputed fields")
    assert any(t.startswith("Imputed: st-transformer") for t in titles(doc))
    day = next_observed_day(wb)
    calls = count_recomputes(doc, monkeypatch)
    wb.day = day
    assert calls[0] == 1
    assert any(t.startswith(f"Observed {day:%Y-%m-%d}") for t in titles(doc))


def test_a_hidden_view_does_not_touch_the_document(app, monkeypatch):
    _, wb, doc, tabs = app
    show(tabs, "Sparsity")
    calls = count_recomputes(doc, monkeypatch)
    wb.day = next_observed_day(wb)
    wb.cell = (0, 0) if tuple(wb.cell) != (0, 0) else (1, 1)
    assert calls[0] == 0


def _marker_positions(doc: Document) -> list[tuple[float, float]]:
    """Positions drawn by one-point sources (the red cell markers)."""
    out = []
    for m in doc.models:
        if isinstance(m, ColumnDataSource) and set(m.data) >= {"lon", "lat"}:
            if len(m.data["lon"]) == 1:
                out.append((float(m.data["lon"][0]), float(m.data["lat"][0])))
    return out


def test_cell_change_moves_the_markers_and_the_series(app, monkeypatch):
    _, wb, doc, tabs = app
    show(tabs, "Imputed fields")
    sel = wb.selection()
    row, col = (1, 2) if tuple(wb.cell) != (1, 2) else (3, 4)
    calls = count_recomputes(doc, monkeypatch)
    wb.cell = (row, col)
    assert calls[0] == 1
    where = (float(sel["lon"].values[row, col]), float(sel["lat"].values[row, col]))
    markers = _marker_positions(doc)
    assert markers.count(where) == 4, markers  # one marker on each of the four maps
    assert any(t.startswith(f"Cell row {row}, col {col} ") for t in titles(doc))


def test_station_change_while_hidden_shows_when_the_tab_comes_back(app, monkeypatch):
    _, wb, doc, tabs = app
    stations = list(wb.param.station.objects)
    assert len(stations) >= 2
    show(tabs, "Validation (TxSON)")
    other = stations[(stations.index(wb.station) + 1) % len(stations)]
    calls = count_recomputes(doc, monkeypatch)
    wb.station = other
    assert calls[0] == 1
    assert f"Station {other}: in situ, satellite and imputed" in titles(doc)
    show(tabs, "Imputed fields")
    hidden = stations[(stations.index(other) + 1) % len(stations)]
    wb.station = hidden  # the Validation tab is out of the page: nothing drawn now
    assert not any(t.startswith("Station ") for t in titles(doc))
    show(tabs, "Validation (TxSON)")
    assert f"Station {hidden}: in situ, satellite and imputed" in titles(doc)


def legend_labels(doc: Document) -> set[str]:
    return {
        getattr(item.label, "value", None)
        for m in doc.models
        if isinstance(m, Legend)
        for item in m.items
    }


def test_new_method_rebuilds_the_station_series_with_its_line(app):
    _, wb, doc, tabs = app
    show(tabs, "Validation (TxSON)")
    assert "insitu" in legend_labels(doc)
    assert "climatology" not in legend_labels(doc)
    wb.compare = [*wb.compare, "climatology"]
    wb.impute()
    wb.wait()
    assert "climatology" in legend_labels(doc)


def test_map_axes_have_few_ticks_in_degrees():
    import holoviews as hv

    from workbench import plots

    page.extensions()
    lon, lat = np.meshgrid(np.linspace(-98.9, -98.6, 20), np.linspace(30.2, 30.5, 10))
    ds = xr.Dataset(coords={"lon": (("y", "x"), lon), "lat": (("y", "x"), lat)})
    fig = hv.render(plots.grid_map(ds, np.zeros((10, 20)), "value"))
    for axis, letters in ((fig.xaxis[0], '"W"'), (fig.yaxis[0], '"N"')):
        assert axis.ticker.desired_num_ticks == plots.MAP_TICKS
        assert letters in axis.formatter.code and "toFixed" in axis.formatter.code
    assert (fig.xaxis[0].axis_label, fig.yaxis[0].axis_label) == ("longitude", "latitude")


def test_the_holdout_is_described_from_its_definition():
    from stimpute_core.validation import EVALUATION_HOLDOUT
    from workbench.views import holdout_text

    assert holdout_text({"kind": "time_slice", "fraction": 0.2, "seed": 0}) == (
        "20 % of the observed days"
    )
    assert holdout_text({"kind": "point", "fraction": 0.15, "seed": 1}) == (
        "15 % of the observed entries"
    )
    assert holdout_text() == holdout_text(EVALUATION_HOLDOUT)
    assert holdout_text() in page.ABOUT


def test_sparsity_tab_shows_the_core_summary(app):
    from stimpute_core.data.summary import sparsity

    _, wb, doc, tabs = app
    show(tabs, "Sparsity")
    info = sparsity(wb.selection())
    texts = [str(m.text) for m in doc.models if "cell-days missing" in str(getattr(m, "text", ""))]
    assert len(texts) == 1
    assert f"{info['missing_percent']:.1f} % of cell-days missing" in texts[0]
    assert f"{info['days_with_observations']} of {info['days']} days" in texts[0]


def _bands_drawn(doc: Document) -> list[np.ndarray]:
    """The outlines of the shaded bands (HoloViews draws an Area as a Patch) in the document."""
    from bokeh.models import GlyphRenderer, Patch

    out = []
    for m in doc.models:
        if isinstance(m, GlyphRenderer) and isinstance(m.glyph, Patch):
            out.append(np.asarray(m.data_source.data["y"], dtype=float))
    return out


def test_uncertainty_views_follow_the_model_shown(app):
    from stimpute_core.uncertainty import CALIBRATION_LEVELS

    _, wb, doc, tabs = app
    method, compare = wb.method, list(wb.compare)
    show(tabs, "Imputed fields")
    if wb.run().quantiles is None:  # a checkpoint without calibration gives no intervals
        assert f"No intervals: {wb.method_label()}" in titles(doc)
        assert all(np.isnan(b).all() for b in _bands_drawn(doc))
    try:
        wb.compare = [*compare, "idw-conformal"]
        wb.impute()
        wb.wait()
        wb.method = "idw-conformal"
        assert "90 % interval: idw-conformal" in titles(doc)
        assert any(np.isfinite(b).any() for b in _bands_drawn(doc))  # the cell's band
        assert "5–95 % band" in legend_labels(doc)
        text = " ".join(str(getattr(m, "text", "")) for m in doc.models)
        assert "Uncertainty: the width of the 90 % interval of idw-conformal" in text
        row, col = (2, 3) if tuple(wb.cell) != (2, 3) else (4, 5)
        wb.cell = (row, col)  # another cell: the series and its band follow
        assert any(t.startswith(f"Cell row {row}, col {col} ") for t in titles(doc))
        assert any(np.isfinite(b).any() for b in _bands_drawn(doc))

        show(tabs, "Model")
        assert any(t.startswith("Calibration on the held-out entries") for t in titles(doc))
        assert "idw-conformal" in legend_labels(doc) and "ideal" in legend_labels(doc)
        columns = [
            np.asarray(v, dtype=float)
            for m in doc.models
            if isinstance(m, ColumnDataSource)
            for k, v in m.data.items()
            if k.startswith("stated") and len(v) == len(CALIBRATION_LEVELS)
        ]
        assert columns and np.allclose(columns[0], CALIBRATION_LEVELS)  # a line drawn
        tables = [m for m in doc.models if type(m).__name__ == "DataTabulator"]
        assert any("crps" in t.source.data and "cover90" in t.source.data for t in tables)

        show(tabs, "Validation (TxSON)")
        assert any(np.isfinite(b).any() for b in _bands_drawn(doc))  # the station's band
        tables = [m for m in doc.models if type(m).__name__ == "DataTabulator"]
        assert any("in_band" in t.source.data for t in tables)
        wb.method = "mean"  # no intervals: the band empties, in place
        assert all(np.isnan(b).all() for b in _bands_drawn(doc))
    finally:
        wb.method, wb.compare = method, compare
