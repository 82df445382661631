"""A user's objective searched on Optuna (``autolr.search``, ``autolr.search_module``): ask/tell in this process."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from autolr.backends.optuna.engine import OptunaEngine
from autolr.space.baselines import Baseline
from autolr.space.search_space import SearchSpace
from autolr.study.records import StudyRecord
from autolr.trials import objective_evaluator, run_trials


def open_search(space: SearchSpace, n_trials: int, baselines: Sequence[Baseline], storage: str | None,
                definition: dict[str, Any]) -> OptunaEngine:
    """The engine of a search's study: claimed, its baselines queued once, trials whose process
    died marked interrupted. ``definition``: the search's ``name``, ``direction``, ``epochs``
    (None: unknown), ``sampler``, ``pruner``, ``prune_after``, ``seed`` and ``metric_name``."""
    engine = OptunaEngine(
        storage=storage, study_name=definition["name"], space=space, direction=definition["direction"],
        sampler=definition["sampler"], pruner=definition["pruner"], epochs=definition["epochs"],
        prune_after=definition["prune_after"], seed=definition["seed"], n_trials=n_trials,
        metric_name=definition["metric_name"],
    )
    engine.claim({"name": definition["name"], "direction": definition["direction"], "space": space.to_dict(),
                  "epochs": definition["epochs"]}, identity_keys=("direction", "space", "epochs"))
    if baselines:
        engine.queue_baselines(baselines)
    engine.recover_interrupted()
    return engine


def search_objective(objective: Callable[..., float], space: SearchSpace, n_trials: int,
                     baselines: Sequence[Baseline], storage: str | None,
                     definition: dict[str, Any]) -> tuple[StudyRecord, str]:
    """``autolr.search(objective)`` on Optuna: each trial runs ``objective`` here, one at a time.
    ``storage``: an Optuna storage URL (None: in memory). Returns the record and the storage URL."""
    engine = open_search(space, n_trials, baselines, storage, definition)
    run_trials(engine, objective_evaluator(objective, definition["direction"]), n_trials)
    return engine.read_record(), engine.storage_url
