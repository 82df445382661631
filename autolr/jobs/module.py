"""A user's ``nn.Module`` as a study's job: its trials and fresh-seed runs trained at once through torch.func."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Sequence

from torch import nn

from autolr.jobs.population import members_evaluator, population_scores, split_resolution
from autolr.schedule.spec import ScheduleSpec
from autolr.study.definition import SearchDefinition
from autolr.training.module_population import train_module_population
from autolr.training.train import LossFn, Splits, TrialResult
from autolr.trials import Evaluate, Scores


@dataclass
class ModuleJob:
    """``model_factory()``'s model on ``splits``, batches of ``batch_size`` rows, scored by ``metric``
    (``accuracy`` or the mean ``loss_fn`` on validation) on ``device``."""

    model_factory: Callable[[], nn.Module]
    splits: Splits
    batch_size: int
    loss_fn: LossFn
    metric: str
    device: str

    def evaluator(self, definition: SearchDefinition) -> Evaluate:
        seed, epochs = definition.seed, definition.epochs

        def train(specs: list[ScheduleSpec], on_epoch: Any) -> list[TrialResult]:
            return self._train(specs, seed, epochs or 1, on_epoch=on_epoch)

        return members_evaluator(train, self.device)

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        def train(chunk: list[ScheduleSpec], seed: int, test: bool) -> list[TrialResult]:
            return self._train(chunk, seed, epochs or 1, score_test=test)

        return population_scores(train, specs, seeds, population, score_test)

    def _train(self, specs: list[ScheduleSpec], seed: int, epochs: int, **options: Any) -> list[TrialResult]:
        return train_module_population(self.model_factory, specs, self.splits, epochs, self.batch_size,
                                       seeds=[seed] * len(specs), loss_fn=self.loss_fn, data_seed=seed,
                                       metric=self.metric, device=self.device, **options)

    def resolution(self) -> tuple[float, float]:
        return split_resolution(self.metric, self.splits)

    def optimizer_baselines(self) -> str | None:
        return None  # the population trains with the optimizer each spec names
