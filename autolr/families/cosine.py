"""cosine: ``floor + (lr - floor) * (1 + cos(pi * p)) / 2``, ``floor = min_factor * lr``
(torch CosineAnnealingLR, T_max = total_steps, eta_min = floor)."""

from __future__ import annotations

import math
from typing import Any

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import min_factor


def cosine_between(floor: float, lr: float, step: int, total_steps: int) -> float:
    """Half a cosine from ``lr`` at step 0 down to ``floor`` at ``total_steps``."""
    return floor + (lr - floor) * (1 + math.cos(math.pi * step / total_steps)) / 2


def cosine_source(floor_factor: float, lr: float, cycle: str) -> list[str]:
    """Source lines returning ``cosine_between(floor_factor * lr, lr, step, <cycle>)``."""
    return [f"min_lr = {floor_factor!r} * {lr!r}",
            f"return min_lr + ({lr!r} - min_lr) * (1 + math.cos(math.pi * step / {cycle})) / 2"]


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """Half a cosine from ``lr`` down to the floor over the run."""
    return cosine_between(params["min_factor"] * lr, lr, step, total_steps)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: the floor, then the cosine."""
    return cosine_source(params["min_factor"], lr, "total_steps")


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's CosineAnnealingLR over the whole run."""
    return "CosineAnnealingLR", {"T_max": total_steps, "eta_min": params["min_factor"] * lr}


FAMILY = Family(
    name="cosine",
    parameters=(min_factor(),),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((Param("min_factor", 0.0, 0.2),)),  # floor = min_factor * lr
    lr_factors=(0.062, 1.9),  # measured
    torch_twin=torch_twin,
    search_baseline={"min_factor": 0.0},
    tuned_baseline={"min_factor": 0.0},  # cosine to zero
)
