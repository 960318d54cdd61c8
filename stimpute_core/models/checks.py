"""The conformance suite every registered imputer passes, in the spirit of scikit-learn's
``check_estimator``.

:func:`check_imputer` runs each check of :data:`CHECKS` on one model and raises
``AssertionError`` naming the model and the broken rule. The rules:

- the constructor only stores its settings: no other attribute, nothing fitted, and
  ``type(m)(**m.get_params())`` has the same settings (nothing is coerced or validated there);
- ``impute`` before ``fit`` raises :class:`~stimpute_core.models.base.NotFittedError`;
- ``fit`` returns the model and leaves fitted attributes, whose names end in ``_``;
- the output is a complete ``soil_moisture_imputed(time, y, x)`` on the Dataset's coordinates
  with every observed value passed through unchanged, and ``model`` naming the model;
- the truth variable is never read: changing it changes nothing;
- another period of the fitted grid is imputed; another grid is refused unless the model says
  it is ``transferable``, and then a grid of another spacing is refused;
- a probabilistic model's ``impute_distribution`` gives the field ``impute`` gives and
  ``soil_moisture_quantile(quantile, time, y, x)`` at the levels asked for, finite, ordered
  across levels, every observation kept in every level, and the same again from a second fit
  with the same settings; a deterministic model refuses with a TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import xarray as xr

from ..data.contract import TARGET, TRUTH
from .base import OUTPUT_NAME, QUANTILE_NAME, Imputer, NotFittedError, is_probabilistic

Factory = Callable[[], Imputer]


def _fail(model: Imputer, rule: str) -> AssertionError:
    return AssertionError(f"{type(model).__name__} ({model.name}): {rule}")


def check_constructor_only_stores(make: Factory, ds: xr.Dataset) -> None:
    """The constructor stores its arguments and nothing else."""
    model = make()
    params = model.get_params()
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    if sorted(params) != sorted(names):
        raise _fail(model, f"get_params gives {sorted(params)}, the constructor takes {names}")
    extra = sorted(k for k in vars(model) if k not in params)
    if extra:
        raise _fail(model, f"the constructor sets attributes beyond its settings: {extra}")
    fitted = [k for k in dir(type(model)) if k.endswith("_") and not k.startswith("_")]
    if fitted:
        raise _fail(model, f"fitted attributes exist before fit (class attributes {fitted})")
    again = type(model)(**params).get_params()
    if again != params:
        raise _fail(model, f"rebuilt from its settings it has {again}, not {params}")
    # Each setting is kept as given, not coerced: pass floats as ints where they are whole.
    given = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
    kept = type(model)(**given)
    changed = sorted(k for k, v in given.items() if getattr(kept, k) is not v)
    if changed:
        raise _fail(
            model, f"the constructor changes the settings {changed} instead of storing them"
        )


def check_not_fitted(make: Factory, ds: xr.Dataset) -> None:
    """``impute`` before ``fit`` says the model is not fitted."""
    model = make()
    try:
        model.impute(ds)
    except NotFittedError:
        return
    raise _fail(model, "impute before fit did not raise NotFittedError")


def _fit(make: Factory, ds: xr.Dataset) -> Imputer:
    model = make()
    out = model.fit(ds)
    if out is not model:
        raise _fail(model, "fit did not return the model")
    return model


def check_output(make: Factory, ds: xr.Dataset) -> None:
    """A complete field on ``ds``'s coordinates, observations kept, named for the model."""
    model = _fit(make, ds)
    fitted = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    if not fitted:
        raise _fail(model, "fit left no fitted attribute (names ending in '_')")
    out = model.impute(ds)
    target = ds[TARGET]
    if not isinstance(out, xr.DataArray) or out.name != OUTPUT_NAME:
        raise _fail(model, f"impute must return a DataArray named {OUTPUT_NAME}")
    if out.dims != target.dims or out.shape != target.shape:
        raise _fail(model, f"output {out.dims} {out.shape}, data {target.dims} {target.shape}")
    for dim in target.dims:
        if not np.array_equal(out[dim].values, target[dim].values):
            raise _fail(model, f"output coordinate '{dim}' differs from the data's")
    values = out.values
    if not np.isfinite(values).all():
        raise _fail(model, f"output holds {int((~np.isfinite(values)).sum())} NaN")
    obs = np.isfinite(target.values)
    if not np.array_equal(values[obs], target.values[obs].astype(values.dtype)):
        raise _fail(model, "observed values were not passed through unchanged")
    # A wrapper of a fitted model (Pretrained) passes on the wrapped model's name.
    inner = getattr(model, "model_", None)
    name = inner.name if isinstance(inner, Imputer) else model.name
    if out.attrs.get("model") != name:
        raise _fail(model, f"output attribute model={out.attrs.get('model')!r}, not {name!r}")


