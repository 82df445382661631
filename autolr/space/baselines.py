"""The tuned baselines: what a practitioner would train instead of searching, each with its LR tuned.

A study asks whether its searched schedule beats what the user would have done anyway:
pick a standard schedule and tune its learning rate, or skip the schedule altogether
(schedule-free training). Each baseline *kind* below trains an LR ladder: ``points``
peak LRs log-spaced over its family's interval in the search space (both ends included),
as ordinary trials of the study (they count toward ``trials``, a population trains a
ladder at once, and the pruner stops hopeless rungs). The verdict then re-scores each
kind's best rung on fresh seeds against the best searched schedules.

Kinds: ``constant``; ``cosine`` (to zero); ``onecycle`` (fastai's ``fit_one_cycle``
defaults); ``linear`` (linear decay to zero); ``schedule_free`` (the ``schedulefree``
package's SGD or AdamW, matching the study's optimizer, at a constant LR after a 5%
warmup); ``prodigy`` (``prodigyopt``, Adam-family studies only; its LR is a multiplier of
the step size it estimates, so its ladder spans ``PRODIGY_LRS`` around the package's 1.0).
A baseline's spec is fixed: it is not a point of the search space, and the sampler does
not learn from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autolr.families import FAMILIES
from autolr.schedule.spec import ScheduleSpec

if TYPE_CHECKING:
    from autolr.space.search_space import SearchSpace  # space.py imports this module

STANDARD_KINDS = ("constant", "cosine", "onecycle", "linear")
SCHEDULE_FREE_KINDS = ("schedule_free", "prodigy")
KIND_LABELS = {
    "constant": "constant", "cosine": "cosine to zero", "onecycle": "one-cycle", "linear": "linear decay to zero",
    "schedule_free": "schedule-free", "prodigy": "Prodigy",
}
# The family and params of each kind's schedule: a standard kind is the family of its name with
# that family's ``tuned_baseline`` params (autolr/families/); schedule-free kinds train a constant LR.
KIND_SCHEDULES: dict[str, tuple[str, dict[str, Any]]] = {
    **{kind: (kind, FAMILIES[kind].tuned_baseline or {}) for kind in STANDARD_KINDS},
    "schedule_free": ("constant", {}),
    "prodigy": ("constant", {}),
}
SCHEDULE_FREE_WARMUP = {"fraction": 0.05, "start_factor": 0.0}  # the schedule-free paper warms up
PRODIGY_LRS = (0.25, 4.0)  # Prodigy's LR multiplier: the ladder's ends
ADAM_FAMILY = ("adam", "adamw")


@dataclass(frozen=True)
class Baseline:
    """One baseline trial queued before the search.

    ``name`` is unique in the study (``cosine#2``: the kind, then the rung from 1).
    ``params`` is the trial's parameter dict when the baseline is a point of the search space
    (the Python API's baselines at one LR, which the sampler learns from), or None for a fixed
    spec outside it (the tuned ladders).
    """

    name: str
    params: dict[str, Any] | None
    spec: ScheduleSpec


def baseline_kind(name: str) -> str:
    """The kind of a baseline from its trial name (``cosine#2`` -> ``cosine``)."""
    return name.partition("#")[0]


def baseline_kinds(optimizer: dict[str, Any], schedule_free: bool) -> tuple[str, ...]:
    """The kinds a study with ``optimizer`` gets: the standard four, then the schedule-free ones."""
    if not schedule_free:
        return STANDARD_KINDS
    extra = SCHEDULE_FREE_KINDS if optimizer.get("name") in ADAM_FAMILY else ("schedule_free",)
    return STANDARD_KINDS + extra


def lr_ladder(low: float, high: float, points: int) -> list[float]:
    """``points`` LRs log-spaced from ``low`` to ``high`` (both included; one point: their geometric mean)."""
    if points == 1:
        return [math.sqrt(low * high)]
    ratio = (high / low) ** (1.0 / (points - 1))
    return [low * ratio**index for index in range(points)]


def kind_spec(kind: str, lr: float, optimizer: dict[str, Any]) -> ScheduleSpec:
    """The baseline schedule of ``kind`` at peak LR ``lr`` for a study training with ``optimizer``."""
    family, params = KIND_SCHEDULES[kind]
    if kind == "schedule_free":
        return ScheduleSpec(family, lr, params=dict(params), warmup=dict(SCHEDULE_FREE_WARMUP),
                            optimizer=schedule_free_optimizer(optimizer))
    if kind == "prodigy":
        return ScheduleSpec(family, lr, params=dict(params), optimizer=prodigy_optimizer(optimizer))
    return ScheduleSpec(family, lr, params=dict(params), optimizer=dict(optimizer))


def schedule_free_optimizer(optimizer: dict[str, Any]) -> dict[str, Any]:
    """schedulefree's SGD (momentum, weight decay kept) or, for Adam-family studies, its AdamW."""
    if optimizer.get("name") in ADAM_FAMILY:
        keep: dict[str, Any] = {key: optimizer[key] for key in ("betas", "eps", "weight_decay") if key in optimizer}
        return {"name": "schedulefree_adamw", **keep}
    keep = {key: optimizer[key] for key in ("momentum", "weight_decay") if key in optimizer}
    return {"name": "schedulefree_sgd", **keep}


def prodigy_optimizer(optimizer: dict[str, Any]) -> dict[str, Any]:
    """Prodigy with the study's betas and weight decay."""
    return {"name": "prodigy", **{key: optimizer[key] for key in ("betas", "weight_decay") if key in optimizer}}


def tuned_baselines(space: SearchSpace, points: int, schedule_free: bool) -> list[Baseline]:
    """Every kind's LR ladder of ``points`` rungs over its interval in ``space`` (a SearchSpace).

    Standard kinds span their family's interval; schedule-free spans the union of the
    standard kinds' intervals (its best LR sits between a constant's and an annealed
    schedule's); Prodigy spans ``PRODIGY_LRS``.
    """
    if points == 0:
        return []
    intervals = {kind: space.lr_interval(KIND_SCHEDULES[kind][0]) for kind in STANDARD_KINDS}
    intervals["schedule_free"] = (min(low for low, _ in intervals.values()),
                                  max(high for _, high in intervals.values()))
    intervals["prodigy"] = PRODIGY_LRS
    return [
        Baseline(f"{kind}#{rung}", None, kind_spec(kind, lr, space.optimizer))
        for kind in baseline_kinds(space.optimizer, schedule_free)
        for rung, lr in enumerate(lr_ladder(*intervals[kind], points), start=1)
    ]
