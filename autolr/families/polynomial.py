"""polynomial: ``lr * (1 - p) ** power`` (torch PolynomialLR, total_iters = total_steps)."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` times the remaining fraction of the run to the ``power``."""
    return lr * (1.0 - step / total_steps) ** params["power"]


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: one line."""
    return [f"return {lr!r} * (1.0 - step / total_steps) ** {params['power']!r}"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's PolynomialLR over the whole run."""
    return "PolynomialLR", {"total_iters": total_steps, "power": params["power"]}


FAMILY = Family(
    name="polynomial",
    parameters=(Parameter("power", 1.0, "lr * (1 - p) ** power", low=0.0, low_open=True),),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((Param("power", 0.5, 3.0),)),
    lr_factors=(0.062, 1.9),  # borrowed from linear
    torch_twin=torch_twin,
)
