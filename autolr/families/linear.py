"""linear: ``lr * (start_factor * (1 - f) + end_factor * f)``, ``f = min(step, D) / D``,
``D = steps_for(duration)`` (torch LinearLR)."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params, steps_for, steps_source
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import fraction


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """A straight line from ``start_factor * lr`` to ``end_factor * lr`` over ``duration``, then flat."""
    duration = steps_for(params["duration"], total_steps)
    start, end = params["start_factor"], params["end_factor"]
    done = min(step, duration) / duration
    return lr * (start * (1 - done) + end * done)  # exact at both ends (no cancellation)


def first_lr(lr: float, params: Params) -> float:
    """``start_factor * lr``."""
    return lr * params["start_factor"]


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: the ramp's length, then the line."""
    start, end = params["start_factor"], params["end_factor"]
    return [f"ramp_steps = {steps_source(params['duration'])}",
            "done = min(step, ramp_steps) / ramp_steps",
            f"return {lr!r} * ({start!r} * (1 - done) + {end!r} * done)"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's LinearLR with the ramp in steps."""
    return "LinearLR", {"start_factor": params["start_factor"], "end_factor": params["end_factor"],
                        "total_iters": steps_for(params["duration"], total_steps)}


FAMILY = Family(
    name="linear",
    parameters=(
        fraction("start_factor", 1.0, "LR at the start / lr"),
        fraction("end_factor", 0.0, "LR after the ramp / lr", low_open=False),
        fraction("duration", 1.0, "fraction of the run the ramp takes"),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace(
        (Param("end_factor", 0.0, 0.5), Param("duration", 0.5, 1.0)),  # a decay from lr
        fixed={"start_factor": 1.0},
    ),
    lr_factors=(0.062, 1.9),  # measured
    first_lr=first_lr,
    torch_twin=torch_twin,
    tuned_baseline={"start_factor": 1.0, "end_factor": 0.0, "duration": 1.0},  # linear decay to zero
)
