"""A built-in study's job: its dataset and model, trials trained at once as populations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from autolr.data import load_splits
from autolr.data.splits import Splits
from autolr.jobs.population import members_evaluator, population_scores, split_resolution
from autolr.schedule.spec import ScheduleSpec
from autolr.study.config import StudyConfig
from autolr.study.definition import SearchDefinition
from autolr.training.population import train_population
from autolr.training.train import TrialResult
from autolr.trials import Evaluate, Scores


@dataclass
class BuiltinJob:
    """``config``'s model on its dataset, on ``device``. The splits load once, on first use;
    the job pickles without them (a worker process loads its own copy)."""

    config: StudyConfig
    device: str
    _splits: Splits | None = field(default=None, repr=False)

    @property
    def splits(self) -> Splits:
        """The study's dataset splits on the job's device, loaded on first use."""
        if self._splits is None:
            config = self.config
            self._splits = load_splits(config.dataset, data_dir=config.data_dir, device=self.device, seed=config.seed)
        return self._splits

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_splits": None}

    def evaluator(self, definition: SearchDefinition) -> Evaluate:
        config, splits = self.config, self.splits  # the data loads now, before the first trial is asked

        def train(specs: list[ScheduleSpec], on_epoch: Any) -> list[TrialResult]:
            return train_population(specs, config.model, splits, config.epochs, config.batch_size,
                                    seeds=[config.seed] * len(specs), data_seed=config.seed, metric=config.metric,
                                    on_epoch=on_epoch, device=self.device)

        return members_evaluator(train, self.device)

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        config = self.config

        def train(chunk: list[ScheduleSpec], seed: int, test: bool) -> list[TrialResult]:
            return train_population(chunk, config.model, self.splits, epochs or config.epochs, config.batch_size,
                                    seeds=[seed] * len(chunk), data_seed=seed, metric=config.metric,
                                    device=self.device, score_test=test)

        return population_scores(train, specs, seeds, population, score_test)

    def resolution(self) -> tuple[float, float]:
        return split_resolution(self.config.metric, self.splits)

    def optimizer_baselines(self) -> str | None:
        return None  # the population trains with the optimizer each spec names
