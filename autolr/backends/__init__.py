"""Search engines: the only modules that import Optuna or Ray. Pick one by name.

``optuna`` (embedded, the default): :mod:`autolr.backends.optuna_backend`. ``ray``: Ray
Tune, in :mod:`autolr.backends.ray_backend` (extra ``autolr[ray]``). An engine implements
:class:`autolr.search.Engine`; engine-neutral code (the search loop, the study run, the
re-scoring) talks to it only through that protocol.
"""

from __future__ import annotations

import importlib
from typing import Any

from autolr.errors import StudyError

BACKENDS = ("optuna", "ray")


def backend_module(name: str) -> Any:
    """The module of the engine ``name``; an unknown or unavailable one raises StudyError."""
    if name not in BACKENDS:
        raise StudyError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module = "optuna_backend" if name == "optuna" else "ray_backend"
    try:
        return importlib.import_module(f"autolr.backends.{module}")
    except ModuleNotFoundError as error:
        if error.name == "ray":
            raise StudyError("the ray backend needs Ray Tune: pip install 'autolr[ray]'") from None
        if error.name == f"autolr.backends.{module}":
            raise StudyError(f"the {name} backend is not available in this version of autolr") from None
        raise


def open_engine(backend: str = "optuna", **options: Any) -> Any:
    """An ask/tell engine of ``backend`` over one study (options as ``OptunaEngine`` takes
    them), for ``autolr.search`` with a user's objective. Ray Tune drives its trials itself:
    ``autolr.search`` hands a Ray search to ``ray_backend.search_objective`` instead."""
    return backend_module(backend).open_engine(**options)
