"""step: ``lr * gamma ** (step // steps_for(step_size))`` (torch StepLR)."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params, steps_for, steps_source
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import fraction


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` times ``gamma`` once per ``step_size`` of the run."""
    return lr * params["gamma"] ** (step // steps_for(params["step_size"], total_steps))


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: the decay count from the step size."""
    return [f"step_size = {steps_source(params['step_size'])}  # steps between decays",
            f"return {lr!r} * {params['gamma']!r} ** (step // step_size)"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's StepLR with the step size in steps."""
    return "StepLR", {"step_size": steps_for(params["step_size"], total_steps), "gamma": params["gamma"]}


FAMILY = Family(
    name="step",
    parameters=(
        fraction("step_size", 0.3, "fraction of the run between decays"),
        fraction("gamma", 0.1, "LR multiplier at each decay"),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("step_size", 0.1, 0.5),  # fraction of the run between decays
        Param("gamma", 0.1, 0.9, log=True),  # LR multiplier at each decay
    )),
    lr_factors=(0.062, 1.9),  # borrowed from linear
    torch_twin=torch_twin,
    search_baseline={"step_size": 1 / 3, "gamma": 0.1},
)
