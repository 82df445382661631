"""A built-in study on the Optuna engine: ask/tell over the study's storage, K trials per population.

Trials are asked from the study's Optuna storage and trained ``population`` at a time in
this process (``study.population_trials``); ``workers - 1`` extra local processes (spawned: they
share nothing but the storage) run the same loop on the same study. Pruning is per trial:
each member of a population reports every epoch and leaves it as soon as Optuna's pruner
(``optuna.pruning``: compared within its own family) stops its trial.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any, Callable

from autolr.backends.optuna.engine import OptunaEngine
from autolr.backends.optuna.storage import run_folder_storage_url
from autolr.errors import StudyError
from autolr.interrupts import stop_on_first_ctrl_c, termination_as_ctrl_c
from autolr.rangetest.range_test import RangeTestResult
from autolr.study.backend import StoredStudy, StudyTrials
from autolr.study.config import StudyConfig
from autolr.study.population_trials import population_evaluator
from autolr.study.records import RANGE_TEST_KEY
from autolr.study.steps import load_study_splits, resolve_device, study_space, torch_threads
from autolr.trials import Progress, run_trials


class OptunaStudy(StoredStudy):
    """The Optuna engine's side of a built-in study (``autolr.study.backend.StudyBackend``)."""

    def __init__(self, config: StudyConfig, run_dir: Path, workers: int = 1) -> None:
        self.config = config
        self.workers = workers
        run_dir.mkdir(parents=True, exist_ok=True)
        self.location = config.storage or run_folder_storage_url(run_dir, workers)
        self.engine = self.store = open_study_engine(config, self.location, worker=0)

    def meta(self) -> dict[str, Any]:
        return {}

    def run_trials(self, trials: StudyTrials, on_progress: Callable[[Progress], None] | None) -> Progress:
        """Queue the baselines, then ask, train and tell populations here and in the extra workers."""
        self.engine.space = trials.space
        self.engine.queue_baselines(trials.baselines)
        self.engine.recover_interrupted()
        children = _start_workers(self.config, self.location, self.workers, trials.population)
        try:
            progress = run_trials(self.engine, population_evaluator(self.config, trials.splits, trials.device),
                                  self.config.trials, batch_size=trials.population, on_progress=on_progress)
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
        return progress


def open_study_engine(config: StudyConfig, storage: str, worker: int) -> OptunaEngine:
    """The ask/tell engine over the study ``config`` in ``storage``, for the process ``worker``."""
    return OptunaEngine(
        storage=storage, study_name=config.name, space=None, direction=config.direction,
        sampler=config.sampler, pruner=config.pruner, epochs=config.epochs, prune_after=config.prune_after,
        seed=config.seed, n_trials=config.trials, worker=worker, retry_interrupted=config.retry_interrupted,
        metric_name=f"val_{config.metric}",
    )


def _start_workers(config: StudyConfig, storage: str, workers: int, population: int) -> list[Any]:
    """Start ``workers - 1`` extra processes (spawned: no state shared but the storage) and
    wait until each has loaded its data, so all start asking trials together."""
    context = multiprocessing.get_context("spawn")
    children = []
    for worker in range(1, workers):
        ready = context.Event()
        child = context.Process(target=_worker_main, args=(config, storage, worker, population, ready),
                                name=f"autolr-worker-{worker}")
        child.start()
        children.append((child, ready))
    for child, ready in children:
        while child.is_alive() and not ready.wait(timeout=0.5):
            continue
    return [child for child, _ in children]


def _worker_main(config: StudyConfig, storage: str, worker: int, population: int, ready: Any) -> None:
    """One extra worker: the same trial loop on the shared study; Ctrl-C or SIGTERM stops it cleanly."""
    stop_on_first_ctrl_c()
    device = resolve_device(config.device)
    engine = open_study_engine(config, storage, worker=worker)
    engine.space = study_space(config, RangeTestResult.from_dict(engine.get_attr(RANGE_TEST_KEY)))
    with torch_threads(device, config.threads or 1):  # chosen for every worker by run_study
        splits = load_study_splits(config, device)
        evaluate = population_evaluator(config, splits, device)
        ready.set()
        try:
            with termination_as_ctrl_c():
                run_trials(engine, evaluate, config.trials, batch_size=population)
        except KeyboardInterrupt:
            pass  # the trials in flight are already marked interrupted
