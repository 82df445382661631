"""Re-scoring for the verdict: the best searched schedules and each tuned baseline, on fresh seeds.

One lucky run is not a result. The candidates are the ``rescore_top`` best complete searched
trials (by final validation score) and, for each baseline kind (constant, cosine, ...), its
best complete rung (a budget may keep only the ``rescore_kinds`` best kinds). They are
trained again from scratch at the user's training length (``target_epochs``, default the
search's ``epochs``) from up to ``rescore_seeds`` fresh seeds (none equals the search's):
seed ``s`` gives every candidate the same initial weights and the same batch order (the job
trains them paired by seed), so the verdict compares them paired by seed. Each run is scored
on validation and, once at its end, on the held-out test split. Seeds are added in rounds
(two, then one at a time) and a candidate stops once it can no longer be its side's best,
the whole re-scoring once the verdict is decided (the rule: ``autolr.study.reach``).

At a target length other than the search's, an LR check runs first: each candidate trains
at its peak LR from ``lr_check_seeds`` seeds of their own at that length; the candidates
whose rank an LR change can alter (``study.reach.lr_checks_due``) also train at the other
``LR_CHECK_FACTORS`` times it; each keeps the LR with the best mean validation score (a
failed seed counts as in the verdict): the best LR shrinks as training gets longer. A budgeted
study tries the lower LR first and the higher one only where the lower did not beat the
candidate's own LR: the score is taken to be unimodal in log LR (the range test's assumption),
and at a longer length the lower LR is the likelier winner, so that half of the check's runs is
the one usually saved. The whole study (no budget) tries both.

Resumable: the LR check and every seed are stored as they finish (``RescoreProgress``), so a
re-scoring stopped part-way trains only what it had not finished.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import baseline_kind
from autolr.study.definition import Direction, SearchDefinition
from autolr.study.reach import lr_checks_due, still_running
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord, TrialState
from autolr.study.verdict import counted, failure_score, mean
from autolr.trials import Job

SEED_OFFSET = 1000  # fresh seeds are seed + SEED_OFFSET + i, never the search's seed
LR_CHECK_SEED_OFFSET = 2000  # the LR check's seeds, apart from the verdict's
LR_CHECK_FACTORS = (1.0, 0.5, 2.0)  # multiples of a candidate's peak LR; ties keep the first

Progress = dict[str, Any]  # {"lr_check": [...] | None, "seeds": {str(seed): {"val": [...], "test": [...]}}}


def rescore_candidates(record: StudyRecord, top: int, direction: Direction,
                       kinds: int | None = None) -> list[TrialRecord]:
    """The ``top`` best complete searched trials, then each baseline kind's best rung (``best_rungs``; only
    the ``kinds`` best kinds, None: every kind)."""
    sign = -direction.sign
    complete = sorted((t for t in record.trials if t.state == TrialState.COMPLETE and t.value is not None and t.spec),
                      key=lambda t: (sign * _last_score(t), t.number))  # complete: its final score
    return [t for t in complete if not t.baseline][:top] + list(best_rungs(record, direction).values())[:kinds]


def best_rungs(record: StudyRecord, direction: Direction) -> dict[str, TrialRecord]:
    """Each baseline kind's best rung (kinds in the order of their best rungs by the rule below).

    A kind's best rung is its complete rung with the best final score or, when the pruner
    (or Ray's ASHA, which stops whole populations) stopped every rung of it, the rung that
    ran the most epochs, best last score first: every tuned baseline is re-scored, fully.
    """
    sign = -direction.sign
    rungs = sorted((t for t in record.trials if t.baseline and t.spec
                    and t.state in (TrialState.COMPLETE, TrialState.PRUNED) and (t.value is not None or t.val_curve)),
                   key=lambda t: (t.state != TrialState.COMPLETE, -t.epochs_run, sign * _last_score(t), t.number))
    best: dict[str, TrialRecord] = {}
    for trial in rungs:
        best.setdefault(baseline_kind(trial.baseline or ""), trial)
    return best


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

    Seeds are added in rounds, and a candidate stops once it cannot win (``study.reach.still_running``);
    its record holds the seeds it ran. ``progress`` is what an earlier, stopped re-scoring of the same
    candidates had finished; ``save(progress)`` is called after each step of the LR check and each seed.
    """
    candidates = rescore_candidates(record, definition.rescore_top, definition.direction, definition.rescore_kinds)
    if not candidates:
        return []
    specs = [ScheduleSpec.from_dict(trial.spec) for trial in candidates]
    baseline = [trial.baseline is not None for trial in candidates]
    maximize = definition.direction.maximize
    epochs = definition.verdict_epochs
    progress = progress or {"lr_check": None, "seeds": {}}
    checks: list[list[dict[str, Any]]] = [[] for _ in specs]
    if epochs != definition.epochs:
        checks = lr_check(specs, baseline, definition, job, population, progress, save)
        failed_at = failure_score([row["val_scores"] for check in checks for row in check], maximize)
        specs = [chosen_spec(spec, check, definition.direction, failed_at) for spec, check in zip(specs, checks)]
    val_resolution, test_resolution = job.resolution()
    seeds = rescore_seeds(definition)
    val: list[list[float]] = [[] for _ in specs]
    test: list[list[float]] = [[] for _ in specs]
    for seed in seeds:
        running = still_running(val, baseline, maximize, val_resolution)
        if not running:
            break
        if str(seed) not in progress["seeds"]:
            scores, test_scores = job.final_scores([specs[i] for i in running], [seed], epochs, population,
                                                   score_test=True)
            by_index = dict(zip(running, zip(scores, test_scores)))
            progress["seeds"][str(seed)] = {key: [by_index[i][side][0] if i in by_index else None
                                                  for i in range(len(specs))]
                                            for side, key in enumerate(("val", "test"))}
            save(progress)
        stored = progress["seeds"][str(seed)]
        for index in running:
            val[index].append(stored["val"][index])
            test[index].append(stored["test"][index])
    return [
        RescoreRecord(
            trial_number=trial.number, spec=spec.to_dict(), seeds=seeds[:len(val[index])],
            val_scores=val[index], test_scores=test[index],
            baseline=baseline_kind(trial.baseline) if trial.baseline else None, epochs=epochs,
            lr_check=checks[index], val_resolution=val_resolution, test_resolution=test_resolution,
        )
        for index, (trial, spec) in enumerate(zip(candidates, specs))
    ]


def lr_check(specs: Sequence[ScheduleSpec], baseline: Sequence[bool], definition: SearchDefinition, job: Job,
             population: int, progress: Progress, save: Callable[[Progress], None]) -> list[list[dict[str, Any]]]:
    """What the LR check measured for each spec: one ``{"lr", "val_scores"}`` per LR tried, its own LR first.

    Every spec trains at its own LR; the other ``LR_CHECK_FACTORS`` only for the specs whose
    rank they can change (``study.reach.lr_checks_due``); a budgeted ``definition`` tries the higher
    LR only where the lower one did not win (``_higher_due``). Each step is stored in ``progress``.
    """
    seeds = [definition.seed + LR_CHECK_SEED_OFFSET + index for index in range(definition.lr_check_seeds)]
    epochs, maximize = definition.verdict_epochs, definition.direction.maximize
    if progress["lr_check"] is None:
        own, _ = job.final_scores(specs, seeds, epochs, population)
        progress["lr_check"] = [[{"lr": spec.lr, "val_scores": scores}] for spec, scores in zip(specs, own)]
        save(progress)
    rows: list[list[dict[str, Any]]] = progress["lr_check"]
    first = LR_CHECK_FACTORS[1:2] if definition.budgeted else LR_CHECK_FACTORS[1:]
    while True:
        failed_at = failure_score([row["val_scores"] for check in rows for row in check], maximize)
        higher = [i for i, check in enumerate(rows) if _higher_due(check, definition.direction, failed_at)]
        if higher:
            tried = [(i, LR_CHECK_FACTORS[2]) for i in higher]
        else:
            best = [None if len(check) == 1 else chosen_mean(check, definition.direction, failed_at) for check in rows]
            due = lr_checks_due([check[0]["val_scores"] for check in rows], best, baseline, maximize, failed_at)
            if not due:
                return rows
            tried = [(i, factor) for i in due for factor in first]
        specs_tried = [dataclasses.replace(specs[i], lr=specs[i].lr * factor) for i, factor in tried]
        scores, _ = job.final_scores(specs_tried, seeds, epochs, population)
        for (i, _), spec, row in zip(tried, specs_tried, scores):
            rows[i].append({"lr": spec.lr, "val_scores": row})
        save(progress)


def _higher_due(check: list[dict[str, Any]], direction: Direction, failed_at: float) -> bool:
    """Whether a check that tried only the lower LR (a budgeted study's first step: its own LR, then
    ``LR_CHECK_FACTORS[1]`` times it) still tries the higher one: where the lower did not beat its own LR."""
    return len(check) == 2 and _best_row(check, direction, failed_at) is check[0]


def _best_row(check: list[dict[str, Any]], direction: Direction, failed_at: float) -> dict[str, Any]:
    """The LR the check scored best (a failed seed counted at ``failed_at``; ties keep the first)."""
    best = max(range(len(check)),
               key=lambda row: (direction.sign * mean(counted(check[row]["val_scores"], failed_at)), -row))
    return check[best]


def chosen_mean(check: list[dict[str, Any]], direction: Direction, failed_at: float) -> float:
    """The mean validation score of the LR the check chose."""
    return mean(counted(_best_row(check, direction, failed_at)["val_scores"], failed_at))


def chosen_spec(spec: ScheduleSpec, check: list[dict[str, Any]], direction: Direction,
                failed_at: float) -> ScheduleSpec:
    """``spec`` at the LR its check scored best (a failed seed counted at ``failed_at``; ties keep the first)."""
    return dataclasses.replace(spec, lr=_best_row(check, direction, failed_at)["lr"])
