"""The search API: ``autolr.search(objective, ...)`` over a user's training function.

It runs the same ask/evaluate/tell loop (:mod:`autolr.trials`) as the built-in studies
(K trials at once as a population, see :mod:`autolr.study.run`), so the Python API and the
command line cannot drift apart. An engine (``autolr.backends``) stores the study, samples
trials from a :class:`~autolr.space.search_space.SearchSpace` and decides pruning; a user's objective
never imports Optuna: ``trial.report(value, epoch)`` raises :class:`TrialPruned`, autolr's
own prune signal.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from autolr.errors import StudyError
from autolr.schedule.spec import ScheduleSpec
from autolr.trials import Trial, TrialPruned

__all__ = ["SearchResult", "TrialPruned", "search"]  # TrialPruned: the signal a user's objective raises

if TYPE_CHECKING:
    import pandas as pd

    from autolr.report.write import ReportPaths
    from autolr.space.baselines import Baseline
    from autolr.space.search_space import SearchSpace
    from autolr.study.records import StudyRecord


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
    from autolr.backends import search_objective  # loads the engine (Optuna or Ray) on first use

    return SearchResult(*search_objective(backend, objective, space, n_trials, baseline_specs, storage, {
        "name": study_name, "direction": direction, "epochs": epochs, "sampler": sampler, "pruner": pruner,
        "prune_after": prune_after, "seed": seed, "metric_name": metric_name}))


def check_positive(name: str, value: Any) -> None:
    """Raise StudyError unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StudyError(f"{name} must be a positive integer, got {value!r}")


def baselines_of(space: "SearchSpace", lr: float | None) -> list[Baseline]:
    """The space's baselines at ``lr`` (None: the geometric middle of its LR interval)."""
    return space.baselines(lr or math.sqrt(space.lr_low * space.lr_high))
