"""Running a built-in study end to end: range test -> space -> baselines -> trials -> re-scoring -> report.

Engine-neutral: the engine (``autolr.backends``) stores the study and asks trials; the
trials are trained K at once as a population by :func:`population_evaluator`, through the
same :func:`autolr.search.run_trials` loop that runs a user's objective. Every step is
resumable: the range test, the baselines and the re-scoring are stored with the study
and not redone, and finished trials are never trained again.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from autolr.baselines import tuned_baselines
from autolr.errors import StudyError
from autolr.interrupts import stop_on_first_ctrl_c, termination_as_ctrl_c
from autolr.records import RANGE_TEST_KEY, RESCORE_KEY, SEARCH_META_KEY, StudyRecord
from autolr.search import Evaluate, Progress, Trial, TrialOutcome, one_line, run_trials
from autolr.study import StudyConfig

@dataclass(frozen=True)
class StudyRun:
    """What a finished study run leaves behind: where, what was found, and the counts."""

    name: str
    run_dir: Path
    storage_url: str  # may hold a password: redact before showing
    record: StudyRecord
    report_paths: Any  # autolr.report.write.ReportPaths
    progress: Progress
    wall_time_s: float


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StudyError(f"device {device!r} was asked for but no CUDA GPU is available")
    return device


def threads_per_process(workers: int) -> int:
    """torch threads for each of autolr's ``workers`` processes: the cores split among them (>= 1)."""
    return max(1, (os.cpu_count() or 1) // workers)


@contextmanager
def torch_threads(device: str, threads: int) -> Iterator[None]:
    """On a CPU: ``threads`` torch threads in this process while the study runs (restored after).

    The cores are split among autolr's own processes (``threads_per_process``), so
    ``--workers`` never oversubscribes them: more threads than free cores made the smoke
    study 4-6x slower on the 2-core machine autolr was built on. Alone on an idle machine,
    the cores help: there the default mnist study took 12.4 s with 2 threads against 17.5 s
    with 1 (back to back, two runs each).
    """
    import torch

    if device != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def storage_url_for(config: StudyConfig, run_dir: Path, workers: int) -> str:
    """The study's storage: the configured URL, or the run folder's default file."""
    from autolr.backends.optuna_storage import run_folder_storage_url

    return config.storage or run_folder_storage_url(run_dir, workers)


def run_study(
    config: StudyConfig,
    out: str | Path = "reports",
    workers: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    backend_options: dict[str, Any] | None = None,
) -> StudyRun:
    """Run (or resume) ``config`` and write its report into ``<out>/<name>/``.

    ``workers``: local processes training trials at once, sharing the study.
    ``on_phase`` is called with each phase as it starts: data, range test, search,
    re-scoring, report; ``on_progress`` after each population of trials.
    ``backend_options``: passed to the backend's own ``run_study`` (Ray: ``address``,
    ``gpus_per_trial``, ``cpus_per_trial``, ``max_failures``). Rerunning
    the same call resumes: nothing finished is trained again. Ctrl-C marks the trials
    in flight interrupted (queued to run again) and raises KeyboardInterrupt.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise StudyError(f"workers must be a positive integer, got {workers!r}")
    if config.backend != "optuna":
        from autolr.backends import backend_module

        return backend_module(config.backend).run_study(config, out=out, workers=workers, on_progress=on_progress,
                                                        on_phase=on_phase, **(backend_options or {}))
    started = time.monotonic()
    device = resolve_device(config.device)  # every check before the study is stored
    phase = on_phase or (lambda name: None)
    run_dir = Path(out) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = storage_url_for(config, run_dir, workers)
    engine = _open(config, storage, worker=0)
    engine.claim(config.to_dict(), identity_keys=list(config.identity()))  # refuse a conflicting rerun first
    with torch_threads(device, threads_per_process(workers)):
        return _run(config, engine, device, run_dir, storage, workers, phase, on_progress, started)


def _run(config: StudyConfig, engine: Any, device: str, run_dir: Path, storage: str, workers: int,
         phase: Callable[[str], None], on_progress: Callable[[Progress], None] | None, started: float) -> StudyRun:
    phase("data")
    splits = load_study_splits(config, device)
    phase("range test")
    range_test = study_range_test(config, engine, splits, device)
    engine.space = study_space(config, range_test)
    engine.queue_baselines(tuned_baselines(engine.space, config.baseline_lrs, config.schedule_free))
    engine.recover_interrupted()
    population = study_population_size(config, splits, device)
    engine.set_attr(SEARCH_META_KEY, {**(engine.get_attr(SEARCH_META_KEY) or {}), "finished": False})
    phase("search")
    children = _start_workers(config, storage, workers, population)
    try:
        progress = run_trials(engine, population_evaluator(config, splits, device), config.trials,
                              batch_size=population, on_progress=on_progress)
    except KeyboardInterrupt:  # a Ctrl-C or SIGTERM sent to this process alone stops the workers too
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGINT)
        raise
    finally:
        for child in children:
            child.join()
    if any(child.exitcode for child in children):
        raise StudyError(f"{sum(bool(c.exitcode) for c in children)} of the {len(children)} extra workers "
                         "stopped with an error; rerun the same command to resume")
    phase("re-scoring")
    rescore_study(config, engine, splits, device, population)
    engine.set_attr(SEARCH_META_KEY, study_meta(config, device, population, workers, started, engine, splits.source))
    phase("report")
    from autolr.report.write import write_report

    record = engine.read_record()
    paths = write_report(record, run_dir)
    return StudyRun(config.name, run_dir, storage, record, paths, progress, time.monotonic() - started)


def population_evaluator(config: StudyConfig, splits: Any, device: str) -> Evaluate:
    """Train the asked trials of a built-in study at once as one population (see :func:`members_evaluator`)."""
    from autolr.population import train_population

    def train(specs: list[Any], on_epoch: Callable[[int, int, float], bool]) -> list[Any]:
        return train_population(
            specs, config.model, splits, config.epochs, config.batch_size, seeds=[config.seed] * len(specs),
            data_seed=config.seed, metric=config.metric, on_epoch=on_epoch, device=device,
        )

    return members_evaluator(train, device)


def members_evaluator(train: Callable[[list[Any], Callable[[int, int, float], bool]], list[Any]],
                      device: str) -> Evaluate:
    """Train the asked trials at once with ``train(specs, on_epoch) -> TrialResults``; every member
    reports each epoch to its trial and leaves the population when its trial is pruned. A
    population that runs out of memory (GPU or CPU) is split in two and each half trained in
    turn; a single trial that does not fit fails with the reason."""
    import torch

    def evaluate(trials: Sequence[Trial]) -> list[TrialOutcome]:
        try:
            results = train([trial.spec for trial in trials],
                            lambda member, epoch, score: trials[member].observe(score, epoch))
        except (RuntimeError, MemoryError) as error:
            if not out_of_memory(error):
                raise
            reason = one_line(error)
        else:
            return _outcomes(results)
        # Out of the except block, so the failed population's tensors are freed before retrying.
        if len(trials) == 1:
            return [TrialOutcome("failed", error=reason)]
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        half = len(trials) // 2
        return evaluate(trials[:half]) + evaluate(trials[half:])

    return evaluate


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means the device ran out of memory: torch's OutOfMemoryError (GPUs),
    the CPU allocator's "can't allocate memory" RuntimeError, or Python's MemoryError."""
    import torch

    return isinstance(error, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def _outcomes(results: Sequence[Any]) -> list[TrialOutcome]:
    """The trainer's TrialResults as the search's outcomes."""
    return [
        TrialOutcome(
            result.status, value=result.final_score if result.status == "complete" else None,
            epochs_run=result.epochs_run, duration_s=result.duration_s,
            error=result.reason if result.status == "diverged" else None,
        )
        for result in results
    ]


def _open(config: StudyConfig, storage: str, worker: int, space: Any = None) -> Any:
    from autolr.backends import open_engine

    return open_engine(
        config.backend, storage=storage, study_name=config.name, space=space, direction=config.direction,
        sampler=config.sampler, pruner=config.pruner, epochs=config.epochs, prune_after=config.prune_after,
        seed=config.seed, n_trials=config.trials, worker=worker, retry_interrupted=config.retry_interrupted,
        metric_name=f"val_{config.metric}",
    )


def load_study_splits(config: StudyConfig, device: str) -> Any:
    """The study's dataset splits, loaded once onto ``device``."""
    from autolr.data import load_splits

    return load_splits(config.dataset, data_dir=config.data_dir, device=device, seed=config.seed)


def study_range_test(config: StudyConfig, engine: Any, splits: Any, device: str) -> Any:
    """The stored range test, or a new one on the study's model (population on a GPU, sweep elsewhere)."""
    from autolr.rangetest import RangeTestResult, builtin_range_test

    stored = engine.get_attr(RANGE_TEST_KEY)
    if stored is not None:
        return RangeTestResult.from_dict(stored)
    result = builtin_range_test(
        config.model, splits, method="auto", batch_size=config.batch_size, optimizer=config.optimizer,
        seed=config.seed, device=device,
    )
    engine.set_attr(RANGE_TEST_KEY, result.to_dict())
    return result


def study_space(config: StudyConfig, range_test: Any) -> Any:
    """The search space of the study: its families and optimizer, the LR interval from the range test."""
    from autolr.space import SearchSpace

    return SearchSpace.from_range_test(
        range_test, families=config.families, warmup=config.warmup, optimizer=config.optimizer,
        search_optimizer=config.search_optimizer,
    )


def study_population_size(config: StudyConfig, splits: Any, device: str) -> int:
    """Trials trained at once: the study's ``population``, or chosen from the device."""
    if config.population is not None:
        return config.population
    from autolr.population import choose_population_size

    return choose_population_size(config.model, splits, device=device, batch_size=config.batch_size)


def _start_workers(config: StudyConfig, storage: str, workers: int, population: int) -> list[Any]:
    """Start ``workers - 1`` extra processes (spawned: no state shared but the storage) and
    wait until each has loaded its data, so all start asking trials together."""
    context = multiprocessing.get_context("spawn")
    children = []
    for worker in range(1, workers):
        ready = context.Event()
        child = context.Process(target=_worker_main, args=(config, storage, worker, workers, population, ready),
                                name=f"autolr-worker-{worker}")
        child.start()
        children.append((child, ready))
    for child, ready in children:
        while child.is_alive() and not ready.wait(timeout=0.5):
            continue
    return [child for child, _ in children]


def _worker_main(config: StudyConfig, storage: str, worker: int, workers: int, population: int, ready: Any) -> None:
    """One extra worker: the same trial loop on the shared study; Ctrl-C or SIGTERM stops it cleanly."""
    stop_on_first_ctrl_c()
    from autolr.rangetest import RangeTestResult

    device = resolve_device(config.device)
    engine = _open(config, storage, worker=worker)
    engine.space = study_space(config, RangeTestResult.from_dict(engine.get_attr(RANGE_TEST_KEY)))
    with torch_threads(device, threads_per_process(workers)):
        splits = load_study_splits(config, device)
        evaluate = population_evaluator(config, splits, device)
        ready.set()
        try:
            with termination_as_ctrl_c():
                run_trials(engine, evaluate, config.trials, batch_size=population)
        except KeyboardInterrupt:
            pass  # the trials in flight are already marked interrupted


def rescore_study(config: StudyConfig, engine: Any, splits: Any, device: str, population: int) -> None:
    """Re-score the top configurations and the tuned baselines, unless already done for these
    trials at this length, with these seeds and this many top configurations. Each length's
    re-scoring is kept (``autolr.rescore@<epochs>``), so switching ``target_epochs`` back and
    forth retrains nothing; ``autolr.rescore`` is the one the report shows."""
    from autolr.rescore import rescore

    record = engine.read_record()
    done_for = {"trials": sorted(t.number for t in record.trials if t.state != "running"),
                "epochs": config.verdict_epochs, "seeds": config.rescore_seeds, "top": config.rescore_top}
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{config.verdict_epochs}"):
        if engine.get_attr(key) is not None and engine.get_attr(key + ".done_for") == done_for:
            _store_rescore(engine, engine.get_attr(key), done_for)
            return
    _store_rescore(engine, [vars(item) for item in rescore(record, config, splits, device, population)], done_for)


def _store_rescore(engine: Any, rescored: list[dict[str, Any]], done_for: dict[str, Any]) -> None:
    """Store ``rescored`` as the study's re-scoring and as its length's."""
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{done_for['epochs']}"):
        if engine.get_attr(key + ".done_for") != done_for:
            engine.set_attr(key, rescored)
            engine.set_attr(key + ".done_for", done_for)


def study_meta(config: StudyConfig, device: str, population: int, workers: int, started: float, engine: Any,
               data_source: str) -> dict[str, Any]:
    """The run's metadata for the report: wall time (seconds, summed over resumed runs), hardware, sizes,
    and where the data came from."""
    import torch

    previous = engine.get_attr(SEARCH_META_KEY) or {}
    hardware = torch.cuda.get_device_name(device) if device.startswith("cuda") else (
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores")
    return {
        "wall_time_s": float(previous.get("wall_time_s", 0.0)) + time.monotonic() - started,
        "hardware": hardware, "device": device, "population": population, "workers": workers,
        "finished": True, "torch": torch.__version__, "data_source": data_source,
    }
