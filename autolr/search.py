"""The search, engine-neutral: ``autolr.search(objective, ...)`` and the ask/evaluate/tell loop.

The same loop runs a user's objective (one trial at a time) and the built-in datasets
(K trials at once as a population, see :mod:`autolr.study_run`), so the Python API and the
command line cannot drift apart. An engine (``autolr.backends``) stores the study, samples
trials from a :class:`~autolr.space.SearchSpace` and decides pruning; this module never
imports Optuna, and neither does a user's objective: ``trial.report(value, epoch)`` raises
:class:`TrialPruned`, autolr's own prune signal.

Example (runs as it is; the README shows it)::

    import torch
    import autolr

    def objective(schedule: autolr.ScheduleSpec, trial) -> float:
        torch.manual_seed(0)
        weight = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.SGD([weight], lr=schedule.lr)
        scheduler = schedule.build(optimizer, total_steps=20)
        for epoch in range(20):
            loss = ((weight - torch.tensor([3.0, -1.0])) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            trial.report(-loss.item(), epoch)  # raises autolr.TrialPruned when pruned
        return -loss.item()

    space = autolr.SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine", "step"))
    result = autolr.search(objective, space=space, n_trials=12, epochs=20, seed=0)
    print(result.best_spec.family, result.best_value)
    result.report("reports/quadratic")
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar

from autolr.errors import StudyError, one_line
from autolr.interrupts import ctrl_c_held
from autolr.spec import ScheduleSpec

if TYPE_CHECKING:
    import pandas as pd

    from autolr.baselines import Baseline
    from autolr.records import StudyRecord
    from autolr.report.write import ReportPaths
    from autolr.space import SearchSpace

OUTCOME_STATES = ("complete", "pruned", "diverged", "failed", "interrupted")


class TrialPruned(Exception):
    """Raised by ``trial.report`` when the pruner stops the trial; let it leave the objective."""


@dataclass
class TrialOutcome:
    """How one trial ended: ``status`` one of OUTCOME_STATES, ``value`` the final validation
    score (complete trials), ``epochs_run`` a count, ``duration_s`` wall-clock seconds,
    ``error`` a one-line reason for diverged, failed or interrupted trials."""

    status: str
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
        """Queue the baselines as the next trials, once per study."""

    def recover_interrupted(self) -> list[int]:
        """Mark interrupted the running trials whose process is gone; return their numbers."""

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


def run_trials(
    engine: Engine[TrialT],
    evaluate: Evaluate,
    n_trials: int,
    batch_size: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Ask up to ``batch_size`` trials, evaluate them together, tell; until the study holds ``n_trials``.

    Trials are asked one at a time and the budget is re-read before each ask, so several
    processes sharing the study stop together. Should the asking or the evaluation be
    stopped (Ctrl-C, an error outside the objective) the trials in flight are marked
    interrupted, queued to run again, and the exception goes on; a Ctrl-C while finished
    trials are being stored takes effect once they are stored.
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
                while len(trials) < batch_size and engine.remaining(n_trials) > 0:
                    trial = engine.ask()
                    if trial is None:
                        break
                    trials.append(trial)
            if not trials:
                with ctrl_c_held():
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


def objective_evaluator(objective: Callable[[ScheduleSpec, Trial], float], direction: str) -> Evaluate:
    """Run a user's ``objective(spec, trial) -> float`` on each trial in turn.

    :class:`TrialPruned` makes the trial pruned; any other exception fails that trial alone
    (its one-line reason is stored) and the search goes on; a NaN or infinite result is
    recorded as diverged.
    """

    def evaluate(trials: Sequence[Trial]) -> list[TrialOutcome]:
        outcomes = []
        for trial in trials:
            reports = _ReportCounter(trial)
            started = time.perf_counter()
            try:
                value = objective(trial.spec, reports)
                outcome = _finished(value, direction)
            except TrialPruned:
                outcome = TrialOutcome("pruned")
            except Exception as error:  # the user's code failed: record it, keep searching
                outcome = TrialOutcome("failed", error=one_line(error))
            outcome.epochs_run = max(outcome.epochs_run, reports.epochs)
            outcome.duration_s = time.perf_counter() - started
            outcomes.append(outcome)
        return outcomes

    return evaluate


def _finished(value: Any, direction: str) -> TrialOutcome:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return TrialOutcome("failed", error=f"the objective returned {type(value).__name__}, not a number")
    if not math.isfinite(value):
        return TrialOutcome("diverged", error=f"the objective returned {value}")
    return TrialOutcome("complete", value=value)


class _ReportCounter:
    """The trial handed to a user's objective: counts the epochs it reports."""

    def __init__(self, trial: Trial) -> None:
        self._trial = trial
        self.epochs = 0

    def report(self, value: float, epoch: int) -> None:
        self.epochs = max(self.epochs, epoch + 1)
        self._trial.report(value, epoch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


class SearchResult:
    """The outcome of :func:`search`: the best schedule and value, every trial, the report."""

    def __init__(self, record: "StudyRecord", storage_url: str) -> None:
        self.record = record
        self.storage_url = storage_url  # may hold a password: redact before showing
        self.study_name = record.name

    @property
    def best_spec(self) -> ScheduleSpec | None:
        """The best schedule by the report's rule, with provenance; None if no trial completed."""
        from autolr.report.rank import rank
        from autolr.report.write import best_spec

        return best_spec(self.record, rank(self.record))

    @property
    def best_value(self) -> float | None:
        """The best validation score by the same rule (re-scored mean when re-scored)."""
        from autolr.report.rank import rank

        best = rank(self.record).best
        return None if best is None else float(best["val_mean"])

    def to_dataframe(self) -> "pd.DataFrame":
        """One row per trial: number, state, baseline, spec fields, epochs run, scores, duration."""
        from autolr.report.rank import trials_table

        return trials_table(self.record)

    def report(self, path: str | Path) -> "ReportPaths":
        """Write index.html, trials.csv and best_schedule.json into the folder ``path``."""
        from autolr.report.write import write_report

        return write_report(self.record, path)


def search(
    objective: Callable[[ScheduleSpec, Trial], float],
    space: "SearchSpace",
    n_trials: int,
    storage: str | None = None,
    backend: str = "optuna",
    study_name: str = "autolr",
    direction: str = "maximize",
    sampler: str = "tpe",
    pruner: str = "hyperband",
    epochs: int | None = None,
    prune_after: float = 0.25,
    seed: int = 0,
    baselines: bool = True,
    baselines_lr: float | None = None,
    metric_name: str = "val_score",
) -> SearchResult:
    """Search ``space`` for the schedule that maximizes (or minimizes) ``objective``.

    ``objective(schedule, trial) -> float`` trains with ``schedule`` (e.g.
    ``schedule.build(optimizer, total_steps)``), calls ``trial.report(score, epoch)`` after
    each epoch (epochs counted from 0) and returns the final validation score. ``n_trials``
    counts every trial the study should hold: rerunning with the same ``storage`` and
    ``study_name`` resumes it. ``storage``: an Optuna storage URL (None: in memory); with
    ``backend="ray"`` a folder (None: ``reports``) that holds ``<study_name>/ray``.
    ``epochs``: the budget per trial, so the pruner knows where a trial stands (None:
    learnt from the first completed trial). ``baselines``: evaluate constant, step, cosine
    and one-cycle (those among the space's families) first, at ``baselines_lr`` (None: the
    geometric middle of the space's LR interval). ``metric_name``: what the score is (e.g.
    ``val_accuracy``), the name Optuna's own tools (optuna-dashboard) show it under. Errors
    in the objective fail that trial only; the search goes on.
    """
    check_positive("n_trials", n_trials)
    if direction not in ("maximize", "minimize"):
        raise StudyError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if not isinstance(metric_name, str) or not metric_name.strip():
        raise StudyError(f"metric_name must be a non-empty name such as 'val_accuracy', got {metric_name!r}")
    baseline_specs = baselines_of(space, baselines_lr) if baselines else []
    if backend == "ray":  # Ray Tune drives its own trials: no ask/tell engine
        from autolr.backends.ray_backend import search_objective

        return SearchResult(*search_objective(objective, space, n_trials, baseline_specs, storage, {
            "name": study_name, "direction": direction, "epochs": epochs, "sampler": sampler, "pruner": pruner,
            "prune_after": prune_after, "seed": seed}))
    engine = open_search(backend, space, n_trials, baseline_specs, storage=storage, study_name=study_name,
                         direction=direction, sampler=sampler, pruner=pruner, epochs=epochs, prune_after=prune_after,
                         seed=seed, metric_name=metric_name)
    run_trials(engine, objective_evaluator(objective, direction), n_trials)
    return SearchResult(engine.read_record(), engine.storage_url)


def check_positive(name: str, value: Any) -> None:
    """Raise StudyError unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StudyError(f"{name} must be a positive integer, got {value!r}")


def baselines_of(space: "SearchSpace", lr: float | None) -> list[Baseline]:
    """The space's baselines at ``lr`` (None: the geometric middle of its LR interval)."""
    return space.baselines(lr or math.sqrt(space.lr_low * space.lr_high))


def open_search(
    backend: str, space: "SearchSpace", n_trials: int, baseline_specs: Sequence[Baseline], *, storage: str | None,
    study_name: str, direction: str, sampler: str, pruner: str, epochs: int | None, prune_after: float, seed: int,
    metric_name: str = "val_score",
) -> Engine[Any]:
    """The ask/tell engine of a search's study (arguments as in :func:`search`): claimed, its
    baselines queued once, trials whose process died marked interrupted."""
    from autolr.backends import open_engine

    engine = open_engine(
        backend, storage=storage, study_name=study_name, space=space, direction=direction,
        sampler=sampler, pruner=pruner, epochs=epochs, prune_after=prune_after, seed=seed,
        n_trials=n_trials, metric_name=metric_name,
    )
    engine.claim({"name": study_name, "direction": direction, "space": space.to_dict(), "epochs": epochs},
                 identity_keys=("direction", "space", "epochs"))
    if baseline_specs:
        engine.queue_baselines(baseline_specs)
    engine.recover_interrupted()
    return engine
