"""The Python API gets the same honest answer as the built-in studies: tuned baselines, fresh seeds, a verdict.

Through ``autolr.search``: an objective whose score is pure noise gets "no gain" and exports a
baseline; one where a searched family is truly 0.03 better (noise 0.004) gets "gain" and
exports that family. Through ``autolr.search_module``: a module on labels it cannot learn gets
"no gain"; one whose searched configuration (momentum, searched beside the schedule) truly
trains better than every LR-tuned baseline gets "gain".
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import autolr
from autolr.space.baselines import STANDARD_KINDS

EPOCHS = 4


def noise(schedule: autolr.ScheduleSpec, seed: int) -> random.Random:
    """A random stream fixed by the configuration and the seed (the same run gives the same noise)."""
    key = json.dumps([schedule.to_dict(), seed], sort_keys=True).encode()
    return random.Random(hashlib.sha256(key).digest())


def pure_noise(schedule: autolr.ScheduleSpec, trial) -> dict[str, float]:
    """The same score for every schedule, plus +-0.01 of noise that depends on the seed and the configuration."""
    draws = noise(schedule, trial.seed)
    for epoch in range(trial.epochs):
        trial.report(0.9 + draws.uniform(-0.01, 0.01), epoch)
    return {"val": 0.9 + draws.uniform(-0.01, 0.01), "test": 0.9 + draws.uniform(-0.01, 0.01)}


def exponential_is_better(schedule: autolr.ScheduleSpec, trial) -> float:
    """0.03 better for the exponential family (searched only: no baseline is exponential), noise sd 0.004."""
    draws = noise(schedule, trial.seed)
    base = 0.9 + (0.03 if schedule.family == "exponential" else 0.0)
    for epoch in range(trial.epochs):
        trial.report(base + draws.gauss(0.0, 0.004), epoch)
    return base + draws.gauss(0.0, 0.004)


SPACE = autolr.SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine", "exponential"))


def test_pure_noise_gets_no_gain_and_exports_a_tuned_baseline():
    result = autolr.search(pure_noise, space=SPACE, n_trials=24, epochs=EPOCHS, baseline_lrs=2, rescore_seeds=5,
                           pruner="none", seed=0)
    verdict = result.verdict
    assert verdict.outcome == "no gain" and verdict.sentence.startswith("No searched schedule beat")
    exported = result.record.rescored[verdict.exported]
    assert exported.baseline in STANDARD_KINDS and verdict.exported == verdict.best_baseline
    assert result.best_spec.provenance["verdict"] == "no gain"
    assert verdict.val_gain.low < 0 < verdict.val_gain.high and abs(verdict.val_gain.mean) < 0.01
    assert len(exported.val_scores) == 5 and len(set(exported.val_scores)) == 5  # re-run on 5 fresh seeds
    assert all(seed >= 1000 for seed in exported.seeds)  # none of them the search's seed


def test_a_family_truly_better_by_0_03_gets_gain_and_is_exported():
    result = autolr.search(exponential_is_better, space=SPACE, n_trials=24, epochs=EPOCHS, baseline_lrs=2,
                           rescore_seeds=5, pruner="none", seed=0)
    verdict = result.verdict
    assert verdict.outcome == "gain" and "exported exponential" in verdict.sentence
    assert result.best_spec.family == "exponential" and result.best_spec.provenance["verdict"] == "gain"
    assert verdict.val_gain.low > 0.01 and verdict.val_gain.mean == pytest.approx(0.03, abs=0.008)
    assert "test" not in verdict.sentence  # the objective returned no test score: none is claimed


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    return torch.tensor(data.data, dtype=torch.float32) / 16, torch.tensor(data.target)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.mark.slow
def test_search_module_on_labels_it_cannot_learn_gets_no_gain(digits):
    x, y = digits
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]  # labels carry no signal
    space = autolr.SearchSpace(lr_low=0.01, lr_high=0.5, families=("constant", "cosine", "step"))
    result = autolr.search_module(mlp, (x, shuffled), space, n_trials=16, epochs=2, batch_size=64, population=8,
                                  baseline_lrs=2, rescore_seeds=4, pruner="none")
    assert result.verdict.outcome == "no gain"
    assert result.record.rescored[result.verdict.exported].baseline is not None
    assert max(result.record.rescored[result.verdict.exported].val_scores) < 0.25  # chance is 0.1


@pytest.mark.slow
def test_search_module_finds_a_configuration_truly_better_than_every_tuned_baseline(digits):
    # Plain SGD (the user's optimizer) at LRs up to 0.01 barely trains in 3 epochs (one-cycle, which
    # cycles momentum, trains best of the baselines); the search also tries momentum
    # (search_optimizer), which multiplies the effective step: a real, large gain.
    space = autolr.SearchSpace(lr_low=1e-3, lr_high=1e-2, families=("constant", "cosine"),
                               optimizer={"name": "sgd", "momentum": 0.0}, search_optimizer=True)
    result = autolr.search_module(mlp, digits, space, n_trials=32, epochs=3, batch_size=64, population=8,
                                  baseline_lrs=2, rescore_seeds=4, pruner="none", schedule_free=False)
    verdict = result.verdict
    assert verdict.outcome == "gain" and verdict.val_gain.low > 0.03
    assert result.record.rescored[verdict.best_baseline].baseline == "onecycle"
    assert result.best_spec.optimizer["momentum"] > 0.5  # the export is the searched configuration


def test_an_interrupted_re_scoring_resumes_from_its_finished_seeds(tmp_path):
    """A Ctrl-C while re-scoring seed 1002 keeps seeds 1000 and 1001 of every finalist: the rerun trains
    no search trial and no seed it had finished (counted by the calls of the objective), and its re-scoring
    and verdict are those of an uninterrupted re-scoring."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    settings = dict(space=SPACE, n_trials=12, epochs=EPOCHS, baseline_lrs=1, rescore_top=2, rescore_seeds=5,
                    pruner="none", seed=0)

    def stopped_at_seed_1002(schedule, trial):
        if trial.seed == 1002:
            raise KeyboardInterrupt
        return pure_noise(schedule, trial)

    with pytest.raises(KeyboardInterrupt):
        autolr.search(stopped_at_seed_1002, storage=storage, **settings)
    calls: list[int] = []

    def counted(schedule, trial):
        calls.append(trial.seed)
        return pure_noise(schedule, trial)

    resumed = autolr.search(counted, storage=storage, **settings)
    rescored = resumed.record.rescored
    assert len(rescored) == 2 + 4  # the top 2 searched and one rung of each standard kind
    assert all(r.seeds[:2] == [1000, 1001] for r in rescored)  # all kept the two seeds finished before the stop
    expected = sorted(seed for r in rescored for seed in r.seeds if seed >= 1002)  # in rounds: some stop early
    assert sorted(calls) == expected and 1002 in calls  # no search trial, no seed trained twice
    whole = autolr.search(pure_noise, storage=f"sqlite:///{tmp_path / 'whole.db'}", **settings)
    assert resumed.record.rescored == whole.record.rescored and resumed.verdict == whole.verdict
