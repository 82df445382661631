"""A schedule search over the user's own model and data, its trials trained K at once as a module population.

``autolr.search`` runs a user's objective, which cannot be vmapped; here autolr owns the
training loop (``train_module_population``), so the asked trials train together through
the same ask/evaluate/tell loop and engine as a built-in study.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import nn

from autolr.backends.optuna.search import open_search
from autolr.search import SearchResult, baselines_of, check_positive
from autolr.space.search_space import SearchSpace
from autolr.study.population_trials import members_evaluator
from autolr.training.module_population import as_splits, train_module_population
from autolr.training.train import LossFn, check_run, training_device
from autolr.trials import run_trials


def search_module(
    model_factory: Callable[[], nn.Module],
    data: Any,
    space: SearchSpace,
    n_trials: int,
    epochs: int,
    batch_size: int = 128,
    loss_fn: LossFn = F.cross_entropy,
    *,
    population: int = 8,
    metric: str = "accuracy",
    storage: str | None = None,
    study_name: str = "autolr",
    sampler: str = "tpe",
    pruner: str = "hyperband",
    prune_after: float = 0.25,
    seed: int = 0,
    baselines: bool = True,
    baselines_lr: float | None = None,
    device: str | None = None,
) -> SearchResult:
    """Search ``space`` for the schedule of ``model_factory()``'s model on ``data``, ``population`` trials at a time.

    Every trial trains a model from ``model_factory`` (torch RNG seeded with ``seed``) for
    ``epochs`` epochs of ``batch_size`` rows (``data`` and ``loss_fn`` as in
    ``train_module_population``) and scores it on the validation split after each epoch:
    accuracy (maximized) or, with ``metric="loss"``, the mean ``loss_fn`` (minimized). The
    pruner stops members of a population as it would single trials. The other arguments
    are those of ``autolr.search`` (Optuna engine); ``device`` defaults to the data's.
    """
    check_positive("n_trials", n_trials)
    check_positive("population", population)
    check_run(epochs, batch_size, metric)
    splits = as_splits(data)
    device = str(training_device(device, splits))
    baseline_specs = baselines_of(space, baselines_lr) if baselines else []
    engine = open_search(space, n_trials, baseline_specs, storage, {
        "name": study_name, "direction": "maximize" if metric == "accuracy" else "minimize", "epochs": epochs,
        "sampler": sampler, "pruner": pruner, "prune_after": prune_after, "seed": seed, "metric_name": "val_score"})

    def train(specs: list[Any], on_epoch: Callable[[int, int, float], bool]) -> list[Any]:
        return train_module_population(model_factory, specs, splits, epochs, batch_size, seeds=[seed] * len(specs),
                                       loss_fn=loss_fn, data_seed=seed, metric=metric, on_epoch=on_epoch, device=device)

    run_trials(engine, members_evaluator(train, device), n_trials, batch_size=population)
    return SearchResult(engine.read_record(), engine.storage_url)
