"""The benchmark's search loop: Optuna TPE + median pruner over the initial LR, one or K trials at a time.

Every row of ``autolr bench`` (the tutorial loop, single trials, populations) runs this
same search so that only the trainer differs. Trials are asked in groups of
``group_size`` through Optuna's ask/tell interface, trained together, and told back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna

Report = Callable[[int, int, float], bool]
"""report(member, epoch, val_accuracy) -> True when the pruner stops that member."""

RunGroup = Callable[[list[float], Report], list[tuple[str, float | None]]]
"""run_group(lrs, report) -> one (status, final val accuracy) per LR; status complete|pruned|diverged."""


@dataclass(frozen=True)
class SearchOutcome:
    """What a search did: trials run, how they ended, and the best completed val accuracy."""

    trials: int
    completed: int
    pruned: int
    diverged: int
    best_val_accuracy: float | None


def tpe_median_search(
    run_group: RunGroup, trials: int, group_size: int, lr_low: float, lr_high: float, seed: int
) -> SearchOutcome:
    """Search the initial LR in [lr_low, lr_high] (log scale) with ``trials`` trials, ``group_size`` at once.

    TPE (seeded with ``seed``) proposes; Optuna's median pruner compares each trial's
    validation accuracy per epoch with the completed trials'. Diverged trials are told
    as failed, so TPE ignores them.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner()
    )
    counts = {"complete": 0, "pruned": 0, "diverged": 0}
    best = -math.inf
    for first in range(0, trials, group_size):
        group = [study.ask() for _ in range(min(group_size, trials - first))]
        lrs = [trial.suggest_float("lr", lr_low, lr_high, log=True) for trial in group]

        def report(member: int, epoch: int, score: float, group: list[optuna.Trial] = group) -> bool:
            group[member].report(score, epoch)
            return group[member].should_prune()

        for trial, (status, score) in zip(group, run_group(lrs, report), strict=True):
            counts[status] += 1
            if status == "complete":
                assert score is not None, "a completed trial has a final score"
                study.tell(trial, score)
                best = max(best, score)
            else:
                state = optuna.trial.TrialState.PRUNED if status == "pruned" else optuna.trial.TrialState.FAIL
                study.tell(trial, state=state)
    return SearchOutcome(
        trials=trials, completed=counts["complete"], pruned=counts["pruned"], diverged=counts["diverged"],
        best_val_accuracy=best if counts["complete"] else None,
    )
