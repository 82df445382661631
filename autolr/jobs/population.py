"""What the two population jobs share: the search's evaluator and the re-scoring's loop over seeds.

A built-in study (``training.population.train_population``) and a user's module population
(``training.module_population``) both hand the asked trials to :func:`members_evaluator`:
every member reports each epoch to its trial, leaves the population when its trial is
pruned, and a population that does not fit in memory is split in two. Their fresh-seed
runs go through :func:`population_scores`: one population per seed (and per ``population``
specs), so every spec of one seed starts from the same weights and sees the same batches.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from autolr.errors import one_line
from autolr.schedule.spec import ScheduleSpec
from autolr.study.definition import score_resolution
from autolr.study.records import TrialState
from autolr.training.train import Splits, TrialResult, complete_score
from autolr.trials import Evaluate, Scores, Trial, TrialOutcome

OnEpoch = Callable[[int, int, float], bool]  # (member, epoch, score) -> stop this member
TrainMembers = Callable[[list[ScheduleSpec], OnEpoch], list[TrialResult]]
TrainSeed = Callable[[list[ScheduleSpec], int, bool], list[TrialResult]]  # (specs, seed, score_test)


def members_evaluator(train: TrainMembers, device: str) -> Evaluate:
    """Train the asked trials at once with ``train(specs, on_epoch) -> TrialResults``; every member
    reports each epoch to its trial and leaves the population when its trial is pruned. A
    population that runs out of memory (GPU or CPU) is split in two and each half trained in
    turn; a single trial that does not fit fails with the reason."""

    def evaluate(trials: Sequence[Trial]) -> list[TrialOutcome]:
        try:
            results = train([trial.spec for trial in trials],
                            lambda member, epoch, score: trials[member].observe(score, epoch))
        except (RuntimeError, MemoryError) as error:
            if not out_of_memory(error):
                raise
            reason = one_line(error)
        else:
            return [_outcome(result) for result in results]
        # Out of the except block, so the failed population's tensors are freed before retrying.
        if len(trials) == 1:
            return [TrialOutcome(TrialState.FAILED, error=reason)]
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        half = len(trials) // 2
        return evaluate(trials[:half]) + evaluate(trials[half:])

    return evaluate


def population_scores(train: TrainSeed, specs: Sequence[ScheduleSpec], seeds: Sequence[int], population: int,
                      score_test: bool) -> Scores:
    """``(val, test)`` of ``specs`` from each seed (see ``trials.Job.final_scores``), ``population``
    specs trained at once by ``train(specs, seed, score_test)``."""
    val: list[list[float]] = [[] for _ in specs]
    test: list[list[float]] = [[] for _ in specs]
    for seed in seeds:
        for start in range(0, len(specs), population):
            for offset, result in enumerate(train(list(specs[start:start + population]), seed, score_test)):
                val[start + offset].append(complete_score(result))
                if score_test:  # a run has a test score when it completed
                    test[start + offset].append(float("nan") if result.test_score is None else result.test_score)
    return val, test


def split_resolution(metric: str, splits: Splits) -> tuple[float, float]:
    """The (validation, test) score steps of ``metric`` on ``splits``: one row in so many, for accuracy."""
    return score_resolution(metric, len(splits.val_y)), score_resolution(metric, len(splits.test_y))


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the device ran out of memory: torch's OutOfMemoryError (GPUs),
    the CPU allocator's "can't allocate memory" RuntimeError, or Python's MemoryError."""
    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def _outcome(result: Any) -> TrialOutcome:
    """A trainer's TrialResult as the search's outcome."""
    return TrialOutcome(
        TrialState(result.status), value=result.final_score if result.status == "complete" else None,
        epochs_run=result.epochs_run, duration_s=result.duration_s,
        error=result.reason if result.status == "diverged" else None,
    )
