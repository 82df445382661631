"""Running a built-in study end to end: range test -> space -> baselines -> trials -> re-scoring -> report.

The one study pipeline, for every engine: the steps (``study.steps``) are engine-neutral,
and the engine (``autolr.backends.open_study``: Optuna or Ray Tune) stores the study and
runs its trials behind :class:`autolr.study.backend.StudyBackend`. Every step is
resumable: the range test, the baselines and the re-scoring are stored with the study and
not redone, and finished trials are never trained again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from autolr.backends import open_study
from autolr.search import check_positive
from autolr.space.baselines import tuned_baselines
from autolr.study.backend import StudyTrials
from autolr.study.config import StudyConfig
from autolr.study.records import SEARCH_META_KEY, StudyRecord
from autolr.study.steps import (
    load_study_splits,
    rescore_study,
    resolve_device,
    study_meta,
    study_population_size,
    study_range_test,
    study_space,
    study_threads,
    torch_threads,
)
from autolr.trials import Progress

if TYPE_CHECKING:
    from autolr.report.write import ReportPaths


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


def run_study(
    config: StudyConfig,
    out: str | Path = "reports",
    workers: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    backend_options: dict[str, Any] | None = None,
) -> StudyRun:
    """Run (or resume) ``config`` and write its report into ``<out>/<name>/``.

    ``workers``: local processes training trials at once, sharing the study (Optuna).
    ``on_phase`` is called with each phase as it starts: data, range test, search,
    re-scoring, report; ``on_progress`` after each population of trials.
    ``backend_options``: the engine's own (Ray: ``address``, ``gpus_per_trial``,
    ``cpus_per_trial``, ``max_failures``). Rerunning the same call resumes: nothing
    finished is trained again. Ctrl-C marks the trials in flight interrupted (queued to
    run again) and raises KeyboardInterrupt.
    """
    check_positive("workers", workers)
    started = time.monotonic()
    device = resolve_device(config.device)  # every check before the study is stored
    threads = study_threads(config, workers, (backend_options or {}).get("cpus_per_trial")).threads
    config = config.replace(threads=threads)  # chosen once, here: the workers and Ray's trials get it
    phase = on_phase or (lambda name: None)
    run_dir = Path(out) / config.name
    backend = open_study(config, run_dir, workers, **(backend_options or {}))
    backend.claim(config.to_dict(), identity_keys=list(config.identity()))  # refuse a conflicting rerun first
    with torch_threads(device, threads):
        phase("data")
        splits = load_study_splits(config, device)
        phase("range test")
        space = study_space(config, study_range_test(config, backend, splits, device))
        population = study_population_size(config, backend, splits, device)
        backend.set_attr(SEARCH_META_KEY, {**(backend.get_attr(SEARCH_META_KEY) or {}), "finished": False})
        phase("search")
        baselines = tuned_baselines(space, config.baseline_lrs, config.schedule_free)
        progress = backend.run_trials(StudyTrials(config, space, baselines, splits, device, population), on_progress)
        phase("re-scoring")
        rescore_study(config, backend, splits, device, population)
        meta = study_meta(config, device, population, workers, started, backend, splits.source)
        backend.set_attr(SEARCH_META_KEY, {**meta, **backend.meta()})
    phase("report")
    from autolr.report.write import write_report

    record = backend.read_record()
    paths = write_report(record, run_dir)
    return StudyRun(config.name, run_dir, backend.location, record, paths, progress, time.monotonic() - started)
