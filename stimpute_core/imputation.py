"""The imputer interface shared by the classical baselines and the ST-Transformer.

Estimators follow scikit-learn's habits: every setting goes to the constructor, ``fit(ds)`` learns
from the observed target of a contract Dataset, ``impute(ds)`` returns a complete
``soil_moisture_imputed(time, y, x)`` DataArray for (possibly another period of) the same grid.
Observed values always pass through unchanged; the truth variable is never read.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from .data.contract import TARGET

OUTPUT_NAME = "soil_moisture_imputed"


class NotFittedError(RuntimeError):
    """``impute`` was called before ``fit``."""


class Imputer(ABC):
    """Base class: constructor-only configuration, ``fit`` then ``impute``."""

    #: Short name used on the command line and in tables.
    name: ClassVar[str] = "imputer"

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

    def fit_impute(self, ds: xr.Dataset) -> xr.DataArray:
        """``fit(ds)`` then ``impute(ds)``."""
        return self.fit(ds).impute(ds)

    def _check_fitted(self, *attrs: str) -> None:
        if any(getattr(self, a, None) is None for a in attrs):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(ds) first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, or a ValueError naming the setting: the check every imputer's
    constructor makes for counts (ranks, iterations, trees, draws)."""
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


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
