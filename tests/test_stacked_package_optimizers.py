"""Schedule-free SGD/AdamW and Prodigy on stacked tensors: each member steps as the package's own optimizer."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from autolr.data import load_splits
from autolr.schedule.spec import ScheduleSpec
from autolr.training.models import build_model, build_population
from autolr.training.population import StackedOptimizer, train_population
from autolr.training.train import train_trial

BATCH, DATA_SEED = 64, 5
WARMUP_FROM_ZERO = {"fraction": 0.25, "start_factor": 0.0}  # the first step's LR is 0
MEMBERS = {  # per optimizer: members with different LRs, settings and schedules
    "schedulefree_sgd": [
        ScheduleSpec("constant", 0.5, warmup=WARMUP_FROM_ZERO, optimizer={"name": "schedulefree_sgd"}),
        ScheduleSpec("cosine", 0.2, warmup={"fraction": 0.25},
                     optimizer={"name": "schedulefree_sgd", "momentum": 0.8, "weight_decay": 1e-3}),
        ScheduleSpec("step", 1.0, {"step_size": 0.3, "gamma": 0.3},
                     optimizer={"name": "schedulefree_sgd", "momentum": 0.95, "weight_decay": 5e-4}),
    ],
    "schedulefree_adamw": [
        ScheduleSpec("constant", 0.01, warmup=WARMUP_FROM_ZERO, optimizer={"name": "schedulefree_adamw"}),
        ScheduleSpec("cosine", 0.003, warmup={"fraction": 0.25},
                     optimizer={"name": "schedulefree_adamw", "betas": [0.95, 0.99], "eps": 1e-6,
                                "weight_decay": 0.01}),
        ScheduleSpec("linear", 0.02, optimizer={"name": "schedulefree_adamw", "betas": [0.8, 0.999],
                                                "weight_decay": 0.1}),
    ],
    "prodigy": [
        ScheduleSpec("constant", 1.0, warmup=WARMUP_FROM_ZERO, optimizer={"name": "prodigy"}),
        ScheduleSpec("cosine", 0.5, warmup={"fraction": 0.25},
                     optimizer={"name": "prodigy", "betas": [0.8, 0.99], "weight_decay": 0.02, "d_coef": 0.5,
                                "safeguard_warmup": True, "use_bias_correction": True}),
        ScheduleSpec("onecycle", 2.0, {"cycle_momentum": True, "base_momentum": 0.8, "max_momentum": 0.95},
                     optimizer={"name": "prodigy", "weight_decay": 0.01, "use_bias_correction": True}),
    ],
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits")


def assert_members_equal(population, singles):
    for index, stacked in enumerate(population.params):
        for member, single in enumerate(singles):
            torch.testing.assert_close(stacked[member], list(single.parameters())[index], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MEMBERS)
def test_every_member_steps_as_the_package_optimizer(digits, name):
    """Same gradients in, same weights out: after each step and each train/eval switch, for 16 steps."""
    specs, total_steps, switch_every = MEMBERS[name], 16, 5
    seeds = range(len(specs))
    population = build_population("mlp", digits.input_shape, digits.num_classes, seeds)
    stacked = StackedOptimizer(specs, total_steps, epochs=1, device=torch.device("cpu"))
    singles = [build_model("mlp", digits.input_shape, digits.num_classes, seed) for seed in seeds]
    optimizers = [spec.build_optimizer(single.parameters()) for spec, single in zip(specs, singles)]
    schedulers = [spec.build(optimizer, total_steps) for spec, optimizer in zip(specs, optimizers)]

    def switch(training):
        getattr(stacked, "train" if training else "eval")(population.params)
        for optimizer in optimizers:
            getattr(optimizer, "train" if training else "eval", lambda: None)()
        assert_members_equal(population, singles)

    switch(training=True)
    for step in range(total_steps):
        x, y = digits.train_x[step * BATCH:(step + 1) * BATCH], digits.train_y[step * BATCH:(step + 1) * BATCH]
        for single in singles:
            single.zero_grad(set_to_none=True)
            F.cross_entropy(single(x), y).backward()
        for index, param in enumerate(population.params):
            param.grad = torch.stack([list(single.parameters())[index].grad for single in singles])
        stacked.step(population.params, step)
        for optimizer, scheduler in zip(optimizers, schedulers):
            optimizer.step()
            scheduler.step()
        assert_members_equal(population, singles)
        if (step + 1) % switch_every == 0:
            switch(training=False)
            switch(training=True)
    switch(training=False)
    moved = [(p - build_population("mlp", digits.input_shape, digits.num_classes, seeds).params[i]).abs().max()
             for i, p in enumerate(population.params)]
    assert min(moved) > 1e-3  # the members really trained
    if name == "prodigy":
        d = stacked.package.d
        torch.testing.assert_close(d, torch.tensor([o.param_groups[0]["d"] for o in optimizers], dtype=torch.float64),
                                   rtol=1e-4, atol=0)
        assert d.max() > 1000 * 1e-6 and len(set(d.tolist())) == len(specs)  # grown from d0, per member


def test_population_members_match_train_trial_when_members_leave(digits):
    """Two members of each package optimizer, one of each pruned after the first epoch: every curve is train_trial's."""
    specs = [*MEMBERS["schedulefree_sgd"][1:], *MEMBERS["schedulefree_adamw"][1:], MEMBERS["prodigy"][0],
             MEMBERS["prodigy"][2]]
    seeds = [7, 8, 9, 10, 11, 12]
    pruned = {0, 4}  # one member of schedule-free SGD and one of Prodigy leave; their partners train on

    def prune(member, epoch, score):
        return member in pruned

    results = train_population(specs, "mlp", digits, 3, BATCH, seeds, data_seed=DATA_SEED, on_epoch=prune)
    for member, (spec, seed, result) in enumerate(zip(specs, seeds, results, strict=True)):
        single = train_trial(spec, "mlp", digits, 3, BATCH, seed, data_seed=DATA_SEED)
        assert single.status == "complete" and single.final_score > 0.8, member
        assert result.status == ("pruned" if member in pruned else "complete"), member
        torch.testing.assert_close(result.val_losses, single.val_losses[:result.epochs_run], rtol=0, atol=1e-4)
        torch.testing.assert_close(result.val_scores, single.val_scores[:result.epochs_run], rtol=0, atol=1e-4)
    assert len({tuple(result.val_losses) for result in results}) == len(specs)


def test_a_users_module_population_stacks_package_optimizers_too(digits):
    """The torch.func population reuses the stacked update: schedule-free and Prodigy members match train_trial."""
    from torch import nn

    from autolr.training.module_population import PopulationFallbackWarning, build_member, train_module_population

    def make_model():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    for name, members in MEMBERS.items():  # a module population trains one optimizer kind
        specs, seeds = [members[0], members[2]], [3, 4]
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationFallbackWarning)  # vmapped, not member by member
            results = train_module_population(make_model, specs, digits, 2, BATCH, seeds, data_seed=DATA_SEED)
        for spec, seed, result in zip(specs, seeds, results, strict=True):
            single = train_trial(spec, build_member(make_model, seed), digits, 2, BATCH, seed, data_seed=DATA_SEED)
            assert result.status == single.status == "complete" and single.final_score > 0.5, name
            torch.testing.assert_close(result.val_losses, single.val_losses, rtol=0, atol=1e-4)
