"""multistep: ``lr * gamma ** (milestones passed)`` (torch MultiStepLR)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from autolr.families.base import Family, Params, steps_for
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter, fraction


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` times ``gamma`` for every milestone at or before ``step``."""
    milestones = [steps_for(milestone, total_steps) for milestone in params["milestones"]]
    return lr * params["gamma"] ** bisect_right(milestones, step)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: milestones in steps, then the count passed."""
    return [f"milestones = [max(1, round(f * total_steps)) for f in {params['milestones']!r}]",
            f"return {lr!r} * {params['gamma']!r} ** sum(1 for m in milestones if m <= step)"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's MultiStepLR with the milestones in steps."""
    return "MultiStepLR", {"gamma": params["gamma"],
                           "milestones": [steps_for(f, total_steps) for f in params["milestones"]]}


def assemble(sampled: dict[str, Any]) -> dict[str, Any]:
    """Two milestones from ``first`` and ``gap`` (fraction of the run left after the first)."""
    first, gap = sampled["first"], sampled["gap"]
    return {"milestones": [first, first + gap * (1.0 - first)], "gamma": sampled["gamma"]}


FAMILY = Family(
    name="multistep",
    parameters=(
        Parameter("milestones", [0.5, 0.75], "fractions of the run where the LR decays", kind="fractions",
                  low=0.0, high=1.0, low_open=True, high_open=True),
        fraction("gamma", 0.1, "LR multiplier at each milestone"),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("first", 0.2, 0.7),  # first milestone, fraction of the run
        Param("gap", 0.2, 0.8),  # second milestone: this fraction of what is left after the first
        Param("gamma", 0.1, 0.9, log=True),
    ), assemble=assemble),
    lr_factors=(0.062, 1.9),  # borrowed from linear
    torch_twin=torch_twin,
)
