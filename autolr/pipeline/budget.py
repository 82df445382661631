"""A study's budget, in minutes or in plain grids: which baseline kinds are tuned, and how many search
trials, refined rungs and re-scoring runs fit in it.

A budgeted study tunes its baseline kinds in priority order (``space.baselines.by_priority``): first
the schedule of the plain grid a user would run anyway (cosine to zero for an image classifier),
whose coarse ladder (``pipeline.run``) measures what a trial costs here: ``run_s``, the median wall
time of one population of complete trials (they train at once) at the search's length. The rest is
sized from it and from the time left: the budget less everything spent since the study started
(storage, data, range test, that first ladder) and ``REPORT_ALLOWANCE_S`` for the verdict and the
report. The rest is counted in populations (``population`` trials or runs at once), runs at the
verdict's length costing ``run_s`` times their length over the search's:

- the further kinds' coarse ladders, the search and the refined rungs: ``ceil(trials / population)``
  populations, less the trials already run;
- the re-scoring, at most: each fresh seed trains every finalist (the ``rescore_top`` best
  searched and one per re-scored baseline kind), and the LR check trains each finalist at its own LR
  and two leaders at the other LRs, from ``lr_check_seeds`` seeds; these runs train stacked in
  populations, a run costing ``run_s / population`` (as on a CPU, where a population of K costs
  about K runs; the grid's estimate makes the same assumption).

A budget in grids (``SearchDefinition.budget_grids``) is a multiple of the plain grid a
user would run anyway: ``GRID_POINTS`` single runs, one after another, at the verdict's
length (:func:`grid_seconds`). The shipped image studies default to 2 grids.

When the whole study would not fit, it cuts, in this order, until it does: the search
trials (a population at a time, down to one kind's ladder, coarse and refined: the search never gets
less tuning effort than a baseline kind), the refined rungs (then the search down to the coarse
ladder's size), the re-scored searched configurations (down to
1), the re-scored baseline kinds (the best by their best rung's score, down to 1), the tuned
baseline kinds (the last in priority order first, down to the plain grid's: the verdict then
says it was against that one), the fresh seeds (down to ``MIN_SEEDS``), the LR check's seeds (down
to ``MIN_LR_CHECK_SEEDS``: on one seed the check kept a baseline at its trial-length LR where two
moved it, and a 9-epoch MNIST study then claimed a gain that the whole study and a plain grid did
not confirm). What it cut is said in words (:attr:`BudgetPlan.cuts`), which the CLI and the report print.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from autolr.pipeline.rescore import LR_CHECK_FACTORS
from autolr.space.baselines import GRID_KIND, KIND_LABELS
from autolr.study.definition import SearchDefinition
from autolr.study.reach import FIRST_ROUND
from autolr.study.records import TrialRecord, TrialState

GRID_POINTS = 12  # peak LRs of the plain grid a budget in grids is a multiple of
MIN_LR_CHECK_SEEDS = 2  # fewest seeds a budget leaves the LR check (the module docstring says why not 1)
# seconds kept for what runs after the plan besides training: the verdict (scipy.special) and the report
# (charts, HTML, plotly's import): of the order of a second on a 2-core CPU for the shipped MNIST study
REPORT_ALLOWANCE_S = 1.0
MIN_SEEDS = FIRST_ROUND + 1  # fewest fresh seeds a budget cuts to: two give a 95% interval 12.7 standard errors wide


@dataclass(frozen=True)
class BudgetPlan:
    """What the study runs after its first coarse ladder: ``ladder_kinds`` tuned baseline kinds, ``search``
    sampled trials, ``refined`` rungs per tuned kind, ``rescore_top``, ``rescore_kinds`` (the best baseline
    kinds re-scored) and ``rescore_seeds``;
    ``estimate_s`` what that is expected to take (seconds), ``cuts`` what was cut to fit, in words
    (empty: nothing); ``budget_s`` the whole study's budget (seconds)."""

    search: int
    refined: int
    rescore_top: int
    rescore_seeds: int
    estimate_s: float
    cuts: list[str]
    rescore_kinds: int | None = None  # None: every kind (a plan stored before kinds were cut)
    lr_check_seeds: int | None = None  # None: the definition's
    budget_s: float | None = None
    ladder_kinds: int | None = None  # kinds whose ladders run, the first in priority order (None: every kind)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BudgetPlan":
        return cls(**data)


