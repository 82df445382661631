"""Search engines: the only modules that import Optuna or Ray. Pick one by name.

``optuna`` (embedded, the default): :mod:`autolr.backends.optuna.engine`, its built-in
studies in :mod:`autolr.backends.optuna.study`. ``ray``: Ray Tune, in
:mod:`autolr.backends.ray.backend` (extra ``autolr[ray]``). For a user's objective an engine
implements :class:`autolr.trials.Engine`; for a built-in study,
:class:`autolr.study.backend.StudyBackend`. Engine-neutral code (the search loop, the study
pipeline, the re-scoring) talks to an engine only through these protocols.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolr.errors import StudyError

if TYPE_CHECKING:
    from autolr.search import Engine
    from autolr.study.backend import StudyBackend
    from autolr.study.config import StudyConfig

BACKENDS = ("optuna", "ray")
_ENGINE_MODULES = {"optuna": "optuna.engine", "ray": "ray.backend"}
_STUDY_CLASSES = {"optuna": ("optuna.study", "OptunaStudy"), "ray": ("ray.backend", "RayStudy")}


def backend_module(name: str, module: str | None = None) -> Any:
    """The module of the engine ``name`` (or its module ``module``); an unknown or unavailable one raises StudyError."""
    if name not in BACKENDS:
        raise StudyError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module = module or _ENGINE_MODULES[name]
    try:
        return importlib.import_module(f"autolr.backends.{module}")
    except ModuleNotFoundError as error:
        if error.name == "ray":
            raise StudyError("the ray backend needs Ray Tune: pip install 'autolr[ray]'") from None
        if error.name == f"autolr.backends.{module}":
            raise StudyError(f"the {name} backend is not available in this version of autolr") from None
        raise


def open_engine(backend: str = "optuna", **options: Any) -> "Engine[Any]":
    """An ask/tell engine of ``backend`` over one study (options as ``OptunaEngine`` takes
    them), for ``autolr.search`` with a user's objective. Ray Tune drives its trials itself:
    ``autolr.search`` hands a Ray search to ``backends.ray.backend.search_objective`` instead."""
    return backend_module(backend).open_engine(**options)


def open_study(config: "StudyConfig", run_dir: Path, workers: int = 1, **options: Any) -> "StudyBackend":
    """The engine ``config.backend``'s side of the built-in study ``config`` in ``run_dir``.

    ``workers``: local processes training trials (Optuna only). ``options``: the engine's
    own (Ray: ``address``, ``gpus_per_trial``, ``cpus_per_trial``, ``max_failures``).
    """
    module, name = _STUDY_CLASSES.get(config.backend, (None, ""))
    study_class = getattr(backend_module(config.backend, module), name)
    return study_class(config, run_dir, workers, **options)
