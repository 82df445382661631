"""Searching a PyTorch Lightning job: a pruning callback and an objective around a real ``Trainer``.

``lightning_objective(make_module, make_data, monitor)`` is an ``autolr.search`` objective:
for each run it seeds everything from ``trial.seed``, builds the ``LightningModule`` for the
schedule (its ``configure_optimizers`` returns ``autolr.lightning_config(schedule,
schedule.build_optimizer(self.parameters()), self.trainer.estimated_stepping_batches)``),
fits it for ``trial.epochs`` epochs with :class:`AutolrCallback`, and returns the monitored
validation metric (and the test metric, when the data has a test split).

:class:`AutolrCallback` is the counterpart of optuna-integration's
``PyTorchLightningPruningCallback``: after each validation epoch it reports the monitored
metric to the trial; when the pruner says stop it ends the fit (``trainer.should_stop``)
and the objective raises :class:`autolr.TrialPruned` after it. It also switches a
schedule-free optimizer between ``train()`` and ``eval()`` around training and evaluation,
so the schedule-free baselines run in a Lightning job as they do in autolr's own loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning
import torch

from autolr.errors import UserError
from autolr.schedule.spec import ScheduleSpec
from autolr.trials import TrialPruned

__all__ = ["AutolrCallback", "lightning_objective"]


class AutolrCallback(lightning.pytorch.Callback):
    """Reports ``monitor`` to ``trial`` after each validation epoch and stops the fit when it is pruned;
    switches schedule-free optimizers between their training and evaluation weights."""

    def __init__(self, trial: Any, monitor: str) -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned_after: int | None = None  # the epoch (from 0) after which the pruner stopped the run

    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        _set_mode(trainer, training=True)

    def on_validation_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        _set_mode(trainer, training=False)

    def on_test_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        _set_mode(trainer, training=False)

    def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is None:
            raise UserError(f"the LightningModule logs no {self.monitor!r} in validation; log it with "
                            f"self.log({self.monitor!r}, value) in validation_step, or pass monitor=")
        try:
            self.trial.report(float(score), trainer.current_epoch)
        except TrialPruned:
            self.pruned_after = trainer.current_epoch
            trainer.should_stop = True

    def raise_if_pruned(self) -> None:
        """Raise TrialPruned when the pruner stopped the fit (call it after ``trainer.fit``)."""
        if self.pruned_after is not None:
            raise TrialPruned(f"pruned after epoch {self.pruned_after}")


def _set_mode(trainer: lightning.Trainer, training: bool) -> None:
    """``optimizer.train()`` or ``.eval()`` for each optimizer that has them (schedule-free)."""
    for optimizer in trainer.optimizers:
        switch = getattr(optimizer, "train" if training else "eval", None)
        if callable(switch):
            switch()


def lightning_objective(
    make_module: Callable[[ScheduleSpec], lightning.LightningModule],
    make_data: Callable[[], lightning.LightningDataModule],
    monitor: str = "val_acc",
    test_metric: str | None = None,
    **trainer_options: Any,
) -> Callable[[ScheduleSpec, Any], Mapping[str, float]]:
    """An ``autolr.search`` objective that fits ``make_module(schedule)`` on ``make_data()`` with a real Trainer.

    Each run seeds Python, NumPy and torch (and the DataLoader workers) from ``trial.seed``,
    trains ``trial.epochs`` epochs and returns ``{"val": monitor, "test": test_metric}``;
    ``test_metric`` (default ``monitor`` with ``val_`` replaced by ``test_``) is read after
    ``trainer.test`` when the data module has a test split. ``trainer_options`` go to
    ``lightning.Trainer`` (CPU and quiet by default).
    """
    test_name = test_metric or "test_" + monitor.removeprefix("val_")

    def objective(schedule: ScheduleSpec, trial: Any) -> Mapping[str, float]:
        if trial.epochs is None:
            raise UserError("a Lightning objective needs the run's length: pass epochs= to autolr.search")
        lightning.seed_everything(trial.seed, workers=True, verbose=False)
        module, data = make_module(schedule), make_data()
        callback = AutolrCallback(trial, monitor)
        trainer = lightning.Trainer(**{
            "accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "num_sanity_val_steps": 0, **trainer_options,
            "max_epochs": trial.epochs, "callbacks": [callback, *trainer_options.get("callbacks", [])],
        })
        trainer.fit(module, datamodule=data)
        callback.raise_if_pruned()
        scores = {"val": _metric(trainer, monitor)}
        if _has_test(data):
            trainer.test(module, datamodule=data, verbose=False)
            scores["test"] = _metric(trainer, test_name)
        return scores

    return objective


def _metric(trainer: lightning.Trainer, name: str) -> float:
    value = trainer.callback_metrics.get(name)
    if value is None:
        raise UserError(f"the LightningModule logged no {name!r}")
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def _has_test(data: lightning.LightningDataModule) -> bool:
    """Whether the data module defines its own ``test_dataloader``."""
    return type(data).test_dataloader is not lightning.LightningDataModule.test_dataloader
