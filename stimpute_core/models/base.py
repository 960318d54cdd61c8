"""The imputer interface every model shares (the baselines, the references, the peers and the
ST-Transformer).

Estimators follow scikit-learn's rules: every setting goes to the constructor, which only stores
it; ``fit(ds)`` validates the settings and the data and learns, leaving fitted attributes whose
names end in ``_`` (they exist only after ``fit``), from the observed target of a contract
Dataset; ``impute(ds)`` returns a complete
``soil_moisture_imputed(time, y, x)`` DataArray for (possibly another period of) the same grid.
Observed values always pass through unchanged; the truth variable is never read.
"""

from __future__ import annotations

import inspect
import json
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from ..data.contract import TARGET

OUTPUT_NAME = "soil_moisture_imputed"
#: The quantiles of a probabilistic imputation: ``soil_moisture_quantile(quantile, time, y, x)``.
QUANTILE_NAME = "soil_moisture_quantile"
#: Quantile levels given when none are asked for (a median and a 90 % central interval).
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.5, 0.95)
#: Tolerance (metres) when comparing the grid given to ``impute`` with the fitted one.
GRID_ATOL = 1e-3


class NotFittedError(RuntimeError):
    """``impute`` was called before ``fit``."""


class Imputer(ABC):
    """Base class: constructor-only configuration, ``fit`` then ``impute``."""

    #: Short name used on the command line and in tables: the model's registry key.
    name: ClassVar[str] = "imputer"
    #: Whether ``impute`` serves a grid other than the one ``fit`` saw (same spacing): a model
    #: that learns from each cell's own covariates can; one that keeps per-cell state cannot,
    #: and refuses another grid.
    transferable: ClassVar[bool] = False
    #: Whether :meth:`impute_distribution` gives quantiles (deterministic models: False).
    probabilistic: ClassVar[bool] = False
    #: What a probabilistic model's intervals can be for (its ``target``): a new observation,
    #: and the noise-free soil moisture (see :mod:`stimpute_core.models.conformal`).
    interval_targets: ClassVar[tuple[str, ...]] = ("observation", "soil_moisture")

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments and their current values (as scikit-learn's ``get_params``)."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p in sig.parameters
            if p != "self" and sig.parameters[p].kind is not inspect.Parameter.VAR_KEYWORD
        }

    @abstractmethod
    def fit(self, ds: xr.Dataset) -> Imputer:
        """Learn from the observed ``soil_moisture`` of ``ds``; return ``self``."""

    @abstractmethod
    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Complete field for ``ds``'s grid and period; observed values are kept."""

    def impute_distribution(
        self,
        ds: xr.Dataset,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target: str = "observation",
    ) -> xr.Dataset:
        """The field (``soil_moisture_imputed``) and its quantiles (``soil_moisture_quantile``);
        only for a model whose ``probabilistic`` is True. ``target``: ``"observation"`` (where
        a new retrieval would fall, its noise included) or ``"soil_moisture"`` (the noise-free
        value); see :mod:`stimpute_core.models.conformal`."""
        raise TypeError(
            f"{self.name} gives one value per cell-day, not a distribution: wrap it for "
            "intervals (stimpute_core.models.conformal.Conformal)"
        )

    def fit_impute(self, ds: xr.Dataset) -> xr.DataArray:
        """``fit(ds)`` then ``impute(ds)``."""
        return self.fit(ds).impute(ds)

    def _validate_params(self) -> None:  # noqa: B027 (most models have nothing to check)
        """Check the settings (``fit`` calls it first: the constructor only stores them);
        raise ValueError naming the first bad one."""

    def _check_fitted(self, *attrs: str) -> None:
        if any(getattr(self, a, None) is None for a in attrs):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(ds) first")

    def _remember_grid(self, ds: xr.Dataset) -> None:
        """Keep the fitted grid's cell centres (``grid_``) for :meth:`_check_grid`."""
        self.grid_ = {d: np.asarray(ds[d].values, dtype=np.float64).copy() for d in ("y", "x")}

    def _check_grid(self, ds: xr.Dataset) -> None:
        """ValueError unless ``ds`` lies on the grid ``fit`` saw (cell centres within 1 mm)."""
        self._check_fitted("grid_")
        for dim in ("y", "x"):
            fitted, given = self.grid_[dim], np.asarray(ds[dim].values, dtype=np.float64)
            if given.shape != fitted.shape:
                raise ValueError(
                    f"grid differs from the one {type(self).__name__} was fitted on: "
                    f"{dim} has {given.size} cells, fitted {fitted.size}"
                )
            if not np.allclose(given, fitted, rtol=0.0, atol=GRID_ATOL):
                diff = float(np.max(np.abs(given - fitted)))
                raise ValueError(
                    f"grid differs from the one {type(self).__name__} was fitted on: "
                    f"{dim} coordinates differ by up to {diff:g} m"
                )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def integer(name: str, value: Any) -> int:
    """``value`` if it is an integer (not a bool), else a ValueError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is a positive integer, else a ValueError naming the setting: the check
    every imputer's ``fit`` makes for counts (ranks, iterations, trees, draws)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number above zero (not a bool)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and value > 0
    )


def as_output(ds: xr.Dataset, values: np.ndarray, imputer: Imputer) -> xr.DataArray:
    """Wrap ``values`` as the contract output for ``ds``, passing observed values through."""
    target = ds[TARGET]
    values = np.asarray(values, dtype=np.float32)
    if values.shape != target.shape:
        raise ValueError(f"imputed shape {values.shape} differs from {TARGET} shape {target.shape}")
    obs = np.isfinite(target.values)
    out = np.where(obs, target.values, values).astype(np.float32)
    return xr.DataArray(
        out,
        dims=target.dims,
        coords={k: v for k, v in target.coords.items()},
        name=OUTPUT_NAME,
        attrs={
            "long_name": "imputed soil moisture",
            "units": "m3/m3",
            "model": imputer.name,
            "model_settings": json.dumps(imputer.get_params(), default=str, sort_keys=True),
        },
    )


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """``quantiles`` as a sorted tuple of distinct levels strictly between 0 and 1, else a
    ValueError naming the bad value."""
    out = []
    for q in quantiles:
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < q < 1:
            raise ValueError(f"quantile {q!r}: expected a number strictly between 0 and 1")
        out.append(float(q))
    if not out:
        raise ValueError("no quantile levels given: expected at least one, e.g. 0.05,0.5,0.95")
    if len(set(out)) != len(out):
        raise ValueError(f"quantile levels {out}: each level may be given once")
    return tuple(sorted(out))


def as_quantiles(
    ds: xr.Dataset,
    point: xr.DataArray,
    values: np.ndarray,
    quantiles: Sequence[float],
    imputer: Imputer,
    target: str = "observation",
) -> xr.Dataset:
    """``point`` and the (quantile, time, y, x) ``values`` as one Dataset: levels sorted, values
    non-decreasing across levels and at least 0, observed entries equal to the observation in
    every quantile."""
    levels = check_quantiles(quantiles)
    order = np.argsort(np.asarray(quantiles, dtype=np.float64))
    values = np.sort(np.asarray(values, dtype=np.float64)[order], axis=0)
    observed = ds[TARGET].values
    if values.shape != (len(levels), *observed.shape):
        raise ValueError(
            f"quantile shape {values.shape}: expected {(len(levels), *observed.shape)}"
        )
    obs = np.isfinite(observed)
    values = np.where(obs[None], observed[None], np.maximum(values, 0.0)).astype(np.float32)
    coords = {"quantile": list(levels), **{k: v for k, v in point.coords.items()}}
    q = xr.DataArray(
        values,
        dims=("quantile", *point.dims),
        coords=coords,
        name=QUANTILE_NAME,
        attrs={
            **point.attrs,
            "long_name": "quantiles of imputed soil moisture",
            "interval_target": target,  # a new observation's, or the soil moisture's
        },
    )
    return xr.Dataset({point.name: point, QUANTILE_NAME: q})


def is_probabilistic(model: Any) -> bool:
    """Whether ``model`` gives quantiles (:meth:`Imputer.impute_distribution`)."""
    return bool(getattr(model, "probabilistic", False))
