"""inverse_time: ``lr / (1 + decay_rate * p)`` (torch has no twin)."""

from __future__ import annotations

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` over one plus ``decay_rate`` times the progress."""
    return lr / (1 + params["decay_rate"] * step / total_steps)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: one line."""
    return [f"return {lr!r} / (1 + {params['decay_rate']!r} * step / total_steps)"]


FAMILY = Family(
    name="inverse_time",
    parameters=(Parameter("decay_rate", 9.0, "lr / (1 + decay_rate * p)", low=0.0, low_open=True),),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((Param("decay_rate", 0.1, 100.0, log=True),)),  # lr/(1+rate*p)
    lr_factors=(0.062, 1.9),  # borrowed from linear
)
