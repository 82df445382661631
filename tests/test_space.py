"""The search space: ranges, conditionality, baselines that Optuna reproduces exactly."""

from __future__ import annotations

import json
import math
import warnings

import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from autolr.errors import UserError
from autolr.space.search_space import BASELINES, FAMILY_SPACES, SearchSpace
from autolr.schedule.spec import FAMILIES, ScheduleSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def test_random_samples_stay_in_documented_ranges_and_conditional_names() -> None:
    space = SearchSpace(lr_low=3e-3, lr_high=0.3, search_optimizer=True)
    study = _study()
    seen_families, seen_built = set(), set()
    for _ in range(400):
        trial = study.ask()
        spec = space.sample(trial)
        seen_families.add(spec.family)
        assert 3e-3 <= spec.lr <= 0.3
        family_space = FAMILY_SPACES[spec.family]
        # only this family's parameters (and shared ones) were asked for
        prefixes = {name.split(".")[0] for name in trial.params if "." in name}
        assert prefixes <= {spec.family, "warmup", "optimizer"}
        for param in family_space.params:
            key = f"{spec.family}.{param.name}"
            if key not in trial.params:
                assert param.when is not None  # only conditional parameters may be skipped
                continue
            value = trial.params[key]
            if param.choices:
                assert value in param.choices
            else:
                assert param.low <= value <= param.high
        if spec.warmup is not None:
            assert family_space.allows_warmup
            assert 0.01 <= spec.warmup["fraction"] <= 0.2
        assert 0.0 <= spec.optimizer["momentum"] <= 0.99
        assert 1e-6 <= spec.optimizer["weight_decay"] <= 1e-2
        assert spec.optimizer["name"] == "sgd"
        if spec.family not in seen_built:  # every family's sampled spec builds a working torch scheduler
            seen_built.add(spec.family)
            parameter = torch.nn.Parameter(torch.zeros(1))
            optimizer = spec.build_optimizer([parameter])
            scheduler = spec.build(optimizer, 50)
            for step in range(49):  # the LRs of the 50 optimizer steps of a 50-step run
                optimizer.step()
                scheduler.step(1.0) if spec.family == "plateau" else scheduler.step()
                assert 0 <= optimizer.param_groups[0]["lr"] <= spec.lr * (1 + 1e-9)
        study.tell(trial, 0.0)
    assert seen_families == set(FAMILIES) == seen_built


def test_conditional_parameter_only_for_its_mode() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1e-1, families=("cyclic",))
    study = _study(1)
    modes = set()
    for _ in range(60):
        trial = study.ask()
        spec = space.sample(trial)
        modes.add(spec.params["mode"])
        assert ("cyclic.final_scale" in trial.params) == (spec.params["mode"] == "exp_range")
        assert "warmup" not in trial.params  # cyclic warms up by itself
        study.tell(trial, 0.0)
    assert modes == {"triangular", "triangular2", "exp_range"}


def test_multistep_milestones_increase_inside_the_run() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1e-1, families=("multistep",))
    study = _study(2)
    for _ in range(50):
        trial = study.ask()
        first, second = space.sample(trial).params["milestones"]
        assert 0 < first < second < 1
        study.tell(trial, 0.0)


def test_lr_interval_comes_from_the_space_not_a_constant() -> None:
    low, high = 2e-4, 5e-4
    spec = SearchSpace(lr_low=low, lr_high=high).sample(_study(3).ask())
    assert low <= spec.lr <= high
    params = {"family": "constant", "lr": 1e-2, "warmup": False}
    with pytest.warns(UserWarning, match="out of"):
        SearchSpace(lr_low=low, lr_high=high, families=("constant",)).sample(FixedTrial(params))


def test_baselines_are_reproduced_by_enqueued_optuna_trials() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1.0, search_optimizer=True)
    suggestion = 0.0437
    baselines = space.baselines(suggestion)
    assert [b.name for b in baselines] == list(BASELINES)
    study = _study(4)
    for baseline in baselines:
        study.enqueue_trial(baseline.params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an out-of-range enqueued value would warn
        for baseline in baselines:
            trial = study.ask()
            assert space.sample(trial) == baseline.spec
            study.tell(trial, 0.5)
    stored = study.trials
    for baseline, frozen in zip(baselines, stored):
        assert space.spec_from_params(frozen.params) == baseline.spec
        assert space.sample(FixedTrial(baseline.params)) == baseline.spec
    by_name = {b.name: b.spec for b in baselines}
    assert by_name["constant"].lr == suggestion and by_name["constant"].warmup is None
    assert by_name["step"].params == {"step_size": 1 / 3, "gamma": 0.1}
    assert by_name["cosine"].params == {"min_factor": 0.0}
    one = by_name["onecycle"].params
    assert (one["pct_start"], one["div_factor"], one["final_div_factor"]) == (0.25, 25.0, 1e5)
    optimizer = by_name["step"].optimizer
    assert (optimizer["name"], optimizer["momentum"], optimizer["weight_decay"]) == ("sgd", 0.9, 1e-6)


def test_baselines_follow_families_and_clip_the_suggestion() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1e-2, families=("cosine", "wsd"))
    (baseline,) = space.baselines(0.5)
    assert baseline.name == "cosine" and baseline.spec.lr == 1e-2


def test_specs_and_space_round_trip_through_json() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1e-1, families=("step", "onecycle"), warmup=False)
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    study = _study(5)
    for _ in range(10):
        trial = study.ask()
        spec = space.sample(trial)
        assert ScheduleSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
        assert math.isfinite(spec.lr)
        study.tell(trial, 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr_low": 0.1, "lr_high": 0.01}, "LR interval"),
    ({"lr_low": 0.0, "lr_high": 0.01}, "LR interval"),
    ({"lr_low": 0.1, "lr_high": 2e3}, "high <= 1000"),
    ({"lr_low": 0.1, "lr_high": 1.0, "family_lr": {"cosine": (0.1, 1e308)}}, "high <= 1000"),
    ({"lr_low": 1e-3, "lr_high": 0.01, "families": ("cosine", "bogus")}, "families"),
    ({"lr_low": 1e-3, "lr_high": 0.01, "optimizer": {"name": "lbfgs"}}, "optimizer.name"),
])
def test_bad_space_arguments_raise_user_error(kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        SearchSpace(**kwargs)


def test_spec_from_params_names_the_missing_parameter() -> None:
    space = SearchSpace(lr_low=1e-3, lr_high=1e-1)
    with pytest.raises(UserError, match="step.gamma"):
        space.spec_from_params({"family": "step", "lr": 0.01, "step.step_size": 0.3})
