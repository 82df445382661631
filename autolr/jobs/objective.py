"""A user's own training function as a study's job: ``objective(schedule, trial)``, one run at a time.

The objective's contract (``autolr.search``): it trains with ``schedule`` from ``trial.seed``
(its initial weights and its data order) for ``trial.epochs`` epochs, may call
``trial.report(score, epoch)`` after each epoch (it raises :class:`~autolr.trials.TrialPruned`
when the pruner stops the trial), and returns its validation score, or a mapping
``{"val": ..., "test": ...}`` when it also has a held-out test score. Search trials get the
study's seed; the verdict's re-scoring calls it again with fresh seeds, at the user's
training length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Sequence

from autolr.errors import one_line
from autolr.schedule.schedulers import recording_optimizers
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import schedule_free_optimizer
from autolr.study.definition import SearchDefinition
from autolr.study.records import TrialState
from autolr.trials import Evaluate, Scores, Trial, TrialOutcome, TrialPruned

Objective = Callable[[ScheduleSpec, Any], Any]  # (schedule, trial) -> score or {"val": ..., "test": ...}
SPEC_OPTIMIZERS_NOTE = ("the schedule-free and Prodigy baselines were left out: the objective builds its own "
                        "optimizer (build it with schedule.build_optimizer(params) to include them)")


@dataclass(frozen=True)
class Scored:
    """What one run of the objective returned: its validation score and, when given, its test score."""

    val: float
    test: float | None = None


def parse_result(value: Any) -> Scored | TrialOutcome:
    """The objective's return value as scores, or the outcome it means when it is not a finite number
    (not a number: failed; NaN or infinite: diverged)."""
    test: Any = None
    if isinstance(value, Mapping):
        if "val" not in value:
            return TrialOutcome(TrialState.FAILED, error="the objective returned a mapping without a 'val' score")
        value, test = value["val"], value.get("test")
    try:
        val = float(value)
        test = None if test is None else float(test)
    except (TypeError, ValueError):
        return TrialOutcome(TrialState.FAILED, error=f"the objective returned {type(value).__name__}, not a number")
    if not math.isfinite(val):
        return TrialOutcome(TrialState.DIVERGED, error=f"the objective returned {val}")
    return Scored(val, test)


@dataclass
class ObjectiveJob:
    """``objective`` (see the module docstring) as a Job; ``device`` is where its runs train, in the
    report's words (the objective itself chooses)."""

    objective: Objective
    device: str = "cpu"
    score_step: float = 0.0  # the smallest step the objective's score can take (1 / validation rows for accuracy)

    def evaluator(self, definition: SearchDefinition) -> Evaluate:
        """Run the objective on each asked trial in turn, with the study's seed and epochs.

        :class:`TrialPruned` makes the trial pruned; any other exception fails that trial alone
        (its one-line reason is stored) and the search goes on."""

        def evaluate(trials: Sequence[Trial]) -> list[TrialOutcome]:
            outcomes = []
            for trial in trials:
                run = SearchRun(trial, definition.seed, definition.epochs)
                started = time.perf_counter()
                try:
                    scored = parse_result(self.objective(trial.spec, run))
                    outcome = (scored if isinstance(scored, TrialOutcome)
                               else TrialOutcome(TrialState.COMPLETE, value=scored.val))
                except TrialPruned:
                    outcome = TrialOutcome(TrialState.PRUNED)
                except Exception as error:  # the user's code failed: record it, keep searching
                    outcome = TrialOutcome(TrialState.FAILED, error=one_line(error))
                outcome.epochs_run = max(outcome.epochs_run, run.epochs_reported)
                outcome.duration_s = time.perf_counter() - started
                outcomes.append(outcome)
            return outcomes

        return evaluate

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        """Run the objective once per spec and seed (``population`` is ignored: one run at a time);
        a run that raises or returns no finite score counts as failed (NaN)."""
        val: list[list[float]] = [[] for _ in specs]
        test: list[list[float]] = [[] for _ in specs]
        for seed in seeds:
            for index, spec in enumerate(specs):
                try:
                    scored = parse_result(self.objective(spec, FreshRun(spec, seed, epochs)))
                except Exception:  # a failed seed counts as failed in the verdict
                    scored = TrialOutcome(TrialState.FAILED)
                if not isinstance(scored, Scored):
                    scored = Scored(math.nan)
                val[index].append(scored.val)
                if score_test:
                    test[index].append(math.nan if scored.test is None else scored.test)
        return val, test

    def resolution(self) -> tuple[float, float]:
        return self.score_step, self.score_step

    def optimizer_baselines(self) -> str | None:
        """Whether the objective builds its optimizer with ``schedule.build_optimizer``: found by
        running it on a schedule-free spec until its first ``trial.report`` (or its end, when it
        never reports)."""
        probe = ScheduleSpec("constant", 1e-3, optimizer=schedule_free_optimizer({"name": "sgd"}))
        with recording_optimizers() as built:
            try:
                self.objective(probe, FreshRun(probe, seed=0, epochs=1, stop_at_report=True))
            except Exception:  # _ProbeDone, or whatever the objective raised: what it built so far counts
                pass
        return None if built else SPEC_OPTIMIZERS_NOTE


class _ProbeDone(Exception):
    """Stops the optimizer probe at the objective's first report."""


@dataclass
class SearchRun:
    """The trial an objective gets during the search: the engine's trial, plus the run's seed and epochs."""

    trial: Trial
    seed: int
    epochs: int | None
    epochs_reported: int = 0

    def report(self, value: float, epoch: int) -> None:
        """Store the score after ``epoch`` (from 0); raise TrialPruned when the pruner says stop."""
        self.epochs_reported = max(self.epochs_reported, epoch + 1)
        self.trial.report(value, epoch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trial, name)


@dataclass
class FreshRun:
    """The trial an objective gets when re-scored on a fresh seed: reports are kept, never pruned."""

    spec: ScheduleSpec
    seed: int
    epochs: int | None
    stop_at_report: bool = False
    number: int | None = None
    baseline: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reported: list[float] = field(default_factory=list)

    def observe(self, value: float, epoch: int) -> bool:
        self.reported.append(float(value))
        return False

    def report(self, value: float, epoch: int) -> None:
        if self.stop_at_report:
            raise _ProbeDone
        self.observe(value, epoch)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Nothing is stored for a fresh run."""
