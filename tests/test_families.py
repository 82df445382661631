"""The family registry: every family complete and consistent, and a new family seen everywhere from one definition."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
import subprocess
import sys
from typing import Any

import optuna
import pytest
import torch
from test_schedulers import close

import autolr.families
from autolr import families
from autolr.space.baselines import STANDARD_KINDS
from autolr.errors import SpecError
from autolr.schedule.export import to_python
from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter
from autolr.rangetest.range_test import RangeTestResult
from autolr.schedule.schedulers import torch_equivalent
from autolr.space.search_space import SearchSpace
from autolr.schedule.spec import ScheduleSpec, describe_parameters

optuna.logging.set_verbosity(optuna.logging.WARNING)
LENGTHS = (1, 2, 7, 60, 100)  # total_steps the export and the torch twin are compared over


def sampled_specs(family: Family, count: int = 8) -> list[ScheduleSpec]:
    """The family at its defaults, its baselines and ``count`` random points of its search space."""
    specs = [ScheduleSpec(family.name, 0.3)]
    if family.tuned_baseline is not None:
        specs.append(ScheduleSpec(family.name, 0.3, dict(family.tuned_baseline)))
    space = SearchSpace(lr_low=1e-3, lr_high=1.0, families=(family.name,), warmup=False)
    specs += [baseline.spec for baseline in space.baselines(0.3)]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for _ in range(count):
        trial = study.ask()
        specs.append(space.sample(trial))
        study.tell(trial, 0.0)
    return specs


def torch_twin_curve(spec: ScheduleSpec, total_steps: int) -> list[tuple[float, float]]:
    """(LR, momentum) of each of the run's steps under torch's own class (plateau: an improving metric)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=spec.lr, momentum=0.5)
    scheduler = torch_equivalent(spec, optimizer, total_steps)
    curve = []
    for step in range(total_steps):
        curve.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        optimizer.step()
        scheduler.step(1.0 / (step + 1)) if spec.family == "plateau" else scheduler.step()
    return curve


def assert_space_fits_parameters(family: Family) -> None:
    """The searched, fixed, baseline and ramp names are the family's parameters, with values in range."""
    names = {parameter.name for parameter in family.parameters}
    searched = {param.name: param for param in family.space.params}
    if family.space.assemble is None:
        assert set(searched) <= names, f"{family.name}: searched {set(searched) - names} are not parameters"
    assert set(family.space.fixed) <= names
    assert 0 < family.lr_factors[0] < family.lr_factors[1], f"{family.name}: lr_factors {family.lr_factors}"
    if family.search_baseline is not None:
        assert set(family.search_baseline) <= set(searched)
        for name, value in family.search_baseline.items():
            param = searched[name]
            assert value in param.choices if param.choices else param.low <= value <= param.high, (name, value)
    if family.tuned_baseline is not None:
        assert set(family.tuned_baseline) <= names
    if family.ramp_param is not None:
        ramp = next(parameter for parameter in family.parameters if parameter.name == family.ramp_param)
        assert ramp.kind == "float" and ramp.high is not None and ramp.high <= 1, f"{family.name}: ramp {ramp}"


def assert_curves_agree(spec: ScheduleSpec) -> None:
    """First LR, exported Python and torch twin (where there is one) all follow ``spec.lr_at``."""
    assert spec.first_lr() == pytest.approx(spec.lr_at(0, 100), rel=1e-12), spec
    namespace: dict[str, Any] = {}
    exec(compile(to_python(spec), "<export>", "exec"), namespace)
    twin = families.FAMILIES[spec.family].torch_twin
    cycles_momentum = spec.momentum_at(0, 100) is not None
    for total_steps in LENGTHS:
        lrs = [spec.lr_at(step, total_steps) for step in range(total_steps + 3)]
        assert [namespace["lr_at"](step, total_steps) for step in range(total_steps + 3)] == pytest.approx(
            lrs, rel=1e-12, abs=1e-18), (spec, total_steps)
        if twin is None or (spec.family == "onecycle" and total_steps < 10):  # torch: no empty phases
            continue
        for step, (lr, momentum) in enumerate(torch_twin_curve(spec, total_steps)):
            assert close(lrs[step], lr, spec.lr), (spec, total_steps, step, lrs[step], lr)
            if cycles_momentum:
                assert close(spec.momentum_at(step, total_steps), momentum, 1.0), (spec, total_steps, step)


def assert_complete(family: Family) -> None:
    """Everything a family defines fits together; a half-done family fails here."""
    assert_space_fits_parameters(family)
    for spec in sampled_specs(family):
        assert_curves_agree(spec)


def test_every_module_of_the_package_is_registered_under_its_own_name():
    modules = {info.name: importlib.import_module(f"autolr.families.{info.name}")
               for info in pkgutil.iter_modules(autolr.families.__path__)}
    defined = {name: module.FAMILY for name, module in modules.items() if hasattr(module, "FAMILY")}
    assert len(defined) == 14 == len(families.FAMILIES)
    assert defined == families.FAMILIES
    assert all(family.name == name for name, family in families.FAMILIES.items())
    assert set(modules) - set(defined) == {"base", "family_space", "parameter"}  # the support modules


