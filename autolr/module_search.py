"""A schedule search over the user's own model and data, its trials trained K at once as a module population.

``autolr.search`` runs a user's objective, which cannot be vmapped; here autolr owns the
training loop (``train_module_population``), so the asked trials, the baselines' rungs and
the re-scoring's fresh seeds train together as populations, through the same study
pipeline (tuned baselines, re-scoring, verdict, Occam's export) as a built-in study.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import nn

from autolr.jobs.module import ModuleJob
from autolr.pipeline.run import RunFacts
from autolr.search import SearchResult, run_api_study
from autolr.space.search_space import SearchSpace
from autolr.study.definition import Direction, SearchDefinition
from autolr.training.module_population import as_splits
from autolr.training.train import LossFn, check_run, training_device


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
    baseline_lrs: int = 5,
    schedule_free: bool = True,
    rescore_top: int = 3,
    rescore_seeds: int = 5,
    target_epochs: int | None = None,
    device: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
) -> SearchResult:
    """Search ``space`` for the schedule of ``model_factory()``'s model on ``data``, ``population`` trials at a time.

    Every run trains a model from ``model_factory`` (torch RNG seeded with the run's seed)
    for ``epochs`` epochs of ``batch_size`` rows (``data`` and ``loss_fn`` as in
    ``train_module_population``) and scores it on the validation split after each epoch:
    accuracy (maximized) or, with ``metric="loss"``, the mean ``loss_fn`` (minimized). The
    pruner stops members of a population as it would single trials. Baselines, re-scoring
    on fresh seeds (at ``target_epochs``), the verdict and the other arguments are those of
    ``autolr.search`` (Optuna engine); ``device`` defaults to the data's. The test score
    beside validation is the data's test split's.
    """
    check_run(epochs, batch_size, metric)
    definition = SearchDefinition(
        name=study_name, direction=Direction.of_metric(metric), trials=n_trials, epochs=epochs, metric=metric,
        metric_name=f"val_{metric}", sampler=sampler, pruner=pruner, prune_after=prune_after, seed=seed,
        baseline_lrs=baseline_lrs, schedule_free=schedule_free, rescore_top=rescore_top, rescore_seeds=rescore_seeds,
        target_epochs=target_epochs, population=population)
    splits = as_splits(data)
    device = str(training_device(device, splits))
    job = ModuleJob(model_factory, splits, batch_size, loss_fn, metric, device)
    facts = RunFacts(device, data_source=getattr(splits, "source", "your data"),
                     dataset=dataset or str(getattr(splits, "name", "your data")), model=model or "your model")
    return run_api_study(definition, space, job, storage, "optuna", population, facts)
