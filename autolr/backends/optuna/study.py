"""A study on the Optuna engine: ask/tell over the study's storage, K trials per population.

Trials are asked from the study's Optuna storage and trained ``population`` at a time in
this process by the study's job (``trials.Job``); ``workers - 1`` extra local processes
(spawned: they share nothing but the storage and the pickled job) run the same loop on the
same study. Pruning is per trial: each member of a population reports every epoch and
leaves it as soon as Optuna's pruner (``optuna.pruning``: compared within its own family)
stops its trial.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any, Callable, Sequence

from autolr.backends.optuna.engine import IN_MEMORY, OptunaEngine
from autolr.backends.optuna.storage import run_folder_storage_url
from autolr.errors import StudyError
from autolr.interrupts import stop_on_first_ctrl_c, termination_as_ctrl_c
from autolr.space.baselines import Baseline
from autolr.space.search_space import SearchSpace
from autolr.study.backend import StoredStudy
from autolr.study.definition import SearchDefinition
from autolr.training.device import torch_threads
from autolr.trials import Job, Progress, run_trials


class OptunaStudy(StoredStudy):
    """The Optuna engine's side of a study (``autolr.study.backend.StudyBackend``).

    ``storage``: an Optuna storage URL; None stores the study in ``run_dir`` (``study.db``,
    or a journal file with workers) or, without a ``run_dir``, in memory.
    """

    def __init__(self, definition: SearchDefinition, storage: str | None, run_dir: Path | None,
                 workers: int = 1) -> None:
        self.definition = definition
        self.workers = workers
        if storage is None and run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            storage = run_folder_storage_url(run_dir, workers)
        if storage is None and workers > 1:
            raise StudyError("workers share a study through its storage: give a storage URL to run more than one")
        self.location = storage or IN_MEMORY
        self.engine = self.store = OptunaEngine(storage, definition)

    def meta(self) -> dict[str, Any]:
        return {"backend": "optuna"}

    phased = True

    def run_trials(self, space: SearchSpace, baselines: Sequence[Baseline], job: Job, population: int,
                   on_progress: Callable[[Progress], None] | None, trials: int) -> Progress:
        """Queue the baselines, then ask, train and tell populations here and in the extra workers."""
        self.engine.space = space
        self.engine.queue_baselines(baselines)
        self.engine.recover_interrupted()
        children = _start_workers(self.definition, self.location, space, job, self.workers, population, trials)
        try:
            progress = run_trials(self.engine, job.evaluator(self.definition), trials,
                                  population=population, on_progress=on_progress)
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


def _start_workers(definition: SearchDefinition, storage: str, space: SearchSpace, job: Job, workers: int,
                   population: int, trials: int) -> list[Any]:
    """Start ``workers - 1`` extra processes (spawned: no state shared but the storage) and
    wait until each is ready to train, so all start asking trials together."""
    context = multiprocessing.get_context("spawn")
    children = []
    for worker in range(1, workers):
        ready = context.Event()
        child = context.Process(target=_worker_main,
                                args=(definition, storage, space, job, worker, population, trials, ready),
                                name=f"autolr-worker-{worker}")
        child.start()
        children.append((child, ready))
    for child, ready in children:
        while child.is_alive() and not ready.wait(timeout=0.5):
            continue
    return [child for child, _ in children]


def _worker_main(definition: SearchDefinition, storage: str, space: SearchSpace, job: Job, worker: int,
                 population: int, trials: int, ready: Any) -> None:
    """One extra worker: the same trial loop on the shared study, with the job it was handed;
    Ctrl-C or SIGTERM stops it cleanly."""
    stop_on_first_ctrl_c()
    engine = OptunaEngine(storage, definition, space, worker=worker)
    with torch_threads(job.device, definition.threads or 1):  # chosen once for every worker by the pipeline
        evaluate = job.evaluator(definition)  # loads what the job trains on
        ready.set()
        try:
            with termination_as_ctrl_c():
                run_trials(engine, evaluate, trials, population=population)
        except KeyboardInterrupt:
            pass  # the trials in flight are already marked interrupted
