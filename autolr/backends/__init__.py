"""Search engines: the only code that imports Optuna or Ray. Pick one by name.

Each engine is a package here, ``optuna`` (embedded, the default) and ``ray`` (Ray Tune,
extra ``autolr[ray]``), exporting ``open_study(definition, storage, run_dir, workers,
**options)``: its :class:`autolr.study.backend.StudyBackend`, which stores a study and runs
its trials with the ``trials.Job`` the pipeline hands it. Optuna's ask/tell engine also
implements :class:`autolr.trials.Engine`, the loop's protocol. Engine-neutral code (the loop,
the study pipeline, the re-scoring) talks to an engine only through these.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolr.errors import StudyError

if TYPE_CHECKING:
    from autolr.space.search_space import SearchSpace
    from autolr.study.backend import StudyBackend
    from autolr.study.definition import SearchDefinition
    from autolr.trials import Engine

BACKENDS = ("optuna", "ray")  # each a package here exporting open_study


def engine_package(name: str) -> Any:
    """The package of the engine ``name``; an unknown one raises StudyError."""
    if name not in BACKENDS:
        raise StudyError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"autolr.backends.{name}")  # Ray itself is imported on use (require_ray)


def open_engine(storage: str | None, definition: "SearchDefinition", space: "SearchSpace | None" = None,
                worker: int = 0) -> "Engine[Any]":
    """Optuna's ask/tell engine over one study (Ray Tune drives its own trials: it has none)."""
    return engine_package("optuna").OptunaEngine(storage, definition, space, worker)


def open_study(backend: str, definition: "SearchDefinition", storage: str | None, run_dir: Path | None,
               workers: int = 1, **options: Any) -> "StudyBackend":
    """The engine ``backend``'s side of the study ``definition``.

    ``storage``: Optuna: a storage URL (None: in ``run_dir``, or in memory without one); Ray: a
    folder (None: ``run_dir``). ``workers``: local processes training trials (Optuna only).
    ``options``: the engine's own (Ray: ``address``, ``gpus_per_trial``, ``cpus_per_trial``,
    ``max_failures``).
    """
    return engine_package(backend).open_study(definition, storage, run_dir, workers, **options)
