"""Trials, jobs and the ask/evaluate/tell loop: what an engine, the pipeline and a job exchange.

Engine-neutral: the same loop runs every study's trials, evaluated by its :class:`Job`
(``autolr.jobs``: a user's objective one trial at a time, a user's module or a built-in
study as populations). An engine (``autolr.backends``) stores the study, samples trials
and decides pruning behind :class:`Engine`; this module never imports Optuna, and neither
does a user's objective: ``trial.report(value, epoch)`` raises :class:`TrialPruned`,
autolr's own prune signal.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar

from autolr.interrupts import ctrl_c_held
from autolr.schedule.spec import ScheduleSpec
from autolr.study.records import TrialState

if TYPE_CHECKING:
    from autolr.study.definition import SearchDefinition
    from autolr.study.records import StudyRecord



class TrialPruned(Exception):
    """Raised by ``trial.report`` when the pruner stops the trial; let it leave the objective."""


@dataclass
class TrialOutcome:
    """How one trial ended: ``status`` any TrialState but RUNNING, ``value`` the final validation
    score (complete trials), ``epochs_run`` a count, ``duration_s`` wall-clock seconds,
    ``error`` a one-line reason for diverged, failed or interrupted trials."""

    status: TrialState
    value: float | None = None
    epochs_run: int = 0
    duration_s: float = 0.0
    error: str | None = None


class Trial(Protocol):
    """What an objective gets beside its schedule: a handle on its trial in the study."""

    number: int  # the trial's number in the study, from 0
    spec: ScheduleSpec  # the schedule to train with
    params: dict[str, Any]  # the sampled parameters the spec was built from
    baseline: str | None  # the baseline's name, or None for a sampled trial
    seed: int  # the seed the run must use for its initial weights and its data order
    epochs: int | None  # how long the run trains (None: the search was not told)

    def observe(self, value: float, epoch: int) -> bool:
        """Store the validation score after ``epoch`` (from 0); True when the pruner says stop."""

    def report(self, value: float, epoch: int) -> None:
        """Store the score after ``epoch`` (from 0); raise :class:`TrialPruned` to stop."""

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe value with the trial."""


TrialT = TypeVar("TrialT", bound=Trial)  # an engine's own trial type


class Engine(Protocol[TrialT]):
    """A search engine's side of the loop (see ``autolr.backends``), over its own trials ``TrialT``."""

    storage_url: str  # where the study lives (may hold a password: redact before showing)
    study_name: str

    def claim(self, definition: dict[str, Any], identity_keys: Sequence[str]) -> None:
        """Store the study definition once; refuse a rerun whose ``identity_keys`` differ."""

    def get_attr(self, key: str) -> Any:
        """A study-level value (None when absent)."""

    def set_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe study-level value."""

    def queue_baselines(self, baselines: Sequence[Any]) -> None:
        """Queue the baselines as the next trials, each (by name) once per study."""

    def recover_interrupted(self, wait: bool = False) -> list[int]:
        """Mark interrupted the running trials that no live process runs; return their numbers.
        ``wait``: first let other processes' asks in progress end (the end of a search)."""

    def remaining(self, n_trials: int) -> int:
        """How many trials may still be asked so the study holds ``n_trials`` (finished or running)."""

    def ask(self) -> TrialT | None:
        """The next trial (queued baselines and retries first); None when the space is exhausted."""

    def tell(self, trial: TrialT, outcome: TrialOutcome) -> None:
        """Store how ``trial`` ended."""

    def running(self, trials: Sequence[TrialT]) -> AbstractContextManager[None]:
        """Keep ``trials`` marked alive (heartbeats) while they train."""

    def interrupt(self, trials: Sequence[TrialT], reason: str) -> None:
        """Mark ``trials`` interrupted (not failed on their own) and queue them to run again."""

    def progress(self) -> "Progress":
        """The study's counts and best trial so far."""

    def read_record(self) -> "StudyRecord":
        """The study as an engine-neutral record."""


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running search: trials per state, the best so far, timing."""

    target: int  # trials the study should hold
    counts: dict[str, int]  # complete, pruned, diverged, failed, interrupted, running
    best_value: float | None = None
    best_family: str | None = None
    best_number: int | None = None
    elapsed_s: float = 0.0  # this run's wall-clock seconds
    finished_this_run: int = 0  # trials this run finished (for trials per minute and ETA)

    @property
    def finished(self) -> int:
        """Trials that ended in any way but interrupted."""
        return sum(self.counts.get(state, 0) for state in ("complete", "pruned", "diverged", "failed"))

    @property
    def trials_per_minute(self) -> float | None:
        """This run's rate, or None before a trial finished."""
        if not self.finished_this_run or self.elapsed_s <= 0:
            return None
        return 60.0 * self.finished_this_run / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        """Seconds until the study holds ``target`` finished trials at this run's rate."""
        rate = self.trials_per_minute
        return None if rate is None else 60.0 * max(self.target - self.finished, 0) / rate


