"""plateau: ``lr`` until ``step(metric)`` sees no improvement for ``patience`` steps, then times
``factor``, never below ``min_factor * lr`` (torch ReduceLROnPlateau). Its closed form is the LR
of a run whose metric never plateaus."""

from __future__ import annotations

from typing import Any

from autolr.families.base import Family, Params, Stepping
from autolr.families.constant import lr_at as constant_lr_at
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter, choice, fraction, min_factor


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: ``lr``, the LR while the metric improves."""
    return [f"return {lr!r}  # reduce-on-plateau: the LR while the metric keeps improving"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's ReduceLROnPlateau with the floor in absolute terms."""
    return "ReduceLROnPlateau", {
        "mode": params["mode"], "factor": params["factor"], "patience": params["patience"],
        "threshold": params["threshold"], "threshold_mode": params["threshold_mode"],
        "cooldown": params["cooldown"], "min_lr": params["min_factor"] * lr}


FAMILY = Family(
    name="plateau",
    parameters=(
        fraction("factor", 0.1, "LR multiplier on a plateau", high_open=True),
        Parameter("patience", 10, "scheduler steps without improvement before reducing", kind="int", low=0),
        Parameter("threshold", 1e-4, "smallest change that counts as an improvement", low=0.0),
        choice("threshold_mode", "rel", ("rel", "abs"), "threshold relative to the best metric, or absolute"),
        Parameter("cooldown", 0, "scheduler steps to wait after a reduction", kind="int", low=0),
        min_factor(),
        choice("mode", "min", ("min", "max"), "whether a lower or a higher metric is better"),
    ),
    lr_at=constant_lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("factor", 0.1, 0.7, log=True),
        Param("patience", 0, 5, integer=True),  # in scheduler steps
        Param("cooldown", 0, 2, integer=True),
    )),
    lr_factors=(0.038, 1.9),  # borrowed from constant: constant until the plateau
    torch_twin=torch_twin,
    stepping=Stepping.PER_EPOCH_ON_METRIC,
    curve_note="drops by factor when the metric stops improving; shown as if it never does",
)
