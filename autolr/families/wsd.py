"""wsd (warmup-stable-decay): ``lr`` until the last ``steps_for(decay_fraction)`` steps, then down to
``min_factor * lr`` with shape linear ``1 - q``, cosine ``(1 + cos(pi q)) / 2`` or sqrt ``1 - sqrt(q)``
over decay progress ``q`` (torch has no twin)."""

from __future__ import annotations

import math

from autolr.families.base import Family, Params, steps_for, steps_source
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import choice, fraction, min_factor


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """``lr`` while stable, then the decay's shape between ``lr`` and the floor."""
    decay_steps = steps_for(params["decay_fraction"], total_steps)
    decay_start = total_steps - decay_steps
    if step <= decay_start:
        return lr
    progress = (step - decay_start) / decay_steps
    floor = params["min_factor"] * lr
    if params["decay_shape"] == "cosine":
        shape = (1 + math.cos(math.pi * progress)) / 2
    elif params["decay_shape"] == "sqrt":
        shape = 1 - math.sqrt(progress)
    else:
        shape = 1 - progress
    return floor + (lr - floor) * shape


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: stable until the decay starts, then the shape."""
    shape = {"linear": "(1 - progress)", "cosine": "(1 + math.cos(math.pi * progress)) / 2",
             "sqrt": "(1 - math.sqrt(progress))"}[params["decay_shape"]]
    return [f"decay_steps = {steps_source(params['decay_fraction'])}",
            "decay_start = total_steps - decay_steps",
            "if step <= decay_start:  # stable",
            f"    return {lr!r}",
            "progress = (step - decay_start) / decay_steps  # 0 -> 1 through the decay",
            f"min_lr = {params['min_factor']!r} * {lr!r}",
            f"return min_lr + ({lr!r} - min_lr) * {shape}"]


FAMILY = Family(
    name="wsd",
    parameters=(
        fraction("decay_fraction", 0.2, "fraction of the run spent decaying, at the end"),
        choice("decay_shape", "linear", ("linear", "cosine", "sqrt"), "shape of the decay"),
        min_factor(),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("decay_fraction", 0.05, 0.5),
        Param("decay_shape", choices=("linear", "cosine", "sqrt")),
        Param("min_factor", 0.0, 0.1),
    )),
    lr_factors=(0.062, 1.9),  # measured
)
