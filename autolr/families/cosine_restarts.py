"""cosine_restarts: cosine within cycles of ``steps_for(first_cycle)`` steps, each ``cycle_mult``
times longer than the last (torch CosineAnnealingWarmRestarts)."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params, steps_for, steps_source
from autolr.families.cosine import cosine_between, cosine_source
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter, fraction, min_factor

MAX_CYCLE_MULT = 1000  # above it a cycle's length in steps could overflow a float before the run ends


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """The cosine of the cycle ``step`` falls in, restarted at ``lr`` each cycle."""
    cycle = steps_for(params["first_cycle"], total_steps)
    if params["cycle_mult"] == 1:
        step %= cycle
    while step >= cycle:
        step -= cycle
        cycle *= params["cycle_mult"]
    return cosine_between(params["min_factor"] * lr, lr, step, cycle)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: skip finished cycles, then the cosine within the current one."""
    mult = params["cycle_mult"]
    lines = [f"cycle_steps = {steps_source(params['first_cycle'])}  # length of the first cycle"]
    if mult == 1:
        lines.append("step %= cycle_steps  # steps into the current cycle")
    else:
        lines += [f"while step >= cycle_steps:  # skip finished cycles, each {mult}x longer than the last",
                  "    step -= cycle_steps",
                  f"    cycle_steps *= {mult}"]
    return lines + cosine_source(params["min_factor"], lr, "cycle_steps")


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's CosineAnnealingWarmRestarts with the first cycle in steps."""
    return "CosineAnnealingWarmRestarts", {"T_0": steps_for(params["first_cycle"], total_steps),
                                           "T_mult": params["cycle_mult"], "eta_min": params["min_factor"] * lr}


FAMILY = Family(
    name="cosine_restarts",
    parameters=(
        fraction("first_cycle", 0.25, "fraction of the run in the first cycle"),
        Parameter("cycle_mult", 1, "each cycle is this many times longer", kind="int", low=1, high=MAX_CYCLE_MULT),
        min_factor(),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("first_cycle", 0.1, 0.5),  # fraction of the run
        Param("cycle_mult", 1, 3, integer=True),
        Param("min_factor", 0.0, 0.2),
    )),
    lr_factors=(0.062, 1.9),  # borrowed from cosine
    torch_twin=torch_twin,
)
