"""exponential: ``lr * final_factor ** p`` (torch ExponentialLR, gamma = final_factor ** (1 / total_steps))."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import fraction


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` decayed geometrically to ``final_factor * lr`` at the end."""
    return lr * params["final_factor"] ** (step / total_steps)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: one line."""
    return [f"return {lr!r} * {params['final_factor']!r} ** (step / total_steps)"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's ExponentialLR with the per-step factor that reaches ``final_factor``."""
    return "ExponentialLR", {"gamma": params["final_factor"] ** (1 / total_steps)}


FAMILY = Family(
    name="exponential",
    parameters=(fraction("final_factor", 0.01, "LR at the end / lr"),),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((Param("final_factor", 1e-3, 0.5, log=True),)),  # LR at end / lr
    lr_factors=(0.062, 1.9),  # borrowed from linear
    torch_twin=torch_twin,
)
