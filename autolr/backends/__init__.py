"""Search engines: the only code that imports Optuna or Ray. Pick one by name.

Each engine is a package here, ``optuna`` (embedded, the default) and ``ray`` (Ray Tune,
extra ``autolr[ray]``), exporting the same two entry points: ``open_study(config, run_dir,
workers, **options)``, its :class:`autolr.study.backend.StudyBackend` for a built-in study,
and ``search_objective(objective, space, n_trials, baselines, storage, definition)``, a
user's objective searched (``autolr.search``). Optuna's ask/tell engine also implements
:class:`autolr.trials.Engine`, the loop's protocol. Engine-neutral code (the loop, the study
pipeline, the re-scoring) talks to an engine only through these.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from autolr.errors import StudyError

if TYPE_CHECKING:
    from autolr.space.baselines import Baseline
    from autolr.space.search_space import SearchSpace
    from autolr.study.backend import StudyBackend
    from autolr.study.config import StudyConfig
    from autolr.study.records import StudyRecord
    from autolr.trials import Engine

BACKENDS = ("optuna", "ray")  # each a package here exporting open_study and search_objective


def engine_package(name: str) -> Any:
    """The package of the engine ``name``; an unknown one raises StudyError."""
    if name not in BACKENDS:
        raise StudyError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"autolr.backends.{name}")  # Ray itself is imported on use (require_ray)


def open_engine(backend: str = "optuna", **options: Any) -> "Engine[Any]":
    """An ask/tell engine over one study (options as ``OptunaEngine`` takes them). Only Optuna
    has one: Ray Tune drives its own trials (see :func:`search_objective`)."""
    if backend != "optuna":
        raise StudyError(f"the {backend} backend has no ask/tell engine; use autolr.search(..., backend={backend!r})")
    return engine_package(backend).OptunaEngine(**options)


def open_study(config: "StudyConfig", run_dir: Path, workers: int = 1, **options: Any) -> "StudyBackend":
    """The engine ``config.backend``'s side of the built-in study ``config`` in ``run_dir``.

    ``workers``: local processes training trials (Optuna only). ``options``: the engine's
    own (Ray: ``address``, ``gpus_per_trial``, ``cpus_per_trial``, ``max_failures``).
    """
    return engine_package(config.backend).open_study(config, run_dir, workers, **options)


def search_objective(backend: str, objective: Callable[..., float], space: "SearchSpace", n_trials: int,
                     baselines: Sequence["Baseline"], storage: str | None,
                     definition: dict[str, Any]) -> tuple["StudyRecord", str]:
    """``autolr.search(objective)`` on the engine ``backend``: the study's record and where it lives.

    ``definition``: the search's ``name``, ``direction``, ``epochs``, ``sampler``, ``pruner``,
    ``prune_after``, ``seed`` and ``metric_name`` (see ``autolr.search``).
    """
    return engine_package(backend).search_objective(objective, space, n_trials, baselines, storage, definition)
