"""The Optuna engine: ask/tell over any Optuna storage, studies, fair pruning, storages, fANOVA."""
