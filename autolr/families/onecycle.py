"""onecycle: torch OneCycleLR's phases, up from ``lr / div_factor`` to ``lr`` over ``pct_start`` of the
run (used as a float, as torch does), then down (optionally back to the start first); momentum
(or Adam's beta1) cycles opposite to the LR when ``cycle_momentum`` is set."""

from __future__ import annotations

import math
from typing import Any

from autolr.families.base import Family, Params
from autolr.families.family_space import FamilySpace, Param
from autolr.families.parameter import Parameter, choice, fraction, momentum_cycle


def anneal(strategy: str, start: float, end: float, progress: float) -> float:
    """From ``start`` to ``end`` as ``progress`` goes from 0 to 1, along a half cosine or a line."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * progress) + 1)
    return (end - start) * progress + start


def phase(params: Params, step: int, total_steps: int) -> tuple[int, float]:
    """Which phase of torch's OneCycleLR ``step`` is in and the progress through it.

    torch's last step is ``total_steps - 1``; later steps keep its final value.
    """
    step = min(step, total_steps - 1)
    pct_start = params["pct_start"]
    if params["three_phase"]:
        ends = [float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2, total_steps - 1]
    else:
        ends = [float(pct_start * total_steps) - 1, total_steps - 1]
    start = 0.0
    for index, end in enumerate(ends):
        if step <= end or index == len(ends) - 1:
            return index, (step - start) / (end - start) if end != start else 1.0
        start = end
    raise AssertionError("unreachable: the last phase always matches")


def lr_at(lr: float, params: Params, step: int, total_steps: int) -> float:
    """The LR annealed between the current phase's ends."""
    initial = lr / params["div_factor"]
    final = initial / params["final_div_factor"]
    index, progress = phase(params, step, total_steps)
    if params["three_phase"]:  # up, back down to the initial LR, then the final anneal
        start, end = ((initial, lr), (lr, initial), (initial, final))[index]
    else:
        start, end = ((initial, lr), (lr, final))[index]
    return anneal(params["anneal_strategy"], start, end, progress)


def first_lr(lr: float, params: Params) -> float:
    """The starting LR, ``lr / div_factor``."""
    return lr / params["div_factor"]


def momentum_at(params: Params, step: int, total_steps: int) -> float | None:
    """``max_momentum`` down to ``base_momentum`` while the LR rises, back up while it falls, or None."""
    if not params["cycle_momentum"]:
        return None
    low, high = params["base_momentum"], params["max_momentum"]
    index, progress = phase(params, step, total_steps)
    start, end = ((high, low), (low, high), (high, high))[index]
    return anneal(params["anneal_strategy"], start, end, progress)


def python_body(lr: float, params: Params) -> list[str]:
    """The exported body: the phases' ends and LRs, then the anneal within the current phase."""
    pct = params["pct_start"]
    if params["three_phase"]:
        ends = f"[{pct!r} * total_steps - 1, 2 * {pct!r} * total_steps - 2, total_steps - 1]"
        lrs = "[(initial_lr, peak_lr), (peak_lr, initial_lr), (initial_lr, final_lr)]"
    else:
        ends = f"[{pct!r} * total_steps - 1, total_steps - 1]"
        lrs = "[(initial_lr, peak_lr), (peak_lr, final_lr)]"
    if params["anneal_strategy"] == "cos":
        anneal_line = "return lr_end + (lr_start - lr_end) / 2.0 * (math.cos(math.pi * progress) + 1)"
    else:
        anneal_line = "return (lr_end - lr_start) * progress + lr_start"
    return [f"peak_lr = {lr!r}",
            f"initial_lr = peak_lr / {params['div_factor']!r}",
            f"final_lr = initial_lr / {params['final_div_factor']!r}",
            f"phase_ends = {ends}  # last step of each phase",
            f"phase_lrs = {lrs}",
            "step = min(step, total_steps - 1)  # the last phase ends at step total_steps - 1",
            "start = 0.0",
            "for index, end in enumerate(phase_ends):",
            "    if step <= end or index == len(phase_ends) - 1:",
            "        progress = (step - start) / (end - start) if end != start else 1.0",
            "        lr_start, lr_end = phase_lrs[index]",
            f"        {anneal_line}",
            "    start = end"]


def torch_twin(lr: float, params: Params, total_steps: int) -> tuple[str, dict[str, Any]]:
    """torch's OneCycleLR over the whole run, with the same parameters."""
    return "OneCycleLR", {
        "max_lr": lr, "total_steps": total_steps, "pct_start": params["pct_start"],
        "anneal_strategy": params["anneal_strategy"], "cycle_momentum": params["cycle_momentum"],
        "base_momentum": params["base_momentum"], "max_momentum": params["max_momentum"],
        "div_factor": params["div_factor"], "final_div_factor": params["final_div_factor"],
        "three_phase": params["three_phase"]}


SEARCH_FIXED = {"three_phase": False, "base_momentum": 0.85, "max_momentum": 0.95}
# fastai's fit_one_cycle defaults: 25% warm-up, cosine, div 25, final div 1e5, moms 0.95-0.85.
FIT_ONE_CYCLE = {"pct_start": 0.25, "anneal_strategy": "cos", "div_factor": 25.0, "final_div_factor": 1e5,
                 "cycle_momentum": True}

FAMILY = Family(
    name="onecycle",
    parameters=(
        fraction("pct_start", 0.3, "fraction of the run spent rising to lr", high_open=True),
        choice("anneal_strategy", "cos", ("cos", "linear"), "shape of each phase"),
        Parameter("div_factor", 25.0, "lr / the starting LR", low=1.0),
        Parameter("final_div_factor", 1e4, "starting LR / the final LR", low=1.0),
        Parameter("three_phase", False, "come back down to the starting LR before the final anneal", kind="bool"),
        *momentum_cycle(0.85, 0.95, "momentum at the start and end"),
    ),
    lr_at=lr_at,
    python_body=python_body,
    space=FamilySpace((
        Param("pct_start", 0.1, 0.5),  # warm-up part of the cycle, fraction of the run
        Param("anneal_strategy", choices=("cos", "linear")),
        Param("div_factor", 5.0, 100.0, log=True),  # lr / starting LR
        Param("final_div_factor", 10.0, 1e5, log=True),  # starting LR / final LR
        Param("cycle_momentum", choices=(False, True)),
    ), fixed=SEARCH_FIXED, allows_warmup=False),
    lr_factors=(0.1, 3.1),  # measured
    first_lr=first_lr,
    momentum_at=momentum_at,
    torch_twin=torch_twin,
    ramp_param="pct_start",  # the rise to the peak
    search_baseline=FIT_ONE_CYCLE,
    tuned_baseline={**SEARCH_FIXED, **FIT_ONE_CYCLE},
)
