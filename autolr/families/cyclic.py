"""cyclic: triangle waves between ``base_factor * lr`` and ``lr``, half-cycle ``steps_for(step_size_up)``;
triangular2 halves the height every cycle, exp_range scales it by ``final_scale ** p`` (torch CyclicLR).
Momentum (or Adam's beta1) cycles opposite to the LR when ``cycle_momentum`` is set."""

from __future__ import annotations

import math
from typing import Any

from autolr.families.base import Family, Params, steps_for, steps_source
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import choice, fraction, momentum_cycle


def wave(params: Params, step: int, total_steps: int) -> float:
    """Height of the cyclic wave at ``step``, from 0 (trough) to 1 (peak of the first cycle)."""
    cycle_size = 2.0 * steps_for(params["step_size_up"], total_steps)
    cycle = math.floor(1 + step / cycle_size)
    position = 1.0 + step / cycle_size - cycle
    rise = position / 0.5 if position <= 0.5 else (position - 1) / (0.5 - 1)
    if params["mode"] == "triangular2":
        return rise * (1 / (2.0 ** (cycle - 1)))
    if params["mode"] == "exp_range":
        return rise * params["final_scale"] ** (step / total_steps)
    return rise * 1.0


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """The base LR plus the wave's height times the distance to ``lr``."""
    base = params["base_factor"] * lr
    return base + (lr - base) * wave(params, step, total_steps)


def first_lr(lr: float, params: Params) -> float:
    """The wave starts at its trough, ``base_factor * lr``."""
    return params["base_factor"] * lr


def momentum_at(params: Params, step: int, total_steps: int) -> float | None:
    """``max_momentum`` at the LR's trough down to ``base_momentum`` at its peak, or None."""
    if not params["cycle_momentum"]:
        return None
    low, high = params["base_momentum"], params["max_momentum"]
    return high - (high - low) * wave(params, step, total_steps)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: the position in the cycle, the wave's height, the LR."""
    height = {"triangular": "rise * 1.0",
              "triangular2": "rise * (1 / (2.0 ** (cycle - 1)))  # halved every cycle",
              "exp_range": f"rise * {params['final_scale']!r} ** (step / total_steps)"}[params["mode"]]
    return [f"cycle_steps = 2.0 * {steps_source(params['step_size_up'])}  # one rise and one fall",
            "cycle = math.floor(1 + step / cycle_steps)",
            "position = 1.0 + step / cycle_steps - cycle  # 0 -> 1 through the cycle",
            "rise = position / 0.5 if position <= 0.5 else (position - 1) / (0.5 - 1)",
            f"height = {height}",
            f"base_lr = {params['base_factor']!r} * {lr!r}",
            f"return base_lr + ({lr!r} - base_lr) * height"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's CyclicLR with the half-cycle in steps and exp_range's per-step gamma."""
    return "CyclicLR", {
        "base_lr": params["base_factor"] * lr, "max_lr": lr,
        "step_size_up": steps_for(params["step_size_up"], total_steps), "mode": params["mode"],
        "gamma": params["final_scale"] ** (1 / total_steps), "cycle_momentum": params["cycle_momentum"],
        "base_momentum": params["base_momentum"], "max_momentum": params["max_momentum"]}


FAMILY = Family(
    name="cyclic",
    parameters=(
        fraction("base_factor", 0.1, "lowest LR / lr", high_open=True),
        fraction("step_size_up", 0.1, "fraction of the run in each rising half-cycle", high=0.5),
        choice("mode", "triangular", ("triangular", "triangular2", "exp_range"),
               "height of later cycles: same, halved each cycle, or scaled by final_scale ** p"),
        fraction("final_scale", 0.1, "exp_range: cycle height at the end / at the start"),
        *momentum_cycle(0.8, 0.9, "momentum at the LR trough"),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("base_factor", 0.01, 0.5, log=True),  # lowest LR / lr
        Param("step_size_up", 0.05, 0.5),  # fraction of the run
        Param("mode", choices=("triangular", "triangular2", "exp_range")),
        Param("final_scale", 0.01, 1.0, log=True, when=("mode", "exp_range")),
    ), fixed={"cycle_momentum": False}, allows_warmup=False),
    lr_factors=(0.062, 1.9),  # borrowed from wsd
    first_lr=first_lr,
    momentum_at=momentum_at,
    torch_twin=torch_twin,
    ramp_param="step_size_up",  # the first rise
)
