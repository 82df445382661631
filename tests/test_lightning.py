"""A spec drives a real lightning.Trainer: per-batch schedules step per batch, plateau once per epoch on its metric."""

import pytest
import torch

from autolr.schedule.schedulers import lightning_config
from autolr.schedule.spec import ScheduleSpec

lightning = pytest.importorskip("lightning")

BATCHES_PER_EPOCH = 8


def loader(seed: int) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCHES_PER_EPOCH * 16, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


class Regression(lightning.LightningModule):
    """A linear model that records the LR each training batch ran with; ``val_metrics`` scripts what it logs."""

    def __init__(self, spec: ScheduleSpec, val_metrics: list[float] | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.val_metrics = val_metrics
        self.layer = torch.nn.Linear(4, 1)
        self.seen_lrs: list[tuple[int, float]] = []  # (epoch, LR) of every training batch

    def training_step(self, batch, batch_index):
        self.seen_lrs.append((self.current_epoch, self.trainer.optimizers[0].param_groups[0]["lr"]))
        inputs, targets = batch
        return torch.nn.functional.mse_loss(self.layer(inputs), targets)

    def validation_step(self, batch, batch_index):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self.layer(inputs), targets)
        self.log("val_loss", loss if self.val_metrics is None else self.val_metrics[self.current_epoch])

    def configure_optimizers(self):
        optimizer = self.spec.build_optimizer(self.parameters())
        total_steps = self.trainer.max_epochs if self.spec.family == "plateau" else \
            self.trainer.estimated_stepping_batches
        return lightning_config(self.spec, optimizer, total_steps)


def fit(module: Regression, epochs: int) -> None:
    trainer = lightning.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                                num_sanity_val_steps=0)
    trainer.fit(module, loader(0), loader(1))


@pytest.mark.parametrize("spec", [
    ScheduleSpec("onecycle", 0.05),
    ScheduleSpec("wsd", 0.05, {"decay_shape": "cosine"}, warmup={"fraction": 0.1}),
], ids=lambda spec: spec.family)
def test_each_batch_trains_with_lr_at_its_step(spec):
    module = Regression(spec)
    fit(module, epochs=2)
    total_steps = 2 * BATCHES_PER_EPOCH
    assert [lr for _, lr in module.seen_lrs] == [spec.lr_at(step, total_steps) for step in range(total_steps)]
    assert len({lr for epoch, lr in module.seen_lrs if epoch == 1}) > 1  # stepped within an epoch, not per epoch


def test_plateau_is_stepped_once_per_epoch_on_the_monitored_metric():
    spec = ScheduleSpec("plateau", 0.1, {"factor": 0.5, "patience": 0})
    metrics = [3.0, 2.0, 2.0, 2.0, 1.0]  # improves, improves, stalls, stalls, improves
    module = Regression(spec, val_metrics=metrics)
    fit(module, epochs=len(metrics))
    by_epoch = {epoch: {lr for e, lr in module.seen_lrs if e == epoch} for epoch in range(len(metrics))}
    assert all(len(lrs) == 1 for lrs in by_epoch.values())  # constant within an epoch
    reference_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(reference_optimizer, factor=0.5, patience=0)
    expected = []
    for metric in metrics:
        expected.append(reference_optimizer.param_groups[0]["lr"])
        reference.step(metric)
    assert [by_epoch[epoch].pop() for epoch in range(len(metrics))] == expected == [0.1, 0.1, 0.1, 0.05, 0.025]
