"""A study's budget, in minutes or in plain grids: how many search trials, refined rungs and re-scoring
runs fit in it.

The study first trains its coarse baseline ladders (every study does; ``pipeline.run``), which
measures what a trial costs here: ``run_s``, the median wall time of one population of
complete trials (they train at once) at the search's length. The rest is sized from it, in
populations (``population`` trials or runs at once), runs at the verdict's length costing
``run_s`` times their length over the search's:

- the search and the refined rungs: ``ceil(trials / population)`` populations;
- the re-scoring, at most: each fresh seed trains every finalist (the ``rescore_top`` best
  searched and one per baseline kind), and the LR check trains each finalist at its own LR
  and two leaders at the other LRs, from ``lr_check_seeds`` seeds.

A budget in grids (``SearchDefinition.budget_grids``) is a multiple of the plain grid a
user would run anyway: ``GRID_POINTS`` single runs, one after another, at the verdict's
length (:func:`grid_seconds`). The shipped image studies default to 2 grids.

When the whole study would not fit, it cuts, in this order, until it does: the search
trials (a population at a time, down to one population), the refined rungs, the re-scored
searched configurations (down to 1), the re-scored baseline kinds (the best by their best
rung's score, down to 1), the fresh seeds (down to ``MIN_SEEDS``), the LR check's seeds (down
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
from autolr.study.definition import SearchDefinition
from autolr.study.reach import FIRST_ROUND
from autolr.study.records import TrialRecord, TrialState

GRID_POINTS = 12  # peak LRs of the plain grid a budget in grids is a multiple of
MIN_LR_CHECK_SEEDS = 2  # fewest seeds a budget leaves the LR check (the module docstring says why not 1)
MIN_SEEDS = FIRST_ROUND + 1  # fewest fresh seeds a budget cuts to: two give a 95% interval 12.7 standard errors wide


@dataclass(frozen=True)
class BudgetPlan:
    """What the study runs after its coarse ladders: ``search`` sampled trials, ``refined`` rungs per
    kind, ``rescore_top``, ``rescore_kinds`` (the best baseline kinds re-scored) and ``rescore_seeds``;
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


def plan_budget(definition: SearchDefinition, budget_s: float, run_s: float, population: int, kinds: int,
                search: int, refined: int) -> BudgetPlan:
    """The largest plan (in the cutting order of the module docstring) expected to take at most
    ``budget_s`` seconds (the time left), else the smallest one, which says so.

    ``search``: sampled trials the definition leaves after the ladders; ``refined``: refined rungs
    per kind it would add; ``kinds``: baseline kinds.
    """
    longer = (definition.verdict_epochs or 1) / (definition.epochs or 1)
    lr_check = definition.verdict_epochs != definition.epochs

    def seconds(plan: Plan) -> float:
        trials, rungs, top, rescored_kinds, seeds, check_seeds = plan
        finalists = top + rescored_kinds
        populations = math.ceil((trials + rungs * kinds) / population)
        rescoring = seeds * math.ceil(finalists / population) * longer
        if lr_check:
            rescoring += check_seeds * (math.ceil(finalists / population)
                                           + math.ceil(2 * (len(LR_CHECK_FACTORS) - 1) / population)) * longer
        return run_s * (populations + rescoring)

    full = (search, refined, definition.rescore_top, min(definition.rescore_kinds or kinds, kinds),
            definition.rescore_seeds, definition.lr_check_seeds if lr_check else 1)
    chosen = full
    for plan in _cut(full, population):
        chosen = plan
        if seconds(plan) <= budget_s:
            break
    cuts = _cut_words(full, chosen, kinds)
    if seconds(chosen) > budget_s:
        left = (f"the {budget_s / 60:.2g} left in the budget" if budget_s > 0
                else "the budget, which the coarse ladders used up")
        cuts.append(f"even so it needs about {seconds(chosen) / 60:.2g} minutes more than {left}")
    return BudgetPlan(chosen[0], chosen[1], chosen[2], chosen[4], seconds(chosen), cuts, chosen[3],
                      chosen[5] if lr_check else None)


Plan = tuple[int, int, int, int, int, int]  # search trials, refined rungs per kind, top, kinds, seeds, LR-check seeds


def _cut(full: Plan, population: int) -> Iterator[Plan]:
    """Plans from ``full`` down, in the cutting order of the module docstring."""
    search, refined, top, kinds, seeds, check_seeds = full
    yield full
    floor = min(search, population)
    while search > floor:
        search = max(floor, search - population)
        yield search, refined, top, kinds, seeds, check_seeds
    if refined:
        refined = 0
        yield search, refined, top, kinds, seeds, check_seeds
    while top > 1:
        top -= 1
        yield search, refined, top, kinds, seeds, check_seeds
    while kinds > 1:
        kinds -= 1
        yield search, refined, top, kinds, seeds, check_seeds
    while seeds > MIN_SEEDS:
        seeds -= 1
        yield search, refined, top, kinds, seeds, check_seeds
    while check_seeds > MIN_LR_CHECK_SEEDS:
        check_seeds -= 1
        yield search, refined, top, kinds, seeds, check_seeds


def _cut_words(full: Plan, chosen: Plan, kinds: int) -> list[str]:
    """What ``chosen`` cut from ``full``, one phrase per setting."""
    names = ("search trials", "refined baseline rungs", "re-scored searched configurations",
             "re-scored baseline kinds (the best kept)", "fresh seeds at most", "LR-check seeds")
    scale = (1, kinds, 1, 1, 1, 1)
    return [f"{name} {before * times} -> {after * times}"
            for name, before, after, times in zip(names, full, chosen, scale) if after != before]


def budgeted(definition: SearchDefinition, plan: BudgetPlan, ladder_trials: int) -> SearchDefinition:
    """``definition`` as the plan sizes it: ``ladder_trials`` (coarse and refined rungs) plus its search."""
    return dataclasses.replace(definition, trials=ladder_trials + plan.search, rescore_top=plan.rescore_top,
                               rescore_seeds=plan.rescore_seeds, rescore_kinds=plan.rescore_kinds,
                               lr_check_seeds=plan.lr_check_seeds or definition.lr_check_seeds)
