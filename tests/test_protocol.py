"""The evaluation protocol (:mod:`stimpute_core.protocol`): what is hidden, from whom, and what
a fitted model records."""

from __future__ import annotations

import numpy as np
import pytest

from stimpute_core.data.contract import TARGET
from stimpute_core.data.grid import GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.data.selection import select_time
from stimpute_core.models import make_imputer
from stimpute_core.models.baselines import MeanImputer
from stimpute_core.models.pretrained import Pretrained
from stimpute_core.protocol import (
    fit_for_evaluation,
    hide_evaluation,
    impute_for_evaluation,
    trained_without_evaluation,
)
from stimpute_core.validation import EVALUATION_HOLDOUT, evaluation_mask


@pytest.fixture(scope="module")
def full():
    return make_scenario(
        ScenarioConfig(
            seed=4, start="2020-01-01", end="2020-12-31",
            box=GridBox(row0=3400, col0=7600, nrows=8, ncols=7), n_stations=2,
        )
    )  # fmt: skip


class Spy(MeanImputer):
    """A mean imputer that keeps what it was fitted on and a training record."""

    def fit(self, ds):
        self.seen_ = ds
        self.training_ = {}
        return super().fit(ds)


def test_hide_evaluation_hides_the_whole_runs_entries_in_a_subset(full):
    hidden, mask = hide_evaluation(full)
    assert mask.any() and np.isnan(hidden[TARGET].values[mask]).all()
    np.testing.assert_array_equal(mask, evaluation_mask(full, **EVALUATION_HOLDOUT).values)
    part = select_time(full, "2020-07-01", None)
    part_hidden, part_mask = hide_evaluation(part, within=full)
    np.testing.assert_array_equal(part_mask, mask[-part.sizes["time"] :])
    np.testing.assert_array_equal(part_hidden[TARGET].values, hidden[TARGET].values[-184:])
    # Drawn on the subset alone, other days would be hidden: that is what ``within`` prevents.
    assert not np.array_equal(hide_evaluation(part)[1], part_mask)


def test_fit_for_evaluation_hides_the_entries_and_records_it(full):
    _, mask = hide_evaluation(full)
    model = fit_for_evaluation(Spy(), full)
    assert np.isnan(model.seen_[TARGET].values[mask]).all()
    observed_elsewhere = np.isfinite(full[TARGET].values) & ~mask
    assert np.isfinite(model.seen_[TARGET].values[observed_elsewhere]).all()
    assert model.training_["holdout"] == EVALUATION_HOLDOUT
    assert trained_without_evaluation(model)
    assert not trained_without_evaluation(Spy().fit(full))
    assert not trained_without_evaluation(MeanImputer().fit(full))  # keeps no record


def test_impute_for_evaluation_gives_the_full_and_the_held_out_fields(full):
    fields = impute_for_evaluation(lambda: make_imputer("mean"), full)
    whole, held = fields
    np.testing.assert_array_equal(whole.values, MeanImputer().fit(full).impute(full).values)
    hidden, _ = hide_evaluation(full)
    np.testing.assert_array_equal(held.values, MeanImputer().fit(hidden).impute(hidden).values)
    # A fitted model learns nothing from either: both fields come from its own fit.
    fitted = MeanImputer().fit(hidden)
    whole, held = impute_for_evaluation(lambda: Pretrained(fitted), full)
    np.testing.assert_array_equal(held.values, fitted.impute(hidden).values)
    np.testing.assert_array_equal(whole.values, fitted.impute(full).values)
