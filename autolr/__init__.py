"""autolr: find the learning-rate schedule for a PyTorch training job.

The public API, re-exported. Names whose modules import torch (range test, data) load on
first use, so ``import autolr`` and ``autolr --version`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from autolr.errors import DataError, SpecError, StudyError, UserError
from autolr.schedule.spec import FAMILIES, ScheduleSpec, load_spec
from autolr.search import SearchResult, search
from autolr.space.search_space import SearchSpace
from autolr.trials import TrialPruned
from autolr.version import __version__

_LAZY = {
    "lr_range_test": "autolr.rangetest.range_test",
    "population_range_test": "autolr.rangetest.range_test",
    "builtin_range_test": "autolr.rangetest.range_test",
    "RangeTestResult": "autolr.rangetest.range_test",
    "load_splits": "autolr.data",
    "splits_from_tensors": "autolr.data",
    "splits_from_datasets": "autolr.data",
    "Splits": "autolr.data",
    "train_trial": "autolr.training.train",
    "TrialResult": "autolr.training.train",
    "train_population": "autolr.training.population",
    "choose_population_size": "autolr.training.population",
    "train_module_population": "autolr.training.module_population",
    "PopulationFallbackWarning": "autolr.training.module_population",
    "search_module": "autolr.module_search",
    "build_model": "autolr.training.models",
    "lightning_config": "autolr.schedule.schedulers",
    "lightning_objective": "autolr.lightning",
    "AutolrCallback": "autolr.lightning",
}

__all__ = [
    "FAMILIES", "DataError", "ScheduleSpec", "SearchResult", "SearchSpace", "SpecError",
    "StudyError", "TrialPruned", "UserError", "__version__", "load_spec", "search", *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the torch-heavy public names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autolr' has no attribute {name!r}")
