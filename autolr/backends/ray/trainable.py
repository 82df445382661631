"""The functions Ray Tune trials run: a built-in study's population of schedules, or any study's job.

One Tune trial trains ``len(config["members"])`` schedules at once: a built-in study with the
population trainer on the device Ray assigned (a GPU slice or CPUs, :func:`train_members`),
any other job (a user's objective, one schedule per trial) through its own evaluator
(:func:`run_job`). After each epoch it reports
every member's validation score, the population's score (its best live member: what
ASHA compares), and where and when it ran (Ray node id, assigned resources, start time),
so placement can be checked from Ray's own records.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
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
    UNKNOWN_EPOCHS,
)
from autolr.schedule.spec import ScheduleSpec
from autolr.study.definition import Direction, SearchDefinition
from autolr.study.records import TrialState
from autolr.training.population import train_population
from autolr.trials import Job

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
    assigned, else the CPU; ``grad_clip``: each member's gradient norm limit (None: none).
    """

    model: str
    epochs: int
    batch_size: int
    metric: str
    seed: int
    device: str = "auto"
    threads: int | None = None  # torch threads of a trial on a CPU (None: as Ray starts it)
    grad_clip: float | None = None

    @property
    def direction(self) -> Direction:
        return Direction.of_metric(self.metric)


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

    def __init__(self, size: int, epochs: int | None, direction: Direction, placement: dict[str, Any]) -> None:
        self.epochs = epochs or UNKNOWN_EPOCHS
        self.direction = direction
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
        if member == self.alive[-1] and epoch + 1 < self.epochs:
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
        return {SCORE_KEY: best_score(live, self.direction), MEMBER_SCORES_KEY: scores, REPORTED_KEY: time.time(),
                **self.placement}


def best_score(scores: list[float], direction: Direction) -> float:
    """The best of ``scores``; with none, the worst score there is (what Tune sees of an all-stopped trial)."""
    if not scores:
        return -math.inf * direction.sign
    return max(scores, key=lambda score: direction.sign * score)


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
    reporter = _EpochReporter(len(specs), settings.epochs, settings.direction, placement)
    device = trial_device(settings.device)
    if settings.threads is not None and device.type == "cpu":
        torch.set_num_threads(settings.threads)  # the study's choice (autolr.study.steps.study_threads)
    results = train_population(
        specs, settings.model, splits, settings.epochs, settings.batch_size,
        seeds=[settings.seed] * len(specs), data_seed=settings.seed, metric=settings.metric,
        on_epoch=reporter.on_epoch, device=device, grad_clip=settings.grad_clip,
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


class TuneMember:
    """One schedule of a Tune trial, as the job's evaluator sees a trial: its scores go to Tune.

    Ray Tune's scheduler stops a weak trial itself (the job just stops being run), so
    ``observe`` always says go on and ``report`` never raises.
    """

    def __init__(self, number: int, member: dict[str, Any], reporter: _EpochReporter, index: int,
                 definition: SearchDefinition) -> None:
        self.number = number
        self.seed = definition.seed  # every search trial trains from the study's seed
        self.epochs = definition.epochs
        self.spec = ScheduleSpec.from_dict(member[SPEC_KEY])
        self.params = {key: value for key, value in member.items() if key not in (SPEC_KEY, BASELINE_KEY)}
        self.baseline = member.get(BASELINE_KEY)
        self.scores: list[float] = []
        self._reporter = reporter
        self._index = index

    def observe(self, value: float, epoch: int) -> bool:
        """Hand the score after ``epoch`` to Tune (with the other members'); False: go on."""
        self.scores.append(float(value))
        self._reporter.on_epoch(self._index, epoch, float(value))
        return False

    def report(self, value: float, epoch: int) -> None:
        self.observe(value, epoch)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Accepted for the Trial protocol; the Ray backend keeps no user attributes."""


def run_job(config: dict[str, Any], job: Job, definition: SearchDefinition) -> None:
    """Tune's trainable for a study's job (``trials.Job``): the trial's members through the job's evaluator.

    An error fails the member alone, a NaN result is diverged; a trial restored after its
    final report reports that result again and trains nothing.
    """
    if (final := saved_final_result()) is not None:
        tune.report(final)
        return
    placement = {NODE_KEY: ray.get_runtime_context().get_node_id(), STARTED_KEY: time.time(),
                 RESOURCES_KEY: dict(ray.get_runtime_context().get_assigned_resources())}
    members = config[MEMBERS_KEY]
    reporter = _EpochReporter(len(members), definition.epochs, definition.direction, placement)
    trials = [TuneMember(config[POPULATION_KEY] * len(members) + index, member, reporter, index, definition)
              for index, member in enumerate(members)]
    outcomes = job.evaluator(definition)(trials)
    final = reporter.result([outcome.value if outcome.status == TrialState.COMPLETE else None
                             for outcome in outcomes])
    report_final({
        **final,
        MEMBER_STATES_KEY: [str(outcome.status) for outcome in outcomes],
        EPOCHS_KEY: [outcome.epochs_run for outcome in outcomes],
        DURATIONS_KEY: [outcome.duration_s for outcome in outcomes],
        ERRORS_KEY: [outcome.error for outcome in outcomes],
        CURVES_KEY: [trial.scores for trial in trials],
    })