Evaluate = Callable[[Sequence[Trial]], list[TrialOutcome]]
Scores = tuple[list[list[float]], list[list[float]]]  # (val, test), each scores[spec][seed]


class Job(Protocol):
    """What trains a study's schedules (``autolr.jobs``): the search's trials and the verdict's fresh runs.

    A built-in study's population, a user's module trained as populations and a user's
    objective are each a Job; the study pipeline and the engines see nothing else of them.
    ``device``: where it trains (``cpu``, ``cuda``, ...), for its threads and the report.
    """

    device: str

    def evaluator(self, definition: "SearchDefinition") -> Evaluate:
        """Train the asked search trials with the study's seed for ``definition.epochs`` epochs."""

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        """Every spec's final validation score (and, with ``score_test``, test score; else empty
        lists) from each seed, NaN where the run failed; seed ``s`` gives every spec the same
        initial weights and batch order, so specs compare paired by seed."""

    def resolution(self) -> tuple[float, float]:
        """The smallest step a (validation, test) score can take, in score units (0: continuous);
        the verdict floors the spread of paired differences at it."""

    def optimizer_baselines(self) -> str | None:
        """None when runs train with the optimizer a spec names (schedule-free and Prodigy
        baselines work); else one sentence saying why those baselines are left out."""


def run_trials(
    engine: Engine[TrialT],
    evaluate: Evaluate,
    n_trials: int,
    population: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Ask up to ``population`` trials, evaluate them together, tell; until the study holds ``n_trials``.

    Trials are asked one at a time and the budget is re-read before each ask, so several
    processes sharing the study stop together. Before it returns, the loop recovers any trial
    left running by a process that died (and runs the retries), so no search ends with one.
    Should the asking or the evaluation be stopped (Ctrl-C, an error outside the objective)
    the trials in flight are marked interrupted, queued to run again, and the exception goes
    on; a Ctrl-C while finished trials are being stored takes effect once they are stored.
    """
    started = time.monotonic()
    finished_this_run = 0

    def snapshot() -> Progress:
        progress = engine.progress()
        return Progress(
            target=n_trials, counts=progress.counts, best_value=progress.best_value,
            best_family=progress.best_family, best_number=progress.best_number,
            elapsed_s=time.monotonic() - started, finished_this_run=finished_this_run,
        )

    if on_progress:
        with ctrl_c_held():
            on_progress(snapshot())
    while True:
        trials: list[TrialT] = []
        try:
            with ctrl_c_held():  # an asked trial is in `trials` (so interrupted below) before Ctrl-C acts
                while len(trials) < population and engine.remaining(n_trials) > 0:
                    trial = engine.ask()
                    if trial is None:
                        break
                    trials.append(trial)
            if not trials:
                with ctrl_c_held():
                    if engine.recover_interrupted(wait=True):  # a trial nobody runs: its retry runs before the end
                        continue
                    return snapshot()
            with engine.running(trials):
                outcomes = evaluate(trials)
        except BaseException as error:
            with ctrl_c_held():  # a second Ctrl-C must not leave a trial marked but its retry unqueued
                engine.interrupt(trials, reason=f"the search stopped ({type(error).__name__}) while it ran")
            raise
        with ctrl_c_held():  # a Ctrl-C now takes effect once every finished trial is stored
            for trial, outcome in zip(trials, outcomes):
                engine.tell(trial, outcome)
            finished_this_run += len(trials)
            if on_progress:
                on_progress(snapshot())
