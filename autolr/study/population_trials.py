"""The search loop's evaluator for trials trained at once as one population.

A built-in study (``population.train_population``) and a user's module population
(``module_search``) both hand the asked trials to :func:`members_evaluator`: every member
reports each epoch to its trial, leaves the population when its trial is pruned, and a
population that does not fit in memory is split in two.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from autolr.data.splits import Splits
from autolr.errors import one_line
from autolr.study.config import StudyConfig
from autolr.training.population import train_population
from autolr.trials import Evaluate, Trial, TrialOutcome


def population_evaluator(config: StudyConfig, splits: Splits, device: str) -> Evaluate:
    """Train the asked trials of a built-in study at once as one population (see :func:`members_evaluator`)."""

    def train(specs: list[Any], on_epoch: Callable[[int, int, float], bool]) -> list[Any]:
        return train_population(
            specs, config.model, splits, config.epochs, config.batch_size, seeds=[config.seed] * len(specs),
            data_seed=config.seed, metric=config.metric, on_epoch=on_epoch, device=device,
        )

    return members_evaluator(train, device)


def members_evaluator(train: Callable[[list[Any], Callable[[int, int, float], bool]], list[Any]],
                      device: str) -> Evaluate:
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
            return _outcomes(results)
        # Out of the except block, so the failed population's tensors are freed before retrying.
        if len(trials) == 1:
            return [TrialOutcome("failed", error=reason)]
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        half = len(trials) // 2
        return evaluate(trials[:half]) + evaluate(trials[half:])

    return evaluate


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the device ran out of memory: torch's OutOfMemoryError (GPUs),
    the CPU allocator's "can't allocate memory" RuntimeError, or Python's MemoryError."""
    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def _outcomes(results: Sequence[Any]) -> list[TrialOutcome]:
    """The trainer's TrialResults as the search's outcomes."""
    return [
        TrialOutcome(
            result.status, value=result.final_score if result.status == "complete" else None,
            epochs_run=result.epochs_run, duration_s=result.duration_s,
            error=result.reason if result.status == "diverged" else None,
        )
        for result in results
    ]
