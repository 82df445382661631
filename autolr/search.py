"""The search API: ``autolr.search(objective, ...)`` over a user's training function.

It runs the one study pipeline (:mod:`autolr.pipeline.run`) that ``autolr search`` runs for
the built-in datasets: LR-tuned baseline ladders (constant, cosine, one-cycle, linear decay,
schedule-free), the search, re-scoring of the best searched schedules and each baseline's
best rung on fresh seeds, a paired verdict and Occam's export. A user's objective never
imports Optuna: ``trial.report(value, epoch)`` raises :class:`TrialPruned`, autolr's own
prune signal.

The objective's contract: ``objective(schedule, trial)`` trains from ``trial.seed`` (its
initial weights and data order) for ``trial.epochs`` epochs and returns its validation
score, or ``{"val": ..., "test": ...}`` with a held-out test score too.

Example (runs as it is)::

    import torch
    import autolr

    def objective(schedule: autolr.ScheduleSpec, trial) -> float:
        torch.manual_seed(trial.seed)
        weight = torch.randn(2).requires_grad_()
        optimizer = schedule.build_optimizer([weight])  # the schedule-free baselines need this
        scheduler = schedule.build(optimizer, total_steps=trial.epochs)
        for epoch in range(trial.epochs):
            if hasattr(optimizer, "train"):
                optimizer.train()  # schedule-free optimizers switch between train and eval
            loss = ((weight - torch.tensor([3.0, -1.0])) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            if hasattr(optimizer, "eval"):
                optimizer.eval()
            score = -((weight - torch.tensor([3.0, -1.0])) ** 2).sum().item()
            trial.report(score, epoch)  # raises autolr.TrialPruned when pruned
        return score

    space = autolr.SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine", "step"))
    result = autolr.search(objective, space=space, n_trials=30, epochs=20, baseline_lrs=3, rescore_seeds=3)
    print(result.verdict.sentence)
    result.report("reports/quadratic")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from autolr.errors import StudyError
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import baseline_kinds
from autolr.study.definition import Direction, SearchDefinition, check_budget_backend
from autolr.trials import Job, TrialPruned

__all__ = ["SearchResult", "TrialPruned", "search"]  # TrialPruned: the signal a user's objective raises

if TYPE_CHECKING:
    import pandas as pd

    from autolr.pipeline.run import RunFacts
    from autolr.report.write import ReportPaths
    from autolr.space.search_space import SearchSpace
    from autolr.study.records import StudyRecord
    from autolr.study.verdict import Verdict


class SearchResult:
    """The outcome of :func:`search`: the verdict, the exported schedule, every trial, the report."""

    def __init__(self, record: "StudyRecord", storage_url: str) -> None:
        from autolr.report.rank import rank
        from autolr.report.write import best_spec

        self.record = record
        self.storage_url = storage_url  # may hold a password: redact before showing
        self.study_name = record.name
        self._ranking = rank(record)
        self._best_spec = best_spec(record, self._ranking)

    @property
    def verdict(self) -> "Verdict | None":
        """What the re-scoring decided: ``verdict.outcome`` is ``"gain"`` or ``"no gain"`` (``"no
        baselines"``/``"no searched"`` when one side never completed), ``verdict.sentence`` the
        answer in words; None when re-scoring is off (``rescore_seeds=0``) or nothing completed."""
        return self._ranking.verdict

    @property
    def best_spec(self) -> ScheduleSpec | None:
        """The export, with provenance: the searched schedule only when it won, else the best
        tuned baseline; None if no trial completed."""
        return self._best_spec

    @property
    def best_value(self) -> float | None:
        """The exported schedule's validation score: its mean over fresh seeds when re-scored."""
        best = self._ranking.best
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
    objective: Callable[[ScheduleSpec, Any], Any],
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
    metric_name: str = "val_score",
    baseline_lrs: int = 5,
    schedule_free: bool = True,
    rescore_top: int = 3,
    rescore_seeds: int = 5,
    target_epochs: int | None = None,
    dataset: str | None = None,
    model: str | None = None,
    score_step: float = 0.0,
    budget: float | None = None,
) -> SearchResult:
    """Search ``space`` for the schedule that maximizes (or minimizes) ``objective``, and say honestly
    whether it beats LR-tuned standard schedules.

    ``objective(schedule, trial)`` trains with ``schedule`` (``schedule.build(optimizer,
    total_steps)``; build the optimizer with ``schedule.build_optimizer(params)`` so the
    schedule-free and Prodigy baselines can run: a schedule-free optimizer needs
    ``optimizer.train()`` before training and ``optimizer.eval()`` before scoring) from
    ``trial.seed`` (initial weights and data order) for ``trial.epochs`` epochs, calls
    ``trial.report(score, epoch)`` after each epoch (from 0) and returns the final validation
    score, or ``{"val": score, "test": test_score}``. An objective that builds its own
    optimizer is detected (it is run once on a schedule-free spec until its first report) and
    those baselines are left out, which the report says.

    ``n_trials`` counts every trial the study holds, the baselines' ``baseline_lrs`` rungs per
    kind included (0: no baselines); rerunning with the same ``storage`` and ``study_name``
    resumes it. ``storage``: an Optuna storage URL (None: in memory); with ``backend="ray"`` a
    folder (None: ``reports``) that holds ``<study_name>/ray``. ``epochs``: each search
    trial's length (``trial.epochs``; None: the objective decides and ``trial.epochs`` is
    None). Afterwards the ``rescore_top`` best searched schedules and each baseline kind's
    best rung run again from ``rescore_seeds`` fresh seeds (0: no re-scoring; the pick is then
    a single run's) at ``target_epochs`` (None: ``epochs``), and ``result.verdict`` says
    whether the best searched schedule beat the best baseline with a paired 95% interval
    above zero. ``metric_name``: the score's name (``val_accuracy``) in Optuna's own tools
    and, without its ``val_`` prefix, in the verdict. ``score_step``: the smallest step the
    score can take (``1 / validation rows`` for an accuracy; 0: continuous), the floor of the
    verdict's paired spread, so seeds that all differ by exactly one image claim nothing.
    ``dataset``/``model``: what the report's summary calls them (default: "your
    objective"). ``budget``: minutes the whole study should take (optuna only): after the
    baselines' coarse ladders it sizes the search, the refined rungs and the re-scoring to
    fit, and ``result.record.meta["budget"]`` says what it cut. Errors in the objective fail
    that trial only; the search goes on.
    """
    definition = SearchDefinition(
        name=study_name, direction=Direction.parse(direction), trials=n_trials, epochs=epochs,
        metric=metric_words(metric_name), metric_name=metric_name, sampler=sampler, pruner=pruner,
        prune_after=prune_after, seed=seed,
        baseline_lrs=baseline_lrs, schedule_free=schedule_free, rescore_top=rescore_top, rescore_seeds=rescore_seeds,
        target_epochs=target_epochs, budget=budget)
    from autolr.jobs.objective import ObjectiveJob  # torch and the pipeline load on first use: import autolr stays fast
    from autolr.pipeline.run import RunFacts

    if isinstance(score_step, bool) or not isinstance(score_step, (int, float)) or not 0 <= score_step < 1:
        raise StudyError(f"score_step must be a number in [0, 1), got {score_step!r}")
    job = ObjectiveJob(objective, device=_torch_device(), score_step=float(score_step))
    facts = RunFacts(job.device, dataset=dataset or "your objective", model=model or "your objective",
                     data_source=dataset or "your objective")
    return run_api_study(definition, space, job, storage, backend, 1, facts)


