"""The functions Ray Tune trials run: a study's population of schedules, or a user's objective.

One Tune trial trains ``len(config["members"])`` schedules at once with the population
trainer on the device Ray assigned (a GPU slice or CPUs). After each epoch it reports
every member's validation score, the population's score (its best live member: what
ASHA compares), and where and when it ran (Ray node id, assigned resources, start time),
so placement can be checked from Ray's own records.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from autolr.backends.ray.record import (
    BASELINE_KEY,
    CURVES_KEY,
    DURATIONS_KEY,
    EPOCHS_KEY,
    ERRORS_KEY,
    MEMBER_SCORES_KEY,
    MEMBER_STATES_KEY,
    MEMBERS_KEY,
    POPULATION_KEY,
    SPEC_KEY,
)
from autolr.schedule.spec import ScheduleSpec
from autolr.training.population import train_population

SCORE_KEY = "score"  # the population's score per epoch: its best live member's
NODE_KEY = "node_id"  # Ray node the trial ran on
STARTED_KEY = "started_at"  # Unix time (s) the trial's training started
RESOURCES_KEY = "resources"  # Ray resources assigned to the trial, e.g. {"CPU": 1.0, "GPU": 0.25}
REPORTED_KEY = "reported_at"  # Unix time (s) of this report
FINAL_RESULT_FILE = "final_result.json"  # in the checkpoint of a trial's final report


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
    threads: int | None = None  # torch threads of a trial on a CPU (None: as Ray starts it)

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


def report_final(result: dict[str, Any]) -> None:
    """Report a trial's final result to Tune with a checkpoint that holds it.

    A run stopped after this report but before Tune closed the trial restores the trial from
    that checkpoint, and :func:`saved_final_result` lets it report the same result again
    instead of training it a second time.
    """
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / FINAL_RESULT_FILE).write_text(json.dumps(result), encoding="utf-8")
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def saved_final_result() -> dict[str, Any] | None:
    """The final result this trial reported before its run was stopped and restored, if any."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / FINAL_RESULT_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def train_members(config: dict[str, Any], settings: TrialSettings, splits: Any) -> None:
    """Tune's trainable: train the members of ``config`` as one population, reporting each epoch.

    ``splits`` arrives through Ray's object store (``tune.with_parameters``), so worker
    nodes need no copy of the dataset. A trial restored after its final report reports that
    result again and trains nothing.
    """
    if (final := saved_final_result()) is not None:
        tune.report(final)
        return
    placement = {
        NODE_KEY: ray.get_runtime_context().get_node_id(),
        STARTED_KEY: time.time(),
        RESOURCES_KEY: dict(ray.get_runtime_context().get_assigned_resources()),
    }
    members = config[MEMBERS_KEY]
    specs = [ScheduleSpec.from_dict(member[SPEC_KEY]) for member in members]
    reporter = _EpochReporter(len(specs), settings, placement)
    device = trial_device(settings.device)
    if settings.threads is not None and device.type == "cpu":
        torch.set_num_threads(settings.threads)  # the study's choice (autolr.study.steps.study_threads)
    results = train_population(
        specs, settings.model, splits, settings.epochs, settings.batch_size,
        seeds=[settings.seed] * len(specs), data_seed=settings.seed, metric=settings.metric,
        on_epoch=reporter.on_epoch, device=device,
    )
    final = reporter.result([
        result.val_scores[-1] if result.status == "complete" and result.val_scores else None for result in results])
    report_final({
        **final,
        MEMBER_STATES_KEY: [result.status for result in results],
        EPOCHS_KEY: [result.epochs_run for result in results],
        DURATIONS_KEY: [result.duration_s for result in results],
        ERRORS_KEY: [result.reason for result in results],
        CURVES_KEY: [result.val_scores for result in results],
    })


class ObjectiveTrial:
    """The trial a user's objective gets inside a Ray trial: ``report`` goes to Tune.

    Ray Tune's scheduler stops a weak trial itself (the objective just stops being run),
    so ``report`` never raises and ``observe`` always says go on.
    """

    def __init__(self, number: int, member: dict[str, Any], maximize: bool, placement: dict[str, Any]) -> None:
        self.number = number
        self.spec = ScheduleSpec.from_dict(member[SPEC_KEY])
        self.params = {key: value for key, value in member.items() if key not in (SPEC_KEY, BASELINE_KEY)}
        self.baseline = member.get(BASELINE_KEY)
        self.scores: list[float] = []
        self.maximize = maximize
        self.placement = placement

    def observe(self, value: float, epoch: int) -> bool:
        """Report the score after ``epoch`` to Tune; False: the objective goes on."""
        self.report(value, epoch)
        return False

    def report(self, value: float, epoch: int) -> None:
        """Report the validation score after ``epoch`` (from 0) to Tune."""
        self.scores.append(float(value))
        tune.report({SCORE_KEY: float(value), MEMBER_SCORES_KEY: [float(value)], REPORTED_KEY: time.time(),
                     **self.placement})

    def set_user_attr(self, key: str, value: Any) -> None:
        """Accepted for the API's Trial protocol; the Ray backend keeps no user attributes."""


def run_objective(config: dict[str, Any], objective: Callable[[ScheduleSpec, Any], float], maximize: bool) -> None:
    """Tune's trainable for ``autolr.search(objective, backend="ray")``: one schedule per trial.

    Runs the engine-neutral evaluator (an error fails this trial alone, a NaN result is
    diverged) and reports the outcome as the final result.
    """
    from autolr.trials import objective_evaluator

    if (final := saved_final_result()) is not None:
        tune.report(final)
        return
    placement = {NODE_KEY: ray.get_runtime_context().get_node_id(), STARTED_KEY: time.time(),
                 RESOURCES_KEY: dict(ray.get_runtime_context().get_assigned_resources())}
    trial = ObjectiveTrial(config[POPULATION_KEY], config[MEMBERS_KEY][0], maximize, placement)
    [outcome] = objective_evaluator(objective, "maximize" if maximize else "minimize")([trial])
    complete = outcome.status == "complete"
    worst = -math.inf if maximize else math.inf
    report_final({
        SCORE_KEY: outcome.value if complete else worst, MEMBER_SCORES_KEY: [outcome.value if complete else None],
        REPORTED_KEY: time.time(), **placement,
        MEMBER_STATES_KEY: [outcome.status], EPOCHS_KEY: [outcome.epochs_run], DURATIONS_KEY: [outcome.duration_s],
        ERRORS_KEY: [outcome.error], CURVES_KEY: [trial.scores],
    })
