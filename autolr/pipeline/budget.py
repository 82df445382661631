"""A study's budget in minutes: how many search trials, refined rungs and re-scoring runs fit in it.

The study first trains its coarse baseline ladders (every study does; ``pipeline.run``), which
measures what a trial costs here: ``run_s``, the median wall time of one population of
complete trials (they train at once) at the search's length. The rest is sized from it, in
populations (``population`` trials or runs at once), runs at the verdict's length costing
``run_s`` times their length over the search's:

- the search and the refined rungs: ``ceil(trials / population)`` populations;
- the re-scoring, at most: each fresh seed trains every finalist (the ``rescore_top`` best
  searched and one per baseline kind), and the LR check trains each finalist at its own LR
  and two leaders at the other LRs, from ``LR_CHECK_SEEDS`` seeds.

When the whole study would not fit, it cuts, in this order, until it does: the search
trials (a population at a time, down to one population), the refined rungs, the re-scored
searched configurations (down to 1), the fresh seeds (down to ``MIN_SEEDS``). What it cut is
said in words (:attr:`BudgetPlan.cuts`), which the CLI and the report print.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from autolr.pipeline.rescore import LR_CHECK_FACTORS, LR_CHECK_SEEDS
from autolr.study.definition import SearchDefinition
from autolr.study.reach import FIRST_ROUND
from autolr.study.records import TrialRecord, TrialState

MIN_SEEDS = FIRST_ROUND + 1  # fewest fresh seeds a budget cuts to: two give a 95% interval 12.7 standard errors wide


@dataclass(frozen=True)
class BudgetPlan:
    """What the study runs after its coarse ladders: ``search`` sampled trials, ``refined`` rungs per
    kind, ``rescore_top`` and ``rescore_seeds``; ``estimate_s`` what that is expected to take (seconds),
    ``cuts`` what was cut to fit, in words (empty: nothing)."""

    search: int
    refined: int
    rescore_top: int
    rescore_seeds: int
    estimate_s: float
    cuts: list[str]

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


def plan_budget(definition: SearchDefinition, budget_s: float, run_s: float, population: int, kinds: int,
                search: int, refined: int) -> BudgetPlan:
    """The largest plan (in the cutting order of the module docstring) expected to take at most
    ``budget_s`` seconds (the time left), else the smallest one, which says so.

    ``search``: sampled trials the definition leaves after the ladders; ``refined``: refined rungs
    per kind it would add; ``kinds``: baseline kinds.
    """
    longer = (definition.verdict_epochs or 1) / (definition.epochs or 1)
    lr_check = definition.verdict_epochs != definition.epochs

    def seconds(plan: tuple[int, int, int, int]) -> float:
        trials, rungs, top, seeds = plan
        finalists = top + kinds
        populations = math.ceil((trials + rungs * kinds) / population)
        rescoring = seeds * math.ceil(finalists / population) * longer
        if lr_check:
            rescoring += LR_CHECK_SEEDS * (math.ceil(finalists / population)
                                           + math.ceil(2 * (len(LR_CHECK_FACTORS) - 1) / population)) * longer
        return run_s * (populations + rescoring)

    full = (search, refined, definition.rescore_top, definition.rescore_seeds)
    chosen = full
    for plan in _cut(full, population):
        chosen = plan
        if seconds(plan) <= budget_s:
            break
    cuts = _cut_words(full, chosen, kinds)
    if seconds(chosen) > budget_s:
        cuts.append(f"even so it needs about {seconds(chosen) / 60:.2g} minutes, more than the "
                    f"{max(budget_s, 0.0) / 60:.2g} left in the budget")
    return BudgetPlan(chosen[0], chosen[1], chosen[2], chosen[3], seconds(chosen), cuts)


def _cut(full: tuple[int, int, int, int], population: int) -> Iterator[tuple[int, int, int, int]]:
    """Plans from ``full`` down, in the cutting order: (search trials, refined rungs, top, seeds)."""
    search, refined, top, seeds = full
    yield full
    floor = min(search, population)
    while search > floor:
        search = max(floor, search - population)
        yield search, refined, top, seeds
    if refined:
        refined = 0
        yield search, refined, top, seeds
    while top > 1:
        top -= 1
        yield search, refined, top, seeds
    while seeds > MIN_SEEDS:
        seeds -= 1
        yield search, refined, top, seeds


def _cut_words(full: tuple[int, int, int, int], chosen: tuple[int, int, int, int], kinds: int) -> list[str]:
    """What ``chosen`` cut from ``full``, one phrase per setting."""
    names = ("search trials", "refined baseline rungs", "re-scored searched configurations", "fresh seeds at most")
    scale = (1, kinds, 1, 1)
    return [f"{name} {before * times} -> {after * times}"
            for name, before, after, times in zip(names, full, chosen, scale) if after != before]


def budgeted(definition: SearchDefinition, plan: BudgetPlan, ladder_trials: int) -> SearchDefinition:
    """``definition`` as the plan sizes it: ``ladder_trials`` (coarse and refined rungs) plus its search."""
    return dataclasses.replace(definition, trials=ladder_trials + plan.search, rescore_top=plan.rescore_top,
                               rescore_seeds=plan.rescore_seeds)