@pytest.mark.parametrize("name", list(families.FAMILIES))
def test_every_registered_family_is_complete(name):
    assert_complete(families.FAMILIES[name])


def test_families_and_spec_import_neither_torch_nor_optuna():
    code = "import sys, autolr.families, autolr.schedule.spec; print(sorted({'torch', 'optuna'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_standard_baseline_kinds_are_the_families_with_a_tuned_baseline():
    with_tuned = {name for name, family in families.FAMILIES.items() if family.tuned_baseline is not None}
    assert set(STANDARD_KINDS) == with_tuned == {"constant", "cosine", "onecycle", "linear"}


def test_torch_twins_are_where_torch_has_the_family():
    assert [name for name, family in families.FAMILIES.items() if family.torch_twin is None] == [
        "inverse_time", "inverse_sqrt", "wsd"]


# A family as a contributor would add it: this one definition, in autolr/families/halving.py.
def halving_lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    return lr * 0.5 ** (step * params["halvings"] // total_steps)


def halving_body(lr: float, params: Params) -> list[str]:
    return [f"return {lr!r} * 0.5 ** (step * {params['halvings']!r} // total_steps)"]


def halving_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    halvings = params["halvings"]
    return "MultiStepLR", {"gamma": 0.5,
                           "milestones": [math.ceil(k * total_steps / halvings) for k in range(1, halvings + 1)]}


HALVING = Family(
    name="halving",
    parameters=(Parameter("halvings", 2, "times the LR halves over the run", kind="int", low=1),),
    lr_at=halving_lr_at,
    python_body=halving_body,
    space=FamilySpace((Param("halvings", 1, 4, integer=True),)),
    lr_factors=(1 / 8, 4.0),
    torch_twin=halving_twin,
    search_baseline={"halvings": 2},
)


@pytest.fixture
def halving(monkeypatch: pytest.MonkeyPatch) -> Family:
    """HALVING in the registry for one test (what importing its module from the registry does)."""
    monkeypatch.setitem(families.FAMILIES, "halving", HALVING)
    return HALVING


def test_a_new_family_is_seen_by_spec_export_torch_and_search_from_its_definition_alone(halving):
    spec = ScheduleSpec("halving", 0.1)
    assert spec.params == {"halvings": 2}
    assert [spec.lr_at(step, 100) for step in (0, 49, 50, 99, 100)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert ScheduleSpec.from_text(spec.to_text("toml"), "toml") == spec
    with pytest.raises(SpecError, match=r"params.halvings must be an integer >= 1, got 0"):
        ScheduleSpec("halving", 0.1, {"halvings": 0})
    assert "params of halving:\n  halvings            2" in describe_parameters()
    assert_complete(halving)  # export, torch twin, first LR and search space agree

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ScheduleSpec("halving", 0.1, {"halvings": 3}).build(optimizer, 30)
    seen = []
    for _ in range(30):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == [0.1] * 10 + [0.05] * 10 + [0.025] * 10

    space = SearchSpace.from_range_test(
        RangeTestResult(lrs=[0.01, 0.1], losses=[2.0, 1.0], smoothed_losses=[2.0, 1.0], stopped_at=2,
                        stop_reason="diverged", suggestions={"loss_min": 0.08}, suggestion=0.02,
                        interval=(0.002, 0.08)),
        families=("halving",))
    assert space.lr_interval("halving") == pytest.approx((0.01, 0.32))
    [baseline] = space.baselines(0.05)
    assert baseline.params == {"family": "halving", "lr": 0.05, "halving.halvings": 2, "warmup": False}
    assert baseline.spec == ScheduleSpec("halving", 0.05, {"halvings": 2}, optimizer=space.optimizer)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {space.sample(study.ask()).params["halvings"] for _ in range(40)}
    assert drawn == {1, 2, 3, 4}


def test_a_half_done_family_fails_the_completeness_check(halving):
    wrong_export = dataclasses.replace(halving, python_body=lambda lr, params: [f"return {lr!r} * 0.5"])
    families.FAMILIES["halving"] = wrong_export
    with pytest.raises(AssertionError):
        assert_complete(wrong_export)
    wrong_twin = dataclasses.replace(halving, torch_twin=lambda lr, params, total_steps: (
        "StepLR", {"step_size": max(1, total_steps // params["halvings"]), "gamma": 0.5}))
    families.FAMILIES["halving"] = wrong_twin
    with pytest.raises(AssertionError):  # off by a step where total_steps is not a multiple of halvings
        assert_complete(wrong_twin)
    families.FAMILIES["halving"] = dataclasses.replace(halving, search_baseline={"halvings": 9})
    with pytest.raises(AssertionError):  # a baseline outside the searched range
        assert_space_fits_parameters(families.FAMILIES["halving"])
