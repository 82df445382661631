"""Re-scoring for the verdict: the best searched schedules and each tuned baseline, on fresh seeds.

One lucky run is not a result. The candidates are the ``rescore_top`` best complete
searched trials (by final validation score) and, for each baseline kind (constant,
cosine, ...), its best complete rung. They are trained again from scratch at the user's
training length (``target_epochs``, default the search's ``epochs``) from ``rescore_seeds``
fresh seeds (none equals the search's): seed ``s`` gives every candidate the same initial
weights and the same batch order (the job trains them paired by seed), so the verdict
compares them paired by seed. Each run is scored on validation and, once at its end, on the
held-out test split.

At a target length other than the search's, an LR check runs first: each candidate trains
at ``LR_CHECK_FACTORS`` times its peak LR from ``LR_CHECK_SEEDS`` seeds of their own at that
length, and keeps the factor with the best mean validation score (a failed seed counts as
in the verdict): the best LR shrinks as training gets longer.

Resumable: the LR check and every seed are stored as they finish (``RescoreProgress``), so a
re-scoring stopped part-way trains only what it had not finished.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import baseline_kind
from autolr.study.definition import Direction, SearchDefinition
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord, TrialState
from autolr.study.verdict import counted, failure_score, mean
from autolr.trials import Job

SEED_OFFSET = 1000  # fresh seeds are seed + SEED_OFFSET + i, never the search's seed
LR_CHECK_SEED_OFFSET = 2000  # the LR check's seeds, apart from the verdict's
LR_CHECK_FACTORS = (1.0, 0.5, 2.0)  # multiples of a candidate's peak LR; ties keep the first
LR_CHECK_SEEDS = 2

Progress = dict[str, Any]  # {"lr_check": [...] | None, "seeds": {str(seed): {"val": [...], "test": [...]}}}


def rescore_candidates(record: StudyRecord, top: int, direction: Direction) -> list[TrialRecord]:
    """The ``top`` best complete searched trials, then each baseline kind's best rung.

    A kind's best rung is its complete rung with the best final score or, when the pruner
    (or Ray's ASHA, which stops whole populations) stopped every rung of it, the rung that
    ran the most epochs, best last score first: every tuned baseline is re-scored, fully.
    """
    sign = -direction.sign
    complete = sorted((t for t in record.trials if t.state == TrialState.COMPLETE and t.value is not None and t.spec),
                      key=lambda t: (sign * _last_score(t), t.number))  # complete: its final score
    rungs = sorted((t for t in record.trials if t.baseline and t.spec
                    and t.state in (TrialState.COMPLETE, TrialState.PRUNED) and (t.value is not None or t.val_curve)),
                   key=lambda t: (t.state != TrialState.COMPLETE, -t.epochs_run, sign * _last_score(t), t.number))
    best_rungs: dict[str, TrialRecord] = {}
    for trial in rungs:
        best_rungs.setdefault(baseline_kind(trial.baseline or ""), trial)
    return [t for t in complete if not t.baseline][:top] + list(best_rungs.values())


def _last_score(trial: TrialRecord) -> float:
    """A trial's final score, else the last score it reported."""
    return float(trial.value if trial.value is not None else trial.val_curve[-1])


def rescore_seeds(definition: SearchDefinition) -> list[int]:
    """The fresh seeds of the re-scoring."""
    return [definition.seed + SEED_OFFSET + index for index in range(definition.rescore_seeds)]


def rescore(record: StudyRecord, definition: SearchDefinition, job: Job, population: int,
            progress: Progress | None = None, save: Callable[[Progress], None] = lambda progress: None,
            ) -> list[RescoreRecord]:
    """Retrain the candidates on fresh seeds at ``definition.verdict_epochs``; validation and test score per seed.

    ``progress`` is what an earlier, stopped re-scoring of the same candidates had finished;
    ``save(progress)`` is called after the LR check and after each seed.
    """
    candidates = rescore_candidates(record, definition.rescore_top, definition.direction)
    if not candidates:
        return []
    specs = [ScheduleSpec.from_dict(trial.spec) for trial in candidates]
    epochs = definition.verdict_epochs
    progress = progress or {"lr_check": None, "seeds": {}}
    checks: list[list[dict[str, Any]]] = [[] for _ in specs]
    if epochs != definition.epochs:
        if progress["lr_check"] is None:
            progress["lr_check"] = lr_check(specs, definition, job, population, epochs)
            save(progress)
        checks = progress["lr_check"]
        failed_at = failure_score([row["val_scores"] for check in checks for row in check],
                                  definition.direction.maximize)
        specs = [chosen_spec(spec, check, definition.direction, failed_at) for spec, check in zip(specs, checks)]
    seeds = rescore_seeds(definition)
    for seed in seeds:
        if str(seed) not in progress["seeds"]:
            val, test = job.final_scores(specs, [seed], epochs, population, score_test=True)
            progress["seeds"][str(seed)] = {"val": [row[0] for row in val], "test": [row[0] for row in test]}
            save(progress)
    by_seed = [progress["seeds"][str(seed)] for seed in seeds]
    val_resolution, test_resolution = job.resolution()
    return [
        RescoreRecord(
            trial_number=trial.number, spec=spec.to_dict(), seeds=seeds,
            val_scores=[scores["val"][index] for scores in by_seed],
            test_scores=[scores["test"][index] for scores in by_seed],
            baseline=baseline_kind(trial.baseline) if trial.baseline else None, epochs=epochs,
            lr_check=checks[index], val_resolution=val_resolution, test_resolution=test_resolution,
        )
        for index, (trial, spec) in enumerate(zip(candidates, specs))
    ]


def lr_check(specs: Sequence[ScheduleSpec], definition: SearchDefinition, job: Job, population: int,
             epochs: int | None) -> list[list[dict[str, Any]]]:
    """What the LR check measured for each spec: one ``{"lr", "val_scores"}`` per factor tried."""
    tried = [dataclasses.replace(spec, lr=spec.lr * factor) for spec in specs for factor in LR_CHECK_FACTORS]
    seeds = [definition.seed + LR_CHECK_SEED_OFFSET + index for index in range(LR_CHECK_SEEDS)]
    scores, _ = job.final_scores(tried, seeds, epochs, population)
    width = len(LR_CHECK_FACTORS)
    return [[{"lr": tried[row].lr, "val_scores": scores[row]} for row in range(index * width, (index + 1) * width)]
            for index in range(len(specs))]


def chosen_spec(spec: ScheduleSpec, check: list[dict[str, Any]], direction: Direction,
                failed_at: float) -> ScheduleSpec:
    """``spec`` at the LR its check scored best (a failed seed counted at ``failed_at``; ties keep the first)."""
    best = max(range(len(check)),
               key=lambda row: (direction.sign * mean(counted(check[row]["val_scores"], failed_at)), -row))
    return dataclasses.replace(spec, lr=check[best]["lr"])
