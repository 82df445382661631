"""A built-in study's job: its dataset and model, trials trained at once as populations.

An image dataset loads as ``autolr.data.Splits``; a text dataset as ``TextSplits`` whose
"epoch" is the study's ``eval_every`` optimizer steps (validation runs after each).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from autolr.data import load_splits, load_text_splits
from autolr.data.splits import Splits
from autolr.data.text import TextSplits
from autolr.jobs.population import members_evaluator, population_scores, split_resolution
from autolr.schedule.spec import ScheduleSpec
from autolr.study.config import StudyConfig
from autolr.study.definition import Recipe, SearchDefinition
from autolr.training.population import train_population
from autolr.training.train import TrialResult
from autolr.trials import Evaluate, Scores


@dataclass
class BuiltinJob:
    """``config``'s model on its dataset, on ``device``. The splits load once, on first use;
    the job pickles without them (a worker process loads its own copy)."""

    config: StudyConfig
    device: str
    _splits: Splits | TextSplits | None = field(default=None, repr=False)

    @property
    def splits(self) -> Splits | TextSplits:
        """The study's dataset splits on the job's device, loaded on first use."""
        if self._splits is None:
            config = self.config
            if config.recipe is Recipe.LM:
                assert config.eval_every is not None, "a text study always has eval_every (StudyConfig sets it)"
                self._splits = load_text_splits(config.dataset, epoch_steps=config.eval_every,
                                                data_dir=config.data_dir, device=self.device)
            else:
                self._splits = load_splits(config.dataset, data_dir=config.data_dir, device=self.device,
                                           seed=config.seed)
        return self._splits

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_splits": None}

    def evaluator(self, definition: SearchDefinition) -> Evaluate:
        config, splits = self.config, self.splits  # the data loads now, before the first trial is asked

        def train(specs: list[ScheduleSpec], on_epoch: Any) -> list[TrialResult]:
            return train_population(specs, config.model, splits, config.epochs, config.batch_size,
                                    seeds=[config.seed] * len(specs), data_seed=config.seed, metric=config.metric,
                                    on_epoch=on_epoch, device=self.device, grad_clip=config.grad_clip)

        return members_evaluator(train, self.device)

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        config = self.config

        def train(chunk: list[ScheduleSpec], seed: int, test: bool) -> list[TrialResult]:
            return train_population(chunk, config.model, self.splits, epochs or config.epochs, config.batch_size,
                                    seeds=[seed] * len(chunk), data_seed=seed, metric=config.metric,
                                    device=self.device, score_test=test, grad_clip=config.grad_clip)

        return population_scores(train, specs, seeds, population, score_test)

    def resolution(self) -> tuple[float, float]:
        return split_resolution(self.config.metric, self.splits)

    def optimizer_baselines(self) -> str | None:
        return None  # the population trains with the optimizer each spec names