def check_truth_never_read(make: Factory, ds: xr.Dataset) -> None:
    """Fitting and imputing with another truth gives the same field."""
    if TRUTH not in ds:
        return
    a = _fit(make, ds).impute(ds).values
    other = ds.assign({TRUTH: ds[TRUTH] * 0 + 0.5})
    b = _fit(make, other).impute(other).values
    if not np.array_equal(a, b):
        raise _fail(make(), "the field changed with the truth variable: the truth was read")


def _shifted(ds: xr.Dataset, factor: float, shift: float) -> xr.Dataset:
    x0, y0 = float(ds["x"][0]), float(ds["y"][0])
    return ds.assign_coords(
        x=x0 + (ds["x"] - x0) * factor + shift, y=y0 + (ds["y"] - y0) * factor + shift
    )


def check_grids(make: Factory, ds: xr.Dataset) -> None:
    """Another period is imputed; another grid is refused unless the model is transferable."""
    model = _fit(make, ds)
    part = ds.isel(time=slice(ds.sizes["time"] // 2, None))
    if model.impute(part).shape != part[TARGET].shape:
        raise _fail(model, "another period of the fitted grid was not imputed")
    moved = _shifted(ds, 1.0, 3 * float(abs(ds["x"][1] - ds["x"][0])))
    if not model.transferable:
        try:
            model.impute(moved)
        except ValueError:
            pass
        else:
            raise _fail(model, "imputed a grid other than the fitted one")
    stretched = _shifted(ds, 2.0, 0.0)
    try:
        model.impute(stretched)
    except ValueError:
        return
    raise _fail(model, "imputed a grid of another spacing")


def check_distribution(make: Factory, ds: xr.Dataset) -> None:
    """Quantiles of a probabilistic model (module text); a TypeError from any other."""
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    if not is_probabilistic(make()):
        try:
            make().impute_distribution(ds, levels)
        except TypeError:
            return
        raise _fail(make(), "a deterministic model must refuse impute_distribution (TypeError)")
    model = _fit(make, ds)
    out = model.impute_distribution(ds, levels[::-1])
    if not isinstance(out, xr.Dataset) or {OUTPUT_NAME, QUANTILE_NAME} - set(out.data_vars):
        raise _fail(model, f"impute_distribution must return {OUTPUT_NAME} and {QUANTILE_NAME}")
    if not np.array_equal(out[OUTPUT_NAME].values, model.impute(ds).values):
        raise _fail(model, "impute_distribution's field differs from impute's")
    q = out[QUANTILE_NAME]
    if q.dims != ("quantile", *ds[TARGET].dims) or list(q["quantile"].values) != list(levels):
        raise _fail(model, f"quantiles {q.dims} at {list(q['quantile'].values)}, expected "
                    f"('quantile', time, y, x) at {list(levels)}")  # fmt: skip
    values = q.values
    if not np.isfinite(values).all() or (np.diff(values, axis=0) < 0).any():
        raise _fail(model, "quantiles must be finite and non-decreasing across levels")
    obs = np.isfinite(ds[TARGET].values)
    if not (values[:, obs] == ds[TARGET].values[obs].astype(values.dtype)).all():
        raise _fail(model, "an observed entry differs from its observation in some quantile")
    again = _fit(make, ds).impute_distribution(ds, levels)[QUANTILE_NAME].values
    if not np.array_equal(values, again):
        raise _fail(model, "two fits with the same settings gave different quantiles")


CHECKS: dict[str, Callable[[Factory, xr.Dataset], None]] = {
    "constructor_only_stores": check_constructor_only_stores,
    "not_fitted": check_not_fitted,
    "output": check_output,
    "truth_never_read": check_truth_never_read,
    "grids": check_grids,
    "distribution": check_distribution,
}


def check_imputer(make: Factory, ds: xr.Dataset) -> None:
    """Run every check of :data:`CHECKS` on the imputers ``make`` builds, with data ``ds``
    (a small contract Dataset with covariates, a truth and gaps)."""
    for check in CHECKS.values():
        check(make, ds)
