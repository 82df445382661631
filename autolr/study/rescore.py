"""Re-scoring for the verdict: the best searched schedules and each tuned baseline, on fresh seeds.

One lucky run is not a result. The candidates are the ``rescore_top`` best complete
searched trials (by final validation score) and, for each baseline kind (constant,
cosine, ...), its best complete rung. They are trained again from scratch at the user's
training length (``target_epochs``, default the search's ``epochs``) from ``rescore_seeds``
fresh seeds (none equals the search's): seed ``s`` gives every candidate the same initial
weights and the same batch order (they train as one population per seed), so the verdict
compares them paired by seed. Each run is scored on validation and, once at its end, on the
held-out test split.

At a target length other than the search's, an LR check runs first: each candidate trains
at ``LR_CHECK_FACTORS`` times its peak LR from ``LR_CHECK_SEEDS`` seeds of their own at that
length, and keeps the factor with the best mean validation score (a failed seed counts as
in the verdict): the best LR shrinks as training gets longer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import baseline_kind
from autolr.study.config import StudyConfig
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord
from autolr.study.verdict import counted, failure_score, mean

SEED_OFFSET = 1000  # fresh seeds are config.seed + SEED_OFFSET + i, never the search's seed
LR_CHECK_SEED_OFFSET = 2000  # the LR check's seeds, apart from the verdict's
LR_CHECK_FACTORS = (1.0, 0.5, 2.0)  # multiples of a candidate's peak LR; ties keep the first
LR_CHECK_SEEDS = 2


def rescore_candidates(record: StudyRecord, top: int, maximize: bool) -> list[TrialRecord]:
    """The ``top`` best complete searched trials, then each baseline kind's best rung.

    A kind's best rung is its complete rung with the best final score or, when the pruner
    (or Ray's ASHA, which stops whole populations) stopped every rung of it, the rung that
    ran the most epochs, best last score first: every tuned baseline is re-scored, fully.
    """
    sign = -1.0 if maximize else 1.0
    complete = sorted((t for t in record.trials if t.state == "complete" and t.value is not None and t.spec),
                      key=lambda t: (sign * _last_score(t), t.number))  # complete: its final score
    rungs = sorted((t for t in record.trials if t.baseline and t.spec and t.state in ("complete", "pruned")
                    and (t.value is not None or t.val_curve)),
                   key=lambda t: (t.state != "complete", -t.epochs_run, sign * _last_score(t), t.number))
    best_rungs: dict[str, TrialRecord] = {}
    for trial in rungs:
        best_rungs.setdefault(baseline_kind(trial.baseline or ""), trial)
    return [t for t in complete if not t.baseline][:top] + list(best_rungs.values())


def _last_score(trial: TrialRecord) -> float:
    """A trial's final score, else the last score it reported."""
    return float(trial.value if trial.value is not None else trial.val_curve[-1])


def rescore_seeds(config: StudyConfig) -> list[int]:
    """The fresh seeds of the re-scoring."""
    return [config.seed + SEED_OFFSET + index for index in range(config.rescore_seeds)]


def rescore(record: StudyRecord, config: StudyConfig, splits: Any, device: str, population: int) -> list[RescoreRecord]:
    """Retrain the candidates on fresh seeds at ``config.verdict_epochs``; validation and test score per seed."""
    maximize = config.direction == "maximize"
    candidates = rescore_candidates(record, config.rescore_top, maximize) if config.rescore_seeds else []
    if not candidates:
        return []
    specs = [ScheduleSpec.from_dict(trial.spec) for trial in candidates]
    epochs = config.verdict_epochs
    checks: list[list[dict[str, Any]]] = [[] for _ in specs]
    if epochs != config.epochs:
        specs, checks = lr_check(specs, config, splits, device, population, epochs)
    seeds = rescore_seeds(config)
    val_scores, test_scores = final_scores(specs, seeds, config, splits, device, population, epochs, score_test=True)
    return [
        RescoreRecord(
            trial_number=trial.number, spec=spec.to_dict(), seeds=seeds, val_scores=val_scores[index],
            test_scores=test_scores[index], baseline=baseline_kind(trial.baseline) if trial.baseline else None,
            epochs=epochs, lr_check=checks[index],
        )
        for index, (trial, spec) in enumerate(zip(candidates, specs))
    ]


def lr_check(specs: Sequence[ScheduleSpec], config: StudyConfig, splits: Any, device: str, population: int,
             epochs: int) -> tuple[list[ScheduleSpec], list[list[dict[str, Any]]]]:
    """Each spec at its best multiple of its LR at ``epochs`` epochs, and what the check measured."""
    tried = [dataclasses.replace(spec, lr=spec.lr * factor) for spec in specs for factor in LR_CHECK_FACTORS]
    seeds = [config.seed + LR_CHECK_SEED_OFFSET + index for index in range(LR_CHECK_SEEDS)]
    scores, _ = final_scores(tried, seeds, config, splits, device, population, epochs)
    failed_at = failure_score(scores, config.direction == "maximize")
    sign = 1.0 if config.direction == "maximize" else -1.0
    chosen, checks = [], []
    for index in range(len(specs)):
        rows = range(index * len(LR_CHECK_FACTORS), (index + 1) * len(LR_CHECK_FACTORS))
        best = max(rows, key=lambda row: (sign * mean(counted(scores[row], failed_at)), -row))
        chosen.append(tried[best])
        checks.append([{"lr": tried[row].lr, "val_scores": scores[row]} for row in rows])
    return chosen, checks


def final_scores(specs: Sequence[ScheduleSpec], seeds: Sequence[int], config: StudyConfig, splits: Any, device: str,
                 population: int, epochs: int, score_test: bool = False) -> tuple[list[list[float]], list[list[float]]]:
    """``(val, test)``, each ``scores[spec][seed]``: every spec's final validation score (and, with
    ``score_test``, test score; else empty lists) from each seed, NaN where the run diverged.
    Seed ``s`` initialises every spec's model from ``s`` and draws the batch order from ``s``,
    so the specs compare paired by seed."""
    from autolr.training.population import train_population
    from autolr.training.train import complete_score

    val: list[list[float]] = [[] for _ in specs]
    test: list[list[float]] = [[] for _ in specs]
    for seed in seeds:
        for start in range(0, len(specs), population):
            chunk = list(specs[start:start + population])
            results = train_population(chunk, config.model, splits, epochs, config.batch_size,
                                       seeds=[seed] * len(chunk), data_seed=seed, metric=config.metric,
                                       device=device, score_test=score_test)
            for offset, result in enumerate(results):
                val[start + offset].append(complete_score(result))
                if score_test:  # a run has a test score when it completed
                    test[start + offset].append(float("nan") if result.test_score is None else result.test_score)
    return val, test
