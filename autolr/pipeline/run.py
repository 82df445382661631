"""Running a study end to end: the one pipeline for built-in studies and the Python API alike.

:func:`run_pipeline` takes a claimed study (``study.backend.StudyBackend``: Optuna or Ray
Tune), a ``trials.Job`` that trains its schedules and the search space, and runs the tuned
baselines' coarse ladders (with a budget, only the plain grid's kind, ``baselines.GRID_KIND``)
-> (with a budget) the plan that fits it, then the further kinds' coarse ladders it keeps -> the
refined rungs and the search -> re-scoring -> verdict -> metadata (an engine that is not
``phased`` runs the log-spaced ladders and the search in one go). :func:`run_study` is the built-in
study around it (device, data, range test, space, population size, report). Every step is
resumable: the range test, the baselines and the re-scoring (seed by seed) are stored with
the study and not redone, and finished trials are never trained again; the refined rungs
follow from the stored coarse rungs and are queued once, and the budget's plan is stored.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from autolr.backends import open_study
from autolr.errors import StudyError
from autolr.jobs.builtin import BuiltinJob
from autolr.pipeline.budget import (
    REPORT_ALLOWANCE_S,
    BudgetPlan,
    budget_note,
    budget_seconds,
    budgeted,
    plan_budget,
    population_seconds,
)
from autolr.pipeline.rescore import best_rungs
from autolr.pipeline.steps import (
    rescore_study,
    resolve_device,
    study_meta,
    study_population_size,
    study_range_test,
    study_space,
    study_threads,
)
from autolr.space.baselines import (
    baseline_kinds,
    baseline_rung,
    by_priority,
    ladder_rungs,
    refined_baselines,
    tuned_baselines,
)
from autolr.space.search_space import SearchSpace
from autolr.study.backend import StudyBackend
from autolr.study.config import StudyConfig
from autolr.study.definition import SearchDefinition
from autolr.study.records import BUDGET_KEY, OPTIMIZER_BASELINES_KEY, SEARCH_META_KEY, VERDICT_KEY, StudyRecord
from autolr.training.device import torch_threads
from autolr.trials import Job, Progress

if TYPE_CHECKING:
    from autolr.report.write import ReportPaths

Phase = Callable[[str], None]


@dataclass(frozen=True)
class StudyRun:
    """What a finished study run leaves behind: where, what was found, and the counts."""

    name: str
    run_dir: Path
    storage_url: str  # the engine's storage URL (may hold a password: redact before showing) or folder
    record: StudyRecord
    report_paths: "ReportPaths"
    progress: Progress
    wall_time_s: float


@dataclass(frozen=True)
class RunFacts:
    """What the report says about a run besides its trials: the device it trained on, its worker
    processes, where the data came from, and the dataset and model in words."""

    device: str
    workers: int = 1
    data_source: str = "your objective"
    dataset: str = "your objective"
    model: str = "your objective"


def run_pipeline(
    definition: SearchDefinition,
    backend: StudyBackend,
    job: Job,
    space: SearchSpace,
    population: int,
    facts: RunFacts,
    started: float,
    on_progress: Callable[[Progress], None] | None = None,
    on_phase: Phase | None = None,
) -> tuple[StudyRecord, Progress]:
    """The tuned baselines' ladders (coarse, then refined) and the search, then re-scoring, the verdict and the
    run's metadata; with a budget (``definition.budgeted``), the rest of the study (the other kinds' ladders
    included) sized to fit it after the plain grid's kind's coarse ladder.

    ``started``: ``time.monotonic()`` when this run began (its wall time is added to the study's).
    Returns the finished study's record and the search's progress.
    """
    phase = on_phase or (lambda name: None)
    left_out = optimizer_baselines_left_out(definition, backend, job)
    notes = [] if left_out is None else [left_out[:1].upper() + left_out[1:] + "."]
    schedule_free = definition.schedule_free and left_out is None
    backend.set_attr(SEARCH_META_KEY, {**(backend.get_attr(SEARCH_META_KEY) or {}), "finished": False})
    phase("search")
    coarse, refined = ladder_rungs(definition.baseline_lrs) if backend.phased else (definition.baseline_lrs, 0)
    kinds = baseline_kinds(space.optimizer, schedule_free, definition.recipe) if coarse else ()
    budget, first_kinds = None, kinds
    if definition.budgeted and backend.phased:  # the plain grid's kind first: its ladder measures a trial's cost
        kinds = by_priority(kinds, definition.recipe)
        first_kinds = kinds[:1]
    if definition.budget_grids is not None and not backend.phased:  # Ray Tune: trials fixed when it starts
        notes.append("The whole study ran: a budget in plain grids needs the optuna backend.")
    baselines = tuned_baselines(space, coarse, schedule_free, definition.recipe, first_kinds)
    if backend.phased and (refined or definition.budgeted):
        whole = None if on_progress is None else (  # the display counts toward the study's trials
            lambda progress: on_progress(dataclasses.replace(progress, target=definition.trials)))
        # first phase: coarse ladders in whole populations (the last one filled with search trials)
        first = min(whole_populations(len(baselines), population), definition.trials - refined * len(kinds))
        backend.run_trials(space, baselines, job, population, whole, trials=first)
        if definition.budgeted:
            plan = study_budget(definition, backend, population, kinds, coarse, refined, first, started)
            tuned = kinds[:plan.ladder_kinds]
            refined, definition = plan.refined, budgeted(definition, plan, (coarse + plan.refined) * len(tuned))
            budget = budget_note(definition, plan)
            notes.append(budget)
            if len(tuned) > len(first_kinds):  # the further kinds' coarse ladders, before any refinement
                further = tuned_baselines(space, coarse, schedule_free, definition.recipe, tuned[len(first_kinds):])
                backend.run_trials(space, further, job, population, whole, trials=min(
                    first + whole_populations(len(further), population), definition.trials))
        record = backend.read_record()
        baselines = (refined_baselines(space, coarse, coarse_best_rungs(record, definition, coarse), definition.recipe)
                     if refined else [])
    progress = backend.run_trials(space, baselines, job, population, on_progress, trials=definition.trials)
    if definition.rescores:
        phase("re-scoring")
        rescore_study(definition, backend, job, population)
    decide_verdict(definition, backend)
    meta = study_meta(facts.device, population, facts.workers, started, backend, facts.data_source)
    backend.set_attr(SEARCH_META_KEY, {**meta, "dataset": facts.dataset, "model": facts.model, "notes": notes,
                                       "budget": budget, **backend.meta()})
    return backend.read_record(), progress


def whole_populations(trials: int, population: int) -> int:
    """``trials`` rounded up to whole populations (one population when there are none)."""
    return math.ceil(trials / population) * population or population


def coarse_best_rungs(record: StudyRecord, definition: SearchDefinition, coarse: int) -> dict[str, int]:
    """Each baseline kind's best rung (from 1) among its ``coarse`` first rungs, which refinement goes around."""
    trials = [t for t in record.trials if not t.baseline or baseline_rung(t.baseline) <= coarse]
    best = best_rungs(dataclasses.replace(record, trials=trials), definition.direction)
    return {kind: baseline_rung(trial.baseline or "") for kind, trial in best.items()}


def study_budget(definition: SearchDefinition, backend: StudyBackend, population: int, kinds: tuple[str, ...],
                 coarse: int, refined: int, done: int, started: float) -> BudgetPlan:
    """The plan that fits the rest of the study into its budget, decided once from its first ``done`` trials (the
    first of ``kinds``' coarse ladder) and stored (a rerun with the same budget goes on with it). The time spent so
    far (storage, data, range test, those trials, earlier runs) and ``REPORT_ALLOWANCE_S`` count against it.
    ``started``: as for ``run_pipeline``."""
    stored = backend.get_attr(BUDGET_KEY)
    if stored is not None and (stored["budget"], stored.get("grids")) == (definition.budget, definition.budget_grids):
        return BudgetPlan.from_dict(stored["plan"])
    spent = float((backend.get_attr(SEARCH_META_KEY) or {}).get("wall_time_s", 0.0)) + time.monotonic() - started
    run_s = population_seconds(backend.read_record().trials, definition.epochs) or 0.0
    budget_s = budget_seconds(definition, run_s, population)
    plan = plan_budget(definition, budget_s - spent - REPORT_ALLOWANCE_S, run_s, population, kinds, coarse,
                       max(definition.trials - (coarse + refined) * len(kinds), 0), refined, done)
    plan = dataclasses.replace(plan, budget_s=budget_s)
    backend.set_attr(BUDGET_KEY, {"budget": definition.budget, "grids": definition.budget_grids,
                                  "plan": plan.to_dict()})
    return plan


def optimizer_baselines_left_out(definition: SearchDefinition, backend: StudyBackend, job: Job) -> str | None:
    """Why the schedule-free and Prodigy baselines are left out (None: they run, or were not asked for);
    the job's answer is stored with the study, so a resume does not ask again."""
    if not (definition.schedule_free and definition.baseline_lrs > 0):
        return None
    stored = backend.get_attr(OPTIMIZER_BASELINES_KEY)
    if stored is None:
        stored = {"left_out": job.optimizer_baselines()}
        backend.set_attr(OPTIMIZER_BASELINES_KEY, stored)
    return stored["left_out"]


def decide_verdict(definition: SearchDefinition, backend: StudyBackend) -> None:
    """Decide the verdict over the stored re-scoring, once, and store it (nothing without re-scoring); its scores and
    sentence are in the study's score unit."""
    from autolr.report.rank import in_score_unit, score_unit
    from autolr.study.verdict import decide  # scipy.special: loaded only once the search is done

    record = in_score_unit(backend.read_record())  # in the unit the report shows: a language model's bits per byte
    verdict = (decide(record.rescored, definition.direction.maximize, score_unit(record).name_of(definition.metric))
               if definition.rescores else None)
    backend.set_attr(VERDICT_KEY, None if verdict is None else verdict.to_dict())


def run_study(
    config: StudyConfig,
    out: str | Path = "reports",
    workers: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
    on_phase: Phase | None = None,
    backend_options: dict[str, Any] | None = None,
) -> StudyRun:
    """Run (or resume) the built-in study ``config`` and write its report into ``<out>/<name>/``.

    ``workers``: local processes training trials at once, sharing the study (Optuna).
    ``on_phase`` is called with each phase as it starts: data, range test, search,
    re-scoring, report; ``on_progress`` after each population of trials.
    ``backend_options``: the engine's own (Ray: ``address``, ``gpus_per_trial``,
    ``cpus_per_trial``, ``max_failures``). Rerunning the same call resumes: nothing
    finished is trained again. Ctrl-C marks the trials in flight interrupted (queued to
    run again) and raises KeyboardInterrupt.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers <= 0:
        raise StudyError(f"workers must be a positive integer, got {workers!r}")
    started = time.monotonic()
    device = resolve_device(config.device)  # every check before the study is stored
    threads = study_threads(config, workers, (backend_options or {}).get("cpus_per_trial")).threads
    config = config.replace(threads=threads)  # chosen once, here: the workers and Ray's trials get it
    phase = on_phase or (lambda name: None)
    run_dir = Path(out) / config.name
    definition = config.definition()
    backend = open_study(config.backend, definition, config.storage, run_dir, workers, **(backend_options or {}))
    backend.claim(config.to_dict(), identity_keys=list(config.identity()))  # refuse a conflicting rerun first
    with torch_threads(device, threads):
        phase("data")
        job = BuiltinJob(config, device)
        splits = job.splits
        phase("range test")
        space = study_space(config, study_range_test(config, backend, splits, device))
        population = study_population_size(config, backend, splits, device)
        facts = RunFacts(device, workers, splits.source, config.dataset, config.model)
        record, progress = run_pipeline(definition, backend, job, space, population, facts, started, on_progress,
                                        on_phase)
    phase("report")
    from autolr.report.write import write_report

    paths = write_report(record, run_dir)
    return StudyRun(config.name, run_dir, backend.location, record, paths, progress, time.monotonic() - started)
