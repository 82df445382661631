"""The function each Ray Tune trial runs: train its population of schedules, report every epoch.

One Tune trial trains ``len(config["members"])`` schedules at once with the population
trainer on the device Ray assigned (a GPU slice or CPUs). After each epoch it reports
every member's validation score, the population's score (its best live member: what
ASHA compares), and where and when it ran (Ray node id, assigned resources, start time),
so placement can be checked from Ray's own records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import ray
import torch
from ray import tune

from autolr.backends.ray_record import (
    CURVES_KEY, DURATIONS_KEY, EPOCHS_KEY, ERRORS_KEY, MEMBER_SCORES_KEY, MEMBER_STATES_KEY, MEMBERS_KEY,
    SPEC_KEY,
)
from autolr.population import train_population
from autolr.spec import ScheduleSpec

SCORE_KEY = "score"  # the population's score per epoch: its best live member's
NODE_KEY = "node_id"  # Ray node the trial ran on
STARTED_KEY = "started_at"  # Unix time (s) the trial's training started
RESOURCES_KEY = "resources"  # Ray resources assigned to the trial, e.g. {"CPU": 1.0, "GPU": 0.25}
REPORTED_KEY = "reported_at"  # Unix time (s) of this report


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a study shares: the run budget, the metric and the seeds.

    ``epochs`` per trial; ``seed`` initialises every member's model (the same weights for
    every schedule, as in the Optuna backend); ``device``: "auto" picks the GPU Ray
    assigned, else the CPU.
    """

    model: str
    epochs: int
    batch_size: int
    metric: str
    seed: int
    device: str = "auto"

    @property
    def worst_score(self) -> float:
        """The score a population with no live member reports (accuracy 0, loss infinite)."""
        return 0.0 if self.metric == "accuracy" else float("inf")

    def best(self, scores: list[float]) -> float:
        """The best of ``scores`` for this metric (the worst score when empty)."""
        if not scores:
            return self.worst_score
        return max(scores) if self.metric == "accuracy" else min(scores)


def trial_device(requested: str) -> torch.device:
    """The device a trial trains on: the GPU Ray made visible, or the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class _EpochReporter:
    """Collects the members' scores of one epoch and reports them to Tune once all are in.

    The population trainer calls ``on_epoch`` for each live member in index order and
    skips members that diverged, so an epoch is complete at its last live member, or when
    the next epoch begins. The last epoch is reported with the final states instead.
    """

    def __init__(self, size: int, settings: TrialSettings, placement: dict[str, Any]) -> None:
        self.settings = settings
        self.placement = placement
        self.alive = list(range(size))
        self.size = size
        self.epoch = 0
        self.scores: dict[int, float] = {}

    def on_epoch(self, member: int, epoch: int, score: float) -> bool:
        """The population trainer's callback; members are never stopped here (ASHA stops trials)."""
        if epoch != self.epoch:
            self._flush()
            self.epoch = epoch
        self.scores[member] = score
        if member == self.alive[-1] and epoch + 1 < self.settings.epochs:
            self._flush()
            self.epoch = epoch + 1
        return False

    def _flush(self) -> None:
        if not self.scores:
            return
        self.alive = [member for member in self.alive if member in self.scores]
        tune.report(self.result([self.scores.get(member) for member in range(self.size)]))
        self.scores = {}

    def result(self, scores: list[float | None]) -> dict[str, Any]:
        """A Tune result: the members' scores (None: stopped), their best, and the placement."""
        live = [score for score in scores if score is not None]
        return {SCORE_KEY: self.settings.best(live), MEMBER_SCORES_KEY: scores, REPORTED_KEY: time.time(),
                **self.placement}


def train_members(config: dict[str, Any], settings: TrialSettings, splits: Any) -> None:
    """Tune's trainable: train the members of ``config`` as one population, reporting each epoch.

    ``splits`` arrives through Ray's object store (``tune.with_parameters``), so worker
    nodes need no copy of the dataset.
    """
    placement = {
        NODE_KEY: ray.get_runtime_context().get_node_id(),
        STARTED_KEY: time.time(),
        RESOURCES_KEY: dict(ray.get_runtime_context().get_assigned_resources()),
    }
    members = config[MEMBERS_KEY]
    specs = [ScheduleSpec.from_dict(member[SPEC_KEY]) for member in members]
    reporter = _EpochReporter(len(specs), settings, placement)
    results = train_population(
        specs, settings.model, splits, settings.epochs, settings.batch_size,
        seeds=[settings.seed] * len(specs), data_seed=settings.seed, metric=settings.metric,
        on_epoch=reporter.on_epoch, device=trial_device(settings.device),
    )
    final = reporter.result([
        result.val_scores[-1] if result.status == "complete" and result.val_scores else None for result in results])
    tune.report({
        **final,
        MEMBER_STATES_KEY: [result.status for result in results],
        EPOCHS_KEY: [result.epochs_run for result in results],
        DURATIONS_KEY: [result.duration_s for result in results],
        ERRORS_KEY: [result.reason for result in results],
        CURVES_KEY: [result.val_scores for result in results],
    })
