"""constant: ``lr`` throughout (torch ConstantLR with factor 1)."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` at every step."""
    return lr


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: return ``lr``."""
    return [f"return {lr!r}"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's ConstantLR that never changes the LR."""
    return "ConstantLR", {"factor": 1.0, "total_iters": 0}


FAMILY = Family(
    name="constant",
    parameters=(),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace(),
    lr_factors=(0.038, 1.9),  # measured
    torch_twin=torch_twin,
    search_baseline={},
    tuned_baseline={},
)
