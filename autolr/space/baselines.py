"""The tuned baselines: what a practitioner would train instead of searching, each with its LR tuned.

A study asks whether its searched schedule beats what the user would have done anyway:
pick a standard schedule and tune its learning rate, or skip the schedule altogether
(schedule-free training). Each baseline *kind* below trains an LR ladder of ``points``
rungs, as ordinary trials of the study (they count toward ``trials``, a population trains a
ladder at once, and the pruner stops hopeless rungs): a coarse ladder of peak LRs
log-spaced over its family's interval in the search space (both ends included), then, on an
engine that can queue trials part-way (Optuna), ``REFINED_RUNGS`` rungs a golden-section
step either side of the coarse ladder's best rung (``ladder_rungs``, ``refined_baselines``);
on one that cannot (Ray Tune) the whole ladder is log-spaced. The verdict then re-scores each
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


def baseline_rung(name: str) -> int:
    """The rung of a baseline from its trial name (``cosine#2`` -> 2; 0 for a name without one)."""
    rung = name.partition("#")[2]
    return int(rung) if rung.isdigit() else 0


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


REFINED_RUNGS = 2  # rungs per kind added around the best coarse rung once the coarse ladder has run
GOLDEN_STEP = 1 - 2 / (1 + math.sqrt(5))  # 0.382: a golden-section step, as a fraction of a ladder's log step


def ladder_rungs(points: int) -> tuple[int, int]:
    """``points`` rungs per kind split into (coarse, refined): the coarse ladder spans the interval, the
    refined rungs go around its best (none when fewer than 3 coarse rungs would be left)."""
    refined = REFINED_RUNGS if points - REFINED_RUNGS >= 3 else 0
    return points - refined, refined


def kind_intervals(space: SearchSpace) -> dict[str, tuple[float, float]]:
    """Each kind's LR ladder interval: standard kinds span their family's interval in ``space``;
    schedule-free spans the union of theirs (its best LR sits between a constant's and an annealed
    schedule's); Prodigy spans ``PRODIGY_LRS``."""
    intervals = {kind: space.lr_interval(KIND_SCHEDULES[kind][0]) for kind in STANDARD_KINDS}
    intervals["schedule_free"] = (min(low for low, _ in intervals.values()),
                                  max(high for _, high in intervals.values()))
    intervals["prodigy"] = PRODIGY_LRS
    return intervals


def tuned_baselines(space: SearchSpace, points: int, schedule_free: bool) -> list[Baseline]:
    """Every kind's LR ladder of ``points`` rungs over its interval (``kind_intervals``) in ``space``."""
    if points == 0:
        return []
    intervals = kind_intervals(space)
    return [
        Baseline(f"{kind}#{rung}", None, kind_spec(kind, lr, space.optimizer))
        for kind in baseline_kinds(space.optimizer, schedule_free)
        for rung, lr in enumerate(lr_ladder(*intervals[kind], points), start=1)
    ]


def refined_lrs(low: float, high: float, points: int, best: int) -> list[float]:
    """``REFINED_RUNGS`` LRs around rung ``best`` (from 0) of the ``points``-rung ladder from ``low`` to
    ``high``: a golden-section step (``GOLDEN_STEP`` of the ladder's log step) to either side, or, at an
    end of the ladder, one and two steps inward (the ladder's ends bound the LR: no rung beyond them)."""
    ladder = lr_ladder(low, high, points)
    step = math.log(ladder[1] / ladder[0])
    if best == 0:
        offsets = [GOLDEN_STEP, 1 - GOLDEN_STEP]
    elif best == points - 1:
        offsets = [-(1 - GOLDEN_STEP), -GOLDEN_STEP]
    else:
        offsets = [-GOLDEN_STEP, GOLDEN_STEP]
    return [ladder[best] * math.exp(offset * step) for offset in offsets]


def refined_baselines(space: SearchSpace, coarse: int, best_rungs: dict[str, int]) -> list[Baseline]:
    """The ``REFINED_RUNGS`` refined rungs of each kind in ``best_rungs`` (kind -> its best rung, from 1,
    on its ``coarse``-rung ladder), named after the coarse rungs (``cosine#6``)."""
    intervals = kind_intervals(space)
    return [
        Baseline(f"{kind}#{coarse + rung}", None, kind_spec(kind, lr, space.optimizer))
        for kind, best in best_rungs.items()
        for rung, lr in enumerate(refined_lrs(*intervals[kind], coarse, best - 1), start=1)
    ]