def population_seconds(trials: Sequence[TrialRecord], epochs: int | None) -> float | None:
    """The median wall time of one population of complete trials (seconds), from ``trials`` that ran
    (a pruned one scaled to ``epochs``); None when none ran."""
    times = [float(t.duration_s) * (epochs / t.epochs_run if epochs and t.state != TrialState.COMPLETE else 1.0)
             for t in trials if t.duration_s and t.epochs_run and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return statistics.median(times) if times else None


def grid_seconds(run_s: float, population: int, definition: SearchDefinition) -> float:
    """What the plain grid would take here (seconds): ``GRID_POINTS`` single runs at the verdict's length,
    one run costing a population's ``run_s`` over its ``population`` members (so on a CPU, where a
    population of K costs about K runs; on a GPU a single run costs more, and the estimate is low)."""
    longer = (definition.verdict_epochs or 1) / (definition.epochs or 1)
    return GRID_POINTS * run_s / population * longer


def budget_seconds(definition: SearchDefinition, run_s: float, population: int) -> float:
    """The whole study's budget (seconds): its minutes, else its grids (``grid_seconds``)."""
    if definition.budget is not None:
        return 60.0 * definition.budget
    assert definition.budget_grids is not None, "a budgeted study has minutes or grids"
    return definition.budget_grids * grid_seconds(run_s, population, definition)


def budget_note(definition: SearchDefinition, plan: BudgetPlan) -> str:
    """The plan in one sentence for the CLI and the report: the budget, and what was cut to fit it."""
    if definition.budget is not None:
        budget = f"{definition.budget:g}-minute budget"
    else:
        budget = (f"budget of {definition.budget_grids:g} plain grids (about {plan.budget_s or 0:.0f} s: "
                  f"{GRID_POINTS} LRs of one schedule at {definition.verdict_epochs} epochs, estimated from "
                  "its first trials; --full runs the whole study)")
    return f"To fit its {budget} the study cut {'; '.join(plan.cuts)}." if plan.cuts else \
        f"The whole study fits its {budget}."


@dataclass(frozen=True)
class Sizes:
    """How much of each part of the study a plan keeps: ``search`` sampled trials, ``refined`` rungs per tuned
    kind, ``top`` re-scored searched configurations, ``rescored_kinds`` re-scored baseline kinds, ``ladders``
    tuned baseline kinds, ``seeds`` fresh seeds at most, ``check_seeds`` the LR check's seeds."""

    search: int
    refined: int
    top: int
    rescored_kinds: int
    ladders: int
    seeds: int
    check_seeds: int


def plan_budget(definition: SearchDefinition, budget_s: float, run_s: float, population: int, kinds: Sequence[str],
                coarse: int, search: int, refined: int, done: int = 0) -> BudgetPlan:
    """The largest plan (in the cutting order of the module docstring) expected to take at most
    ``budget_s`` seconds (the time left), else the smallest one, which says so.

    ``kinds``: the baseline kinds in the order a budget tunes them (``space.baselines.by_priority``);
    the first one's coarse ladder has run. ``coarse``: rungs of a coarse ladder; ``search``: sampled
    trials the definition holds besides the ladders; ``refined``: refined rungs per kind it would add;
    ``done``: trials already run (the first kind's ladder and the search trials filling its population).
    """
    longer = (definition.verdict_epochs or 1) / (definition.epochs or 1)
    lr_check = definition.verdict_epochs != definition.epochs

    def seconds(plan: Sizes) -> float:
        finalists = plan.top + min(plan.rescored_kinds, plan.ladders)
        populations = math.ceil(max(plan.search + (coarse + plan.refined) * plan.ladders - done, 0) / population)
        runs = plan.seeds * finalists  # re-scoring at most, in runs at the verdict's length
        if lr_check:
            runs += plan.check_seeds * (finalists + 2 * (len(LR_CHECK_FACTORS) - 1))
        return run_s * (populations + runs * longer / population)

    count = len(kinds)
    full = Sizes(search, refined, definition.rescore_top, min(definition.rescore_kinds or count, count), count,
                 definition.rescore_seeds, definition.lr_check_seeds if lr_check else 1)
    # the search keeps at least one kind's tuning effort (its ladder's rungs) and the trials already run
    already = max(done - coarse * min(count, 1), 0)
    chosen = full
    for plan in _cut(full, population, (min(search, max(coarse + refined, already)),
                                        min(search, max(coarse, already)))):
        chosen = plan
        if seconds(plan) <= budget_s:
            break
    cuts = _cut_words(full, chosen, kinds)
    if seconds(chosen) > budget_s:
        left = (f"the {budget_s / 60:.2g} left in the budget" if budget_s > 0
                else "the budget, which the first trials used up")
        cuts.append(f"even so it needs about {seconds(chosen) / 60:.2g} minutes more than {left}")
    return BudgetPlan(chosen.search, chosen.refined, chosen.top, chosen.seeds, seconds(chosen), cuts,
                      min(chosen.rescored_kinds, chosen.ladders), chosen.check_seeds if lr_check else None,
                      ladder_kinds=chosen.ladders)


def _cut(full: Sizes, population: int, floors: tuple[int, int]) -> Iterator[Sizes]:
    """Plans from ``full`` down, in the cutting order of the module docstring; the search down to ``floors``
    (with the refined rungs, then without them)."""
    plan = full
    yield plan
    while plan.search > floors[0]:
        plan = dataclasses.replace(plan, search=max(floors[0], plan.search - population))
        yield plan
    if plan.refined:
        plan = dataclasses.replace(plan, refined=0)
        yield plan
    while plan.search > floors[1]:
        plan = dataclasses.replace(plan, search=max(floors[1], plan.search - population))
        yield plan
    for name, floor in (("top", 1), ("rescored_kinds", 1), ("ladders", 1), ("seeds", MIN_SEEDS),
                        ("check_seeds", MIN_LR_CHECK_SEEDS)):
        while getattr(plan, name) > floor:
            plan = dataclasses.replace(plan, **{name: getattr(plan, name) - 1})
            yield plan


def _cut_words(full: Sizes, chosen: Sizes, kinds: Sequence[str]) -> list[str]:
    """What ``chosen`` cut from ``full``, one phrase per setting; the tuned kinds it kept are named, and the
    re-scored kinds only when fewer than those."""
    rescored = min(chosen.rescored_kinds, chosen.ladders)
    # all tuned kinds re-scored: said by the tuned kinds
    rescored = rescored if rescored < chosen.ladders else full.rescored_kinds
    grid = ", the schedule of the plain grid" if chosen.ladders == 1 and kinds[0] in GRID_KIND.values() else ""
    settings = (("search trials", full.search, chosen.search, ""),
                ("refined baseline rungs", full.refined * full.ladders, chosen.refined * chosen.ladders, ""),
                ("re-scored searched configurations", full.top, chosen.top, ""),
                ("tuned baseline kinds", full.ladders, chosen.ladders,
                 f" ({', '.join(KIND_LABELS[kind] for kind in kinds[:chosen.ladders])}{grid})"),
                ("re-scored baseline kinds (the best kept)", full.rescored_kinds, rescored, ""),
                ("fresh seeds at most", full.seeds, chosen.seeds, ""),
                ("LR-check seeds", full.check_seeds, chosen.check_seeds, ""))
    return [f"{name} {before} -> {after}{kept}" for name, before, after, kept in settings if after != before]


def budgeted(definition: SearchDefinition, plan: BudgetPlan, ladder_trials: int) -> SearchDefinition:
    """``definition`` as the plan sizes it: ``ladder_trials`` (coarse and refined rungs) plus its search."""
    return dataclasses.replace(definition, trials=ladder_trials + plan.search, rescore_top=plan.rescore_top,
                               rescore_seeds=plan.rescore_seeds, rescore_kinds=plan.rescore_kinds,
                               lr_check_seeds=plan.lr_check_seeds or definition.lr_check_seeds)
