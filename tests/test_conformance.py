"""Every registered imputer passes the conformance suite (:mod:`stimpute_core.models.checks`)."""

from __future__ import annotations

import functools

import pytest

from stimpute_core.data.grid import GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.masks import apply_holdout
from stimpute_core.models import ST_VARIANTS, installed_models, make_imputer
from stimpute_core.models.base import NotFittedError
from stimpute_core.models.checks import CHECKS, check_imputer
from stimpute_core.models.pretrained import Pretrained
from stimpute_core.validation import evaluation_mask


@functools.cache
def small() -> object:
    ds = make_scenario(
        ScenarioConfig(
            seed=5, start="2019-03-01", end="2019-06-08",
            box=GridBox(row0=3400, col0=7600, nrows=9, ncols=8), n_stations=3,
        )
    )  # fmt: skip
    return apply_holdout(ds, evaluation_mask(ds).values)


def factory(name: str):
    # Networks with the smallest settings (and the fewest prior folds): the suite checks the
    # rules, not the accuracy.
    options = {"seed": 0, "profile": "tiny", "epochs": 1}
    if name in ST_VARIANTS:
        options["prior_folds"] = 2
    return lambda: make_imputer(name, **options)


@pytest.mark.parametrize("name", installed_models())
def test_registered_model_conforms(name: str) -> None:
    check_imputer(factory(name), small())


def test_name_is_the_registry_key() -> None:
    for name in installed_models():
        model = make_imputer(name)
        # The ST-Transformer's ablations are presets of one model's settings.
        assert model.name == ("st-transformer" if name in ST_VARIANTS else name)


def test_pretrained_conforms_and_does_not_learn() -> None:
    ds = small()
    fitted = make_imputer("mean").fit(ds)
    for check in ("output", "truth_never_read", "grids"):
        CHECKS[check](lambda: Pretrained(fitted), ds)
    with pytest.raises(NotFittedError):
        Pretrained(fitted).impute(ds)
    other = ds.isel(time=slice(0, 30))
    assert (Pretrained(fitted).fit(other).impute(ds) == fitted.impute(ds)).all()


def test_suite_catches_a_broken_model() -> None:
    class Leaky(type(make_imputer("mean"))):
        name = "mean"

        def impute(self, ds):
            out = super().impute(ds)
            return out.copy(data=ds["soil_moisture_true"].values)

    with pytest.raises(AssertionError, match=r"observed values|truth"):
        check_imputer(Leaky, small())
