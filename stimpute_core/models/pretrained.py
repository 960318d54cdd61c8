"""A model fitted elsewhere (a loaded checkpoint) in the same loop as the models to fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import xarray as xr

from .base import DEFAULT_QUANTILES, Imputer


class Pretrained(Imputer):
    """Wraps a fitted imputer so that ``fit`` does not train it again.

    ``fit(ds)`` only checks that ``ds`` suits the model (its ``check(ds)`` when it has one: the
    ST-Transformer refuses other covariates, units or spacing) and ``impute`` delegates, so a
    loop of ``make().fit(ds).impute(ds)`` treats a checkpoint like any other method. The data
    given to ``fit`` teach it nothing, so scores on entries hidden from ``fit`` are honest only
    if the wrapped model was trained with them hidden too.
    """

    name: ClassVar[str] = "pretrained"
    transferable: ClassVar[bool] = True

    def __init__(self, model: Any = None):
        self.model = model

    @property
    def probabilistic(self) -> bool:  # type: ignore[override]
        """Whether the wrapped model gives quantiles."""
        return bool(getattr(self.model, "probabilistic", False))

    @property
    def interval_targets(self) -> tuple[str, ...]:  # type: ignore[override]
        """What the wrapped model's intervals can be for."""
        return tuple(getattr(self.model, "interval_targets", ()))

    def fit(self, ds: xr.Dataset) -> Pretrained:
        """Check that ``ds`` suits the wrapped model; learn nothing."""
        if not isinstance(self.model, Imputer):
            raise ValueError(f"model={self.model!r}: expected a fitted imputer")
        check = getattr(self.model, "check", None)
        if check is not None:
            check(ds)
        self.model_ = self.model
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """The wrapped model's field for ``ds``."""
        self._check_fitted("model_")
        return self.model_.impute(ds)

    def impute_distribution(
        self,
        ds: xr.Dataset,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        target: str = "observation",
    ) -> xr.Dataset:
        """The wrapped model's field and quantiles for ``ds``."""
        self._check_fitted("model_")
        return self.model_.impute_distribution(ds, quantiles, target)
