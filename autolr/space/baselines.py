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

Which kinds a study gets is its ``Recipe`` (``autolr.study.definition``), chosen by the dataset's kind:

- ``Recipe.CLASSIFIER`` (image datasets, the Python API): ``constant``; ``cosine`` (to
  zero); ``onecycle`` (fastai's ``fit_one_cycle`` defaults); ``linear`` (linear decay to
  zero); then ``schedule_free`` (the ``schedulefree`` package's SGD or AdamW, matching the
  study's optimizer, at a constant LR after a 5% warmup) and ``prodigy`` (``prodigyopt``,
  Adam-family studies only; its LR is a multiplier of the step size it estimates, so its
  ladder spans ``PRODIGY_LRS`` around the package's 1.0).
- ``Recipe.LM`` (text datasets: a language model): each after a linear warmup over the
  first ``LM_WARMUP`` of the run, ``warmup_cosine`` (cosine to 10% of the peak: nanoGPT,
  GPT-3), ``warmup_linear`` (linear decay to zero), ``wsd`` (warmup-stable-decay with a
  1 - sqrt cooldown over the last 20%), then ``schedule_free`` (schedulefree's AdamW for an
  Adam-family study).

A baseline's spec is fixed: it is not a point of the search space, and the sampler does
not learn from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autolr.families import FAMILIES
from autolr.schedule.spec import ScheduleSpec
from autolr.study.definition import Recipe

if TYPE_CHECKING:
    from autolr.space.search_space import SearchSpace  # space.py imports this module



STANDARD_KINDS = ("constant", "cosine", "onecycle", "linear")
LM_KINDS = ("warmup_cosine", "warmup_linear", "wsd")
SCHEDULE_FREE_KINDS = ("schedule_free", "prodigy")
RECIPE_KINDS: dict[Recipe, tuple[str, ...]] = {Recipe.CLASSIFIER: STANDARD_KINDS, Recipe.LM: LM_KINDS}
KIND_LABELS = {
    "constant": "constant", "cosine": "cosine to zero", "onecycle": "one-cycle", "linear": "linear decay to zero",
    "warmup_cosine": "warmup, cosine to 10%", "warmup_linear": "warmup, linear decay to zero",
    "wsd": "warmup-stable-decay (20% 1-sqrt cooldown)", "schedule_free": "schedule-free", "prodigy": "Prodigy",
}
# The family and params of each kind's schedule: a standard kind is the family of its name with
# that family's ``tuned_baseline`` params (autolr/families/); the LM recipe's kinds are nanoGPT's
# cosine to 10%, linear decay to zero and WSD's 1-sqrt cooldown; schedule-free kinds train a constant LR.
KIND_SCHEDULES: dict[str, tuple[str, dict[str, Any]]] = {
    **{kind: (kind, FAMILIES[kind].tuned_baseline or {}) for kind in STANDARD_KINDS},
    "warmup_cosine": ("cosine", {"min_factor": 0.1}),
    "warmup_linear": ("linear", {"start_factor": 1.0, "end_factor": 0.0, "duration": 1.0}),
    "wsd": ("wsd", {"decay_fraction": 0.2, "decay_shape": "sqrt", "min_factor": 0.0}),
    "schedule_free": ("constant", {}),
    "prodigy": ("constant", {}),
}
SCHEDULE_FREE_WARMUP = {"fraction": 0.05, "start_factor": 0.0}  # the schedule-free paper warms up
LM_WARMUP = {"fraction": 0.05, "start_factor": 0.0}  # the LM recipe's linear warmup from 0, 5% of the run
KIND_WARMUP: dict[str, dict[str, float]] = {
    "schedule_free": SCHEDULE_FREE_WARMUP, **{kind: LM_WARMUP for kind in LM_KINDS}}
PRODIGY_LRS = (0.25, 4.0)  # Prodigy's LR multiplier: the ladder's ends
ADAM_FAMILY = ("adam", "adamw")
# The kind a budgeted study tunes first: the schedule of the plain grid a user would run anyway
# (``autolr.bench.plain_grid``): cosine to zero for an image classifier, warmup then cosine to 10% for a
# language model. Its coarse ladder also measures what a trial costs before the rest is sized.
GRID_KIND: dict[Recipe, str] = {Recipe.CLASSIFIER: "cosine", Recipe.LM: "warmup_cosine"}


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


def baseline_kinds(optimizer: dict[str, Any], schedule_free: bool,
                   recipe: Recipe = Recipe.CLASSIFIER) -> tuple[str, ...]:
    """The kinds a study with ``optimizer`` gets: its recipe's scheduled kinds, then the schedule-free ones
    (Prodigy too for an Adam-family classifier; the LM recipe's is schedule-free AdamW alone)."""
    scheduled = RECIPE_KINDS[recipe]
    if not schedule_free:
        return scheduled
    adam = optimizer.get("name") in ADAM_FAMILY
    return scheduled + (SCHEDULE_FREE_KINDS if adam and recipe is Recipe.CLASSIFIER else ("schedule_free",))


def by_priority(kinds: tuple[str, ...], recipe: Recipe) -> tuple[str, ...]:
    """``kinds`` with the recipe's ``GRID_KIND`` first, the rest in their order: the order a budget tunes them in."""
    first = GRID_KIND[recipe]
    return (first, *(kind for kind in kinds if kind != first)) if first in kinds else kinds


def lr_ladder(low: float, high: float, points: int) -> list[float]:
    """``points`` LRs log-spaced from ``low`` to ``high`` (both included; one point: their geometric mean)."""
    if points == 1:
        return [math.sqrt(low * high)]
    ratio = (high / low) ** (1.0 / (points - 1))
    return [low * ratio**index for index in range(points)]


def kind_spec(kind: str, lr: float, optimizer: dict[str, Any]) -> ScheduleSpec:
    """The baseline schedule of ``kind`` at peak LR ``lr`` for a study training with ``optimizer``."""
    family, params = KIND_SCHEDULES[kind]
    warmup = dict(KIND_WARMUP[kind]) if kind in KIND_WARMUP else None
    if kind == "schedule_free":
        kind_optimizer = schedule_free_optimizer(optimizer)
    elif kind == "prodigy":
        kind_optimizer = prodigy_optimizer(optimizer)
    else:
        kind_optimizer = dict(optimizer)
    return ScheduleSpec(family, lr, params=dict(params), warmup=warmup, optimizer=kind_optimizer)


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


def kind_intervals(space: SearchSpace, recipe: Recipe = Recipe.CLASSIFIER) -> dict[str, tuple[float, float]]:
    """Each kind's LR ladder interval: the recipe's scheduled kinds span their family's interval in
    ``space``; schedule-free spans the union of theirs (its best LR sits between a constant's and an
    annealed schedule's); Prodigy spans ``PRODIGY_LRS``."""
    intervals = {kind: space.lr_interval(KIND_SCHEDULES[kind][0]) for kind in RECIPE_KINDS[recipe]}
    intervals["schedule_free"] = (min(low for low, _ in intervals.values()),
                                  max(high for _, high in intervals.values()))
    intervals["prodigy"] = PRODIGY_LRS
    return intervals


def tuned_baselines(space: SearchSpace, points: int, schedule_free: bool,
                    recipe: Recipe = Recipe.CLASSIFIER, kinds: tuple[str, ...] | None = None) -> list[Baseline]:
    """The LR ladder of ``points`` rungs over its interval (``kind_intervals``) in ``space`` of each of
    ``kinds`` (None: every kind of ``recipe``, ``baseline_kinds``)."""
    if points == 0:
        return []
    intervals = kind_intervals(space, recipe)
    return [
        Baseline(f"{kind}#{rung}", None, kind_spec(kind, lr, space.optimizer))
        for kind in (baseline_kinds(space.optimizer, schedule_free, recipe) if kinds is None else kinds)
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


def refined_baselines(space: SearchSpace, coarse: int, best_rungs: dict[str, int],
                      recipe: Recipe = Recipe.CLASSIFIER) -> list[Baseline]:
    """The ``REFINED_RUNGS`` refined rungs of each kind in ``best_rungs`` (kind -> its best rung, from 1,
    on its ``coarse``-rung ladder), named after the coarse rungs (``cosine#6``)."""
    intervals = kind_intervals(space, recipe)
    return [
        Baseline(f"{kind}#{coarse + rung}", None, kind_spec(kind, lr, space.optimizer))
        for kind, best in best_rungs.items()
        for rung, lr in enumerate(refined_lrs(*intervals[kind], coarse, best - 1), start=1)
    ]
