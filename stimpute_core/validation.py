"""Validation of imputations against held-out observations and in-situ stations.

The web app and the notebooks score every model the same way, so their numbers agree:

- **Held-out observations.** :func:`evaluation_mask` draws one hold-out mask
  (:data:`EVALUATION_HOLDOUT`) on the *whole* Dataset. A model is fitted on the data with those
  entries hidden (:func:`~stimpute_core.masks.apply_holdout`) and scored on them with
  :func:`held_out_scores`, :func:`cell_errors` and :func:`land_cover_table`. Any region or time
  subset of the data takes the matching subset of the mask (:func:`mask_for`), so a view of part
  of the area scores the very entries the full run scores there.
- **Stations.** :func:`station_comparison` compares each model's field at the station cells with
  the in-situ series, next to the raw satellite record scored the same way; :func:`station_series`
  gives one station's series for a plot and :func:`station_nests` the network for a map.

Every ``ds`` here is the data *before* hiding: it still holds the hidden observations, which are
the reference. Imputations are (time, y, x) DataArrays (matched to ``ds`` by coordinates, so a
field over a larger area or period is fine) or arrays shaped like ``ds``'s grid. The maths lives
in :mod:`stimpute_core.metrics`; this module only chooses what to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .data.contract import INSITU, LAND_COVER, TARGET, TRUTH, land_cover_classes
from .data.selection import station_cells
from .masks import holdout_mask
from .metrics import by_land_cover, error_map, mae, score, station_table
from .uncertainty import in_band

#: The hold-out the app uses to score models: whole days, a fifth of the observed ones, seed 0.
EVALUATION_HOLDOUT: dict = {"kind": "time_slice", "fraction": 0.2, "seed": 0}
#: What :func:`cell_errors` and :func:`land_cover_table` can score against.
REFERENCES = ("observations", "truth")
#: Columns of :func:`station_comparison`.
STATION_COLUMNS = ["model", "station", "nest", "n", "bias", "rmse", "ubrmsd", "r", "meets_target"]
#: Columns of :func:`station_in_band`.
IN_BAND_COLUMNS = ["model", "station", "n_band", "in_band"]
#: Columns of :func:`station_nests`.
NEST_COLUMNS = ["station", "lat", "lon", "nest", "row", "col"]
#: Columns of :func:`cell_errors`.
CELL_COLUMNS = ["row", "col", "lat", "lon", "land_cover", "land_cover_name", "n", "mae"]

_DIMS = ("time", "y", "x")
#: Tolerance (metres) when matching y/x cell centres, as the baselines use.
_GRID_ATOL = 1e-3

Field = xr.DataArray | np.ndarray


def _grid_shape(ds: xr.Dataset | xr.DataArray) -> tuple[int, int, int]:
    return (ds.sizes["time"], ds.sizes["y"], ds.sizes["x"])


def _positions(wanted: Any, available: Any, dim: str) -> np.ndarray:
    """Index in ``available`` of each value of ``wanted``; ValueError naming the missing ones.

    Times must match exactly; y/x cell centres within :data:`_GRID_ATOL` metres.
    """
    wanted, available = np.asarray(wanted), np.asarray(available)
    if np.issubdtype(available.dtype, np.datetime64):
        idx = pd.DatetimeIndex(available).get_indexer(pd.DatetimeIndex(wanted))
        missing = idx < 0
        shown = [f"{t:%Y-%m-%d}" for t in pd.DatetimeIndex(wanted[missing][:3])]
    else:
        w, a = wanted.astype(float), available.astype(float)
        if a.size == 0:
            idx = np.full(w.size, -1)
        else:
            idx = np.abs(np.subtract.outer(w, a)).argmin(axis=1)
            idx[np.abs(w - a[idx]) > _GRID_ATOL] = -1
        missing = idx < 0
        shown = [f"{v:.1f}" for v in w[missing][:3]]
    if missing.any():
        more = ", ..." if missing.sum() > len(shown) else ""
        raise ValueError(
            f"{int(missing.sum())} value(s) of coordinate '{dim}' are not in the mask or field: "
            f"{', '.join(shown)}{more} (the subset must lie inside the data the mask was drawn on)"
        )
    return idx


def _take(ds: xr.Dataset | xr.DataArray, field: xr.DataArray) -> np.ndarray:
    """``field``'s (time, y, x) values on ``ds``'s time/y/x coordinates."""
    field = field.transpose(*_DIMS)
    index = [_positions(ds[d].values, field[d].values, d) for d in _DIMS]
    return np.asarray(field.values)[np.ix_(*index)]


def mask_for(ds_subset: xr.Dataset | xr.DataArray, mask: xr.DataArray) -> np.ndarray:
    """The values of ``mask`` on the time/y/x coordinates of ``ds_subset``, as a bool array.

    This is how a region or time subset of the data gets its part of a mask drawn on the whole
    Dataset (:func:`evaluation_mask`). Raises ``ValueError`` naming the coordinate values of the
    subset that the mask does not have.
    """
    missing = [d for d in _DIMS if d not in mask.coords or d not in ds_subset.coords]
    if missing:
        raise ValueError(f"mask and data need coordinates time, y and x: missing {missing}")
    return _take(ds_subset, mask).astype(bool)


def evaluation_mask(
    ds: xr.Dataset, kind: str = "time_slice", fraction: float = 0.2, seed: int = 0
) -> xr.DataArray:
    """The hold-out mask scoring uses: True on the observed entries hidden from the models.

    A (time, y, x) bool DataArray named ``evaluation_mask`` with ``ds``'s time/y/x (and lat/lon)
    coordinates and attributes ``kind``, ``fraction`` and ``seed``. It is drawn with
    :func:`~stimpute_core.masks.holdout_mask` on the *whole* ``ds`` so that every subset scores
    the same entries: take a region or period with ``mask.sel(time=..., y=..., x=...)`` or
    :func:`mask_for`, never by drawing a new mask on the subset (which would hide other days).
    """
    target = ds[TARGET].transpose(*_DIMS)
    values = holdout_mask(np.isfinite(target.values), kind, fraction=fraction, seed=seed)
    coords = {k: v for k, v in target.coords.items() if set(v.dims) <= set(_DIMS)}
    return xr.DataArray(
        values,
        dims=_DIMS,
        coords=coords,
        name="evaluation_mask",
        attrs={
            "kind": str(kind),
            "fraction": float(fraction),
            "seed": int(seed),
            "long_name": "observed entries held out for scoring",
        },
    )


def _mask_on(ds: xr.Dataset, mask: Field | None) -> np.ndarray | None:
    """``mask`` as a bool (time, y, x) array on ``ds``: DataArrays are matched by coordinates."""
    if mask is None:
        return None
    if isinstance(mask, xr.DataArray) and all(d in mask.coords for d in _DIMS):
        return mask_for(ds, mask)
    values = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=bool)
    if values.shape != _grid_shape(ds):
        raise ValueError(
            f"mask has shape {values.shape}: expected (time, y, x) = {_grid_shape(ds)}"
        )
    return values


def _field_on(ds: xr.Dataset, field: Field, what: str) -> np.ndarray:
    """``field`` as a float (time, y, x) array on ``ds``: DataArrays are matched by coordinates."""
    if isinstance(field, xr.DataArray) and set(field.dims) == set(_DIMS):
        if all(d in field.coords for d in _DIMS):
            return _take(ds, field).astype(float)
        field = field.transpose(*_DIMS)
    values = np.asarray(field.values if isinstance(field, xr.DataArray) else field, dtype=float)
    if values.shape != _grid_shape(ds):
        raise ValueError(
            f"{what} has shape {values.shape}: expected (time, y, x) = {_grid_shape(ds)}"
        )
    return values


def _reference(ds: xr.Dataset, against: str) -> np.ndarray:
    """The values imputations are scored against: the observations or the synthetic truth."""
    if against not in REFERENCES:
        raise ValueError(f"against={against!r}: expected one of {', '.join(REFERENCES)}")
    name = TARGET if against == "observations" else TRUTH
    if name not in ds.data_vars:
        raise ValueError(
            f"against={against!r} needs the variable '{name}', which ds lacks"
            + (" (only synthetic data carry a truth)" if name == TRUTH else "")
        )
    return np.asarray(ds[name].transpose(*_DIMS).values, dtype=float)


def held_out_scores(ds: xr.Dataset, imputed: Field, mask: Field) -> dict[str, Any]:
    """:func:`~stimpute_core.metrics.score` of ``imputed`` against the hidden observations.

    ``ds`` is the data *before* hiding, so ``ds['soil_moisture']`` still holds the values under
    ``mask``. Adds ``mae_truth``, the MAE against ``soil_moisture_true`` on the same entries (NaN
    without a truth): retrieval noise inflates the first and not the second. Raises
    ``ValueError`` when the masked entries hold no observation, the sign of passing the data
    after hiding.
    """
    m = _mask_on(ds, mask)
    pred = _field_on(ds, imputed, "imputed")
    obs = _reference(ds, "observations")
    if m.any() and not np.isfinite(obs[m]).any():
        raise ValueError(
            f"'{TARGET}' holds no value on the {int(m.sum())} masked entries: pass the data "
            "before hiding (it is the reference), not the copy the model saw"
        )
    out = score(pred, obs, m)
    out["mae_truth"] = mae(pred, _reference(ds, "truth"), m) if TRUTH in ds.data_vars else np.nan
    return out


def _cell_coord(ds: xr.Dataset, name: str) -> np.ndarray:
    if name in ds.coords and ds[name].dims == ("y", "x"):
        return np.asarray(ds[name].values, dtype=float)
    return np.full((ds.sizes["y"], ds.sizes["x"]), np.nan)


def cell_errors(
    ds: xr.Dataset, imputed: Field, mask: Field, *, against: str = "observations"
) -> pd.DataFrame:
    """Per-cell MAE of ``imputed`` on the masked entries, for box plots by land-cover class.

    One row per cell with at least one scored entry (in row, col order): ``row``, ``col``,
    ``lat``, ``lon``, ``land_cover`` (code; -1 without a land-cover layer), ``land_cover_name``,
    ``n`` and ``mae``. ``against`` is ``"observations"`` (the hidden values) or ``"truth"``.
    """
    ref = _reference(ds, against)
    m = _mask_on(ds, mask)
    pred = _field_on(ds, imputed, "imputed")
    n = error_map(pred, ref, m, "n").values
    cell_mae = error_map(pred, ref, m, "mae").values
    rows, cols = np.nonzero(n > 0)
    if LAND_COVER in ds.data_vars:
        lc = np.asarray(ds[LAND_COVER].transpose("y", "x").values)[rows, cols].astype(int)
        classes = land_cover_classes(ds)
    else:
        lc, classes = np.full(rows.size, -1), {-1: "unknown"}
    table = pd.DataFrame(
        {
            "row": rows,
            "col": cols,
            "lat": _cell_coord(ds, "lat")[rows, cols],
            "lon": _cell_coord(ds, "lon")[rows, cols],
            "land_cover": lc,
            "land_cover_name": [classes.get(int(c), str(int(c))) for c in lc],
            "n": n[rows, cols].astype(int),
            "mae": cell_mae[rows, cols],
        },
        columns=CELL_COLUMNS,
    )
    return table


def land_cover_table(
    ds: xr.Dataset,
    imputations: Mapping[str, Field],
    mask: Field,
    *,
    against: str = "observations",
) -> pd.DataFrame:
    """:func:`~stimpute_core.metrics.by_land_cover` for each model, with a leading ``model``.

    Models keep the order of ``imputations``; ``against`` as in :func:`cell_errors`.
    """
    if LAND_COVER not in ds.data_vars:
        raise ValueError(f"ds has no '{LAND_COVER}' variable: no class to group by")
    ref = _reference(ds, against)
    m = _mask_on(ds, mask)
    land_cover = ds[LAND_COVER].transpose("y", "x")
    tables = []
    for model, field in imputations.items():
        table = by_land_cover(_field_on(ds, field, f"imputation {model!r}"), ref, m, land_cover)
        table.insert(0, "model", str(model))
        tables.append(table)
    if not tables:
        empty = by_land_cover(ref, ref, np.zeros(ref.shape, bool), land_cover).iloc[:0]
        empty.insert(0, "model", pd.Series(dtype=object))
        return empty
    return pd.concat(tables, ignore_index=True)


def _station_index(ds: xr.Dataset, station: str) -> int:
    """Position of ``station`` in ``ds``; ValueError naming it and a few known stations."""
    if INSITU not in ds.data_vars or "station" not in ds.coords:
        raise ValueError(f"station {station!r} unknown: ds has no '{INSITU}' stations")
    names = [str(s) for s in ds["station"].values]
    if str(station) not in names:
        few = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ValueError(
            f"station {station!r} unknown: ds has {len(names)} stations ({few or 'none'})"
        )
    return names.index(str(station))


def _nests(ds: xr.Dataset) -> dict[str, str]:
    if "station_nest" not in ds.coords:
        return {}
    return {
        str(s): str(n) for s, n in zip(ds["station"].values, ds["station_nest"].values, strict=True)
    }


def station_comparison(
    ds: xr.Dataset, imputations: Mapping[str, Field], *, min_pairs: int = 10
) -> pd.DataFrame:
    """Each model against the in-situ stations, and the raw satellite record scored the same way.

    Built on :func:`~stimpute_core.metrics.station_table`: one row per (model, station) and each
    model's pooled ``"all"`` row, columns :data:`STATION_COLUMNS` (``nest`` from the
    ``station_nest`` coordinate, else ""; "" on ``"all"`` rows). A last block, model
    ``"satellite"``, scores ``ds['soil_moisture']`` at the station cells: it pairs only the days
    with a retrieval, so its ``n`` is much smaller and stations may miss ``min_pairs``.
    """
    if "satellite" in imputations:
        raise ValueError("'satellite' names the raw observations: give the model another name")
    blocks = {str(k): _field_on(ds, v, f"imputation {k!r}") for k, v in imputations.items()}
    blocks["satellite"] = _reference(ds, "observations")
    nests = _nests(ds)
    tables = []
    for model, field in blocks.items():
        table = station_table(ds, field, min_pairs=min_pairs)
        table.insert(0, "model", model)
        table["nest"] = [nests.get(str(s), "") for s in table["station"]]
        tables.append(table[STATION_COLUMNS])
    return pd.concat(tables, ignore_index=True)


def station_series(ds: xr.Dataset, station: str, imputations: Mapping[str, Field]) -> pd.DataFrame:
    """One station's daily series for a plot, indexed by ``time``.

    Columns: ``insitu``, ``satellite`` (the raw observations at the station's cell, NaN on days
    without a retrieval), one column per model (its value at that cell) and ``truth`` when ``ds``
    has it. Raises ``ValueError`` for an unknown station (listing known ones) or one outside the
    grid.
    """
    i = _station_index(ds, station)
    rows, cols = station_cells(ds)
    r, c = int(rows[i]), int(cols[i])
    if r < 0 or c < 0:
        raise ValueError(f"station {station!r} lies outside the grid of ds: no cell to compare")
    clash = {"insitu", "satellite", "truth"} & {str(k) for k in imputations}
    if clash:
        raise ValueError(f"model name(s) {sorted(clash)} clash with the series' own columns")
    columns: dict[str, np.ndarray] = {
        "insitu": np.asarray(ds[INSITU].isel(station=i).values, dtype=float),
        "satellite": _reference(ds, "observations")[:, r, c],
    }
    for model, field in imputations.items():
        columns[str(model)] = _field_on(ds, field, f"imputation {model!r}")[:, r, c]
    if TRUTH in ds.data_vars:
        columns["truth"] = _reference(ds, "truth")[:, r, c]
    index = pd.DatetimeIndex(ds["time"].values, name="time")
    return pd.DataFrame(columns, index=index)


def station_in_band(
    ds: xr.Dataset, bands: Mapping[str, tuple[Field, Field]], *, min_pairs: int = 10
) -> pd.DataFrame:
    """Share of each station's in-situ values inside each model's band at the station's cell.

    ``bands`` maps a model to the lower and upper ends of its band (fields as elsewhere here,
    e.g. the 5 % and 95 % quantiles). One row per (model, station inside the grid), columns
    :data:`IN_BAND_COLUMNS`: ``n_band`` days with an in-situ value and a band, ``in_band`` the
    share of them inside it (:func:`~stimpute_core.uncertainty.in_band`; NaN below
    ``min_pairs`` days), and each model's pooled ``"all"`` row over the stations with enough
    days, as :func:`station_comparison` pools. The band is for the 1 km cell's soil moisture, so
    a station that differs from its cell (a point against an area) falls outside more often.
    """
    if INSITU not in ds.data_vars or "station" not in ds.coords:
        return pd.DataFrame({c: [] for c in IN_BAND_COLUMNS}, columns=IN_BAND_COLUMNS)
    insitu = np.asarray(ds[INSITU].transpose("time", "station").values, dtype=float)
    rows, cols = station_cells(ds)
    names = [str(s) for s in ds["station"].values]
    records = []
    for model, (lower, upper) in bands.items():
        lo = _field_on(ds, lower, f"lower band of {model!r}")
        hi = _field_on(ds, upper, f"upper band of {model!r}")
        pooled = [], [], []
        for i, name in enumerate(names):
            r, c = int(rows[i]), int(cols[i])
            if r < 0 or c < 0:
                continue
            parts = insitu[:, i], lo[:, r, c], hi[:, r, c]
            share, n = in_band(*parts)
            if n >= min_pairs:
                for keep, part in zip(pooled, parts, strict=True):
                    keep.append(part)
            else:
                share = float("nan")
            records.append({"model": str(model), "station": name, "n_band": n, "in_band": share})
        share, n = in_band(*(np.concatenate(p) if p else np.empty(0) for p in pooled))
        records.append({"model": str(model), "station": "all", "n_band": n, "in_band": share})
    return pd.DataFrame(records, columns=IN_BAND_COLUMNS)


def station_nests(ds: xr.Dataset) -> pd.DataFrame:
    """The station network for a map: ``station``, ``lat``, ``lon``, ``nest``, ``row``, ``col``.

    ``nest`` comes from the ``station_nest`` coordinate (TxSON's 3/9/36 km nesting), else "";
    ``row``/``col`` from :func:`~stimpute_core.data.selection.station_cells` (-1 outside the
    grid). Empty, with these columns, when ``ds`` has no stations.
    """
    if INSITU not in ds.data_vars or "station" not in ds.coords:
        return pd.DataFrame({c: [] for c in NEST_COLUMNS}, columns=NEST_COLUMNS)
    rows, cols = station_cells(ds)
    nests = _nests(ds)
    names = [str(s) for s in ds["station"].values]
    return pd.DataFrame(
        {
            "station": names,
            "lat": np.asarray(ds["station_lat"].values, dtype=float),
            "lon": np.asarray(ds["station_lon"].values, dtype=float),
            "nest": [nests.get(s, "") for s in names],
            "row": np.asarray(rows, dtype=int),
            "col": np.asarray(cols, dtype=int),
        },
        columns=NEST_COLUMNS,
    )
