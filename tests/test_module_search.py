"""autolr.search_module: a schedule search over the user's own model, its trials trained as module populations."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import autolr
from autolr.training.module_population import build_member


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return autolr.splits_from_tensors(torch.tensor(data.data[:700], dtype=torch.float32), torch.tensor(data.target[:700]))


@pytest.mark.slow  # about 12 s: 6 trials stored in SQLite, then a resume
def test_search_module_trains_the_asked_trials_and_each_value_is_the_single_trial(digits, tmp_path):
    space = autolr.SearchSpace(lr_low=0.01, lr_high=0.5, families=("constant", "cosine", "onecycle"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = autolr.search_module(make_model, digits, space, n_trials=6, epochs=2, batch_size=64, population=3,
                                  storage=storage, study_name="digits", pruner="none", seed=4, baseline_lrs=0,
                                  rescore_seeds=0)
    table = result.to_dataframe()
    assert len(table) == 6 and set(table["state"]) == {"complete"}
    assert result.best_value > 0.8 and result.best_spec is not None
    for trial in result.record.trials[2:4]:  # one member each of the first two populations
        spec = autolr.ScheduleSpec.from_dict(trial.spec)
        single = autolr.train_trial(spec, build_member(make_model, 4), digits, 2, 64, seed=4, data_seed=4)
        assert single.val_scores == pytest.approx(trial.val_curve, abs=1e-6)
    again = autolr.search_module(make_model, digits, space, n_trials=6, epochs=2, batch_size=64, population=3,
                                 storage=storage, study_name="digits", pruner="none", seed=4, baseline_lrs=0,
                                 rescore_seeds=0)
    assert len(again.to_dataframe()) == 6  # resumed: nothing trained again


def test_bad_population_is_a_user_error(digits):
    space = autolr.SearchSpace(lr_low=0.01, lr_high=0.5, families=("constant",))
    with pytest.raises(autolr.UserError, match="population must be a positive integer, got 0"):
        autolr.search_module(make_model, digits, space, n_trials=2, epochs=1, population=0)
