"""The Optuna engine: ask/tell over any Optuna storage, studies, fair pruning, storages, fANOVA."""

from autolr.backends.optuna.engine import OptunaEngine
from autolr.backends.optuna.study import OptunaStudy as open_study

__all__ = ["OptunaEngine", "open_study"]