def metric_words(metric_name: Any) -> str:
    """The score's name in the verdict's words: ``val_accuracy`` -> ``accuracy``."""
    return metric_name.removeprefix("val_") if isinstance(metric_name, str) else "score"


def check_budget(definition: SearchDefinition, space: "SearchSpace") -> None:
    """StudyError unless the trials leave at least one to the search after the tuned baselines' ladders."""
    kinds = baseline_kinds(space.optimizer, definition.schedule_free)
    baseline_trials = definition.baseline_lrs * len(kinds)
    if baseline_trials >= definition.trials:
        raise StudyError(
            f"n_trials = {definition.trials} leaves no trial to the search after the {baseline_trials} tuned-baseline "
            f"trials ({definition.baseline_lrs} LRs x {len(kinds)} kinds: {', '.join(kinds)}); raise n_trials above "
            f"{baseline_trials} or lower baseline_lrs")


def run_api_study(definition: SearchDefinition, space: "SearchSpace", job: Job, storage: str | None, backend: str,
                  population: int, facts: "RunFacts") -> SearchResult:
    """Run (or resume) an API study through the one study pipeline; its result."""
    from autolr.backends import open_study
    from autolr.pipeline.run import run_pipeline

    check_budget(definition, space)
    check_budget_backend(backend, definition.budget)
    started = time.monotonic()
    run_dir = Path(storage or "reports") / definition.name if backend == "ray" else None
    study = open_study(backend, definition, None if backend == "ray" else storage, run_dir)
    study.claim(api_study_dict(definition, space), identity_keys=API_IDENTITY)
    record, _ = run_pipeline(definition, study, job, space, population, facts, started)
    return SearchResult(record, study.location)


API_IDENTITY = ("direction", "space", "epochs", "baseline_lrs", "schedule_free")  # processes may differ in seed


def api_study_dict(definition: SearchDefinition, space: "SearchSpace") -> dict[str, Any]:
    """What an API study stores as its definition (and the report reads)."""
    return {
        "name": definition.name, "direction": definition.direction.value, "metric": definition.metric,
        "space": space.to_dict(), "epochs": definition.epochs, "trials": definition.trials, "seed": definition.seed,
        "sampler": definition.sampler, "pruner": definition.pruner, "baseline_lrs": definition.baseline_lrs,
        "schedule_free": definition.schedule_free, "rescore_top": definition.rescore_top,
        "rescore_seeds": definition.rescore_seeds, "target_epochs": definition.target_epochs,
        "optimizer": space.optimizer, "budget": definition.budget,
    }


def _torch_device() -> str:
    """Where torch would train by default here, for the report (the objective chooses its own)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
