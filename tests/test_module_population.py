"""A user's own nn.Module as a population (torch.func) against the single trial, member by member."""

from __future__ import annotations

import warnings

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from autolr import ScheduleSpec, UserError, splits_from_tensors, train_trial
from autolr.training.module_population import PopulationFallbackWarning, build_member, train_module_population

EPOCHS, BATCH = 2, 64
SGD = {"name": "sgd", "momentum": 0.9}
ADAMW = {"name": "adamw", "weight_decay": 0.01}


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32).view(-1, 1, 8, 8)
    # Noise so that no pixel is constant: BatchNorm makes a constant input's weight gradient zero
    # up to rounding, which Adam (like a bias before BatchNorm, below) scales up to full steps.
    x = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    return splits_from_tensors(x[:600], torch.tensor(data.target)[:600])


# No bias right before BatchNorm (as is usual): its gradient is zero up to rounding.
def batchnorm_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


def batchnorm_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 16, 10),
    )


def dropout_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))


class BranchingNet(nn.Module):
    """Data-dependent control flow: vmap cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.flatten(1))
        return out * 2 if out.sum() > 0 else out


def single(factory, spec, splits, seed, data_seed=0, **kwargs):
    return train_trial(spec, build_member(factory, seed), splits, EPOCHS, BATCH, seed=seed, data_seed=data_seed, **kwargs)


def assert_same_curve(member, trial):
    assert member.status == trial.status and member.epochs_run == trial.epochs_run
    torch.testing.assert_close(member.val_losses, trial.val_losses, rtol=0, atol=1e-4)
    torch.testing.assert_close(member.val_scores, trial.val_scores, rtol=0, atol=1e-4)


@pytest.mark.parametrize("optimizer", [SGD, ADAMW], ids=["sgd-momentum", "adamw"])
@pytest.mark.parametrize("factory", [batchnorm_mlp, batchnorm_cnn], ids=["batchnorm-mlp", "batchnorm-cnn"])
def test_each_member_equals_its_single_trial(digits, factory, optimizer):
    lr = 0.05 if optimizer is SGD else 0.003
    specs = [
        ScheduleSpec("constant", lr, optimizer=optimizer),
        ScheduleSpec("cosine", lr * 2, optimizer=optimizer),
        ScheduleSpec("onecycle", lr * 3, optimizer=optimizer),
        ScheduleSpec("step", lr, params={"step_size": 0.3, "gamma": 0.5}, optimizer=optimizer),
    ]
    seeds = [0, 1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationFallbackWarning)  # these models must vmap
        members = train_module_population(factory, specs, digits, EPOCHS, BATCH, seeds)
    for member, spec, seed in zip(members, specs, seeds):
        assert_same_curve(member, single(factory, spec, digits, seed))
    assert len({round(m.val_losses[-1], 6) for m in members}) == len(members)  # the members really differ


def test_batchnorm_running_statistics_stay_per_member(digits):
    """Two members with the same seed but different LRs: their eval-mode curves follow their own statistics."""
    specs = [ScheduleSpec("constant", 0.01, optimizer=SGD), ScheduleSpec("constant", 0.2, optimizer=SGD)]
    members = train_module_population(batchnorm_mlp, specs, digits, EPOCHS, BATCH, seeds=[5, 5])
    for member, spec in zip(members, specs):
        assert_same_curve(member, single(batchnorm_mlp, spec, digits, 5))


def test_a_pruned_member_leaves_and_the_others_stay_equal(digits):
    specs = [ScheduleSpec("cosine", 0.05, optimizer=SGD), ScheduleSpec("constant", 0.02, optimizer=SGD)]
    members = train_module_population(batchnorm_mlp, specs, digits, EPOCHS, BATCH, seeds=[0, 1],
                                      on_epoch=lambda member, epoch, score: member == 0 and epoch == 0)
    assert (members[0].status, members[0].epochs_run) == ("pruned", 1)
    assert_same_curve(members[1], single(batchnorm_mlp, specs[1], digits, 1))


def test_dropout_population_of_one_equals_the_single_trial_with_the_same_rng(digits):
    spec = ScheduleSpec("cosine", 0.05, optimizer=SGD)
    (member,) = train_module_population(dropout_mlp, [spec], digits, EPOCHS, BATCH, seeds=[0], data_seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        trial = single(dropout_mlp, spec, digits, 0, data_seed=7)
    assert_same_curve(member, trial)


def test_dropout_members_draw_their_own_masks(digits):
    """Identical members differ only by their dropout masks: their curves differ, but only by noise."""
    spec = ScheduleSpec("cosine", 0.05, optimizer=SGD)
    members = train_module_population(dropout_mlp, [spec] * 3, digits, EPOCHS, BATCH, seeds=[0] * 3)
    finals = [member.val_losses[-1] for member in members]
    assert len(set(finals)) == 3
    trial = single(dropout_mlp, spec, digits, 0)
    assert max(abs(final - trial.val_losses[-1]) for final in finals) < 0.2 * trial.val_losses[-1]


def test_a_model_vmap_cannot_run_trains_member_by_member_with_a_warning(digits):
    specs = [ScheduleSpec("constant", 0.05, optimizer=SGD), ScheduleSpec("cosine", 0.1, optimizer=SGD)]
    with pytest.warns(PopulationFallbackWarning, match="BranchingNet trains member by member.*Error"):
        members = train_module_population(BranchingNet, specs, digits, EPOCHS, BATCH, seeds=[0, 1])
    for member, spec, seed in zip(members, specs, [0, 1]):
        assert_same_curve(member, single(BranchingNet, spec, digits, seed))


def test_tensors_and_a_custom_loss(digits):
    """An (x, y) pair becomes splits; the validation loss is the given loss_fn's."""
    spec = ScheduleSpec("constant", 0.05, optimizer=SGD)

    def smoothed(outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, label_smoothing=0.2)

    x, y = torch.cat([digits.train_x, digits.val_x]), torch.cat([digits.train_y, digits.val_y])
    plain, = train_module_population(batchnorm_mlp, [spec], (x, y), EPOCHS, BATCH, seeds=[0], metric="loss")
    smooth, = train_module_population(batchnorm_mlp, [spec], (x, y), EPOCHS, BATCH, seeds=[0], metric="loss",
                                      loss_fn=smoothed)
    assert smooth.val_losses[-1] > plain.val_losses[-1] + 0.1  # label smoothing keeps the loss well above


def test_a_factory_that_returns_no_module_is_a_user_error(digits):
    with pytest.raises(UserError, match="model_factory must return a torch.nn.Module, got int"):
        train_module_population(lambda: 3, [ScheduleSpec("constant", 0.1)], digits, 1, BATCH, seeds=[0])
