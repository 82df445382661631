"""inverse_sqrt: ``lr / sqrt(1 + p / timescale)`` (torch has no twin)."""

from __future__ import annotations

import math

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import fraction


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` over the square root of one plus the progress in timescales."""
    return lr / math.sqrt(1 + step / total_steps / params["timescale"])


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: one line."""
    return [f"return {lr!r} / math.sqrt(1 + step / total_steps / {params['timescale']!r})"]


FAMILY = Family(
    name="inverse_sqrt",
    parameters=(fraction("timescale", 0.01, "lr / sqrt(1 + p / timescale)"),),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((Param("timescale", 0.01, 1.0, log=True),)),  # lr/sqrt(1+p/timescale)
    lr_factors=(0.062, 1.9),  # borrowed from wsd
)
