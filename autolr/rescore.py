"""Re-scoring after the search: the top configurations and the baselines retrained on fresh seeds.

One lucky run is not a result. The ``rescore_top`` best complete trials (by final
validation score) and every baseline are trained again from scratch for the full budget
from ``rescore_seeds`` fresh initialisations (none equals the search's seed; the batch
order is a fresh one too, shared by the re-scoring runs so they compare like the search's
trials did) and scored on validation and on the held-out test split; the ranking and the
exported spec use the mean over those seeds. All (configuration, seed) pairs train as
one population, in chunks of the study's population size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from autolr.records import RescoreRecord, StudyRecord, TrialRecord
from autolr.spec import ScheduleSpec
from autolr.study import StudyConfig

SEED_OFFSET = 1000  # fresh seeds are config.seed + SEED_OFFSET + i, never the search's seed


def rescore_candidates(record: StudyRecord, top: int, maximize: bool) -> list[TrialRecord]:
    """The ``top`` best complete trials, then each baseline's first trial not among them."""
    complete = [t for t in record.trials if t.state == "complete" and t.value is not None]
    sign = -1.0 if maximize else 1.0
    best = sorted(complete, key=lambda t: (sign * t.value, t.number))[:top]
    chosen = {t.number for t in best}
    baselines: dict[str, TrialRecord] = {}
    for trial in sorted(record.trials, key=lambda t: t.number):
        if trial.baseline and trial.baseline not in baselines and trial.spec:
            baselines[trial.baseline] = trial
    return best + [t for t in baselines.values() if t.number not in chosen]


def rescore_seeds(config: StudyConfig) -> list[int]:
    """The fresh seeds of the re-scoring."""
    return [config.seed + SEED_OFFSET + index for index in range(config.rescore_seeds)]


def rescore(record: StudyRecord, config: StudyConfig, splits: Any, device: str, population: int) -> list[RescoreRecord]:
    """Retrain the candidates on fresh seeds; validation and test score per seed."""
    candidates = rescore_candidates(record, config.rescore_top, config.direction == "maximize")
    if not candidates:
        return []
    specs = [ScheduleSpec.from_dict(trial.spec) for trial in candidates]
    seeds = rescore_seeds(config)
    val_scores = _final_scores(specs, seeds, config, splits, device, population)
    test_scores = _final_scores(specs, seeds, config, _test_as_validation(splits), device, population)
    return [
        RescoreRecord(
            trial_number=trial.number, spec=trial.spec, seeds=seeds, val_scores=val_scores[index],
            test_scores=test_scores[index], baseline=trial.baseline,
        )
        for index, trial in enumerate(candidates)
    ]


def _final_scores(specs: list[ScheduleSpec], seeds: list[int], config: StudyConfig, splits: Any, device: str,
                  population: int) -> list[list[float]]:
    """``scores[candidate][seed]``: the final validation score of each candidate from each
    seed (NaN when it diverged)."""
    from autolr.population import train_population

    members = [(index, seed) for index in range(len(specs)) for seed in seeds]
    scores: list[list[float]] = [[] for _ in specs]
    for start in range(0, len(members), population):
        chunk = members[start:start + population]
        results = train_population([specs[index] for index, _ in chunk], config.model, splits, config.epochs,
                                   config.batch_size, seeds=[seed for _, seed in chunk], data_seed=seeds[0],
                                   metric=config.metric, device=device)
        for (index, _), result in zip(chunk, results):
            scores[index].append(float(result.final_score) if result.status == "complete" else float("nan"))
    return scores


def _test_as_validation(splits: Any) -> Any:
    """The splits with the test split in the validation slot, so the trainer's per-epoch
    evaluation scores the held-out test split (training itself reads only the train split;
    the trainer reports no test score of its own)."""
    return dataclasses.replace(splits, val_x=splits.test_x, val_y=splits.test_y)
