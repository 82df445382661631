"""A population of K trials agrees with K single trials, drops stopped members, and sizes itself."""

from dataclasses import replace

import pytest
import torch

from autolr.data import load_splits
from autolr.errors import UserError
from autolr.training.population import StackedOptimizer, choose_population_size, timing_probe, train_population
from autolr.schedule.spec import ScheduleSpec
from autolr.training.train import train_trial

EPOCHS, BATCH, DATA_SEED = 4, 64, 5
FAMILIES = [  # (family, params, warmup): every kind of LR curve the population must reproduce
    ("constant", {}, None),
    ("step", {"step_size": 0.25, "gamma": 0.5}, None),
    ("cosine", {"min_factor": 0.1}, None),
    ("onecycle", {"pct_start": 0.3, "cycle_momentum": True, "base_momentum": 0.8, "max_momentum": 0.95}, None),
    ("cyclic", {"base_factor": 0.2, "step_size_up": 0.25, "cycle_momentum": True}, None),
    ("wsd", {"decay_fraction": 0.4, "decay_shape": "sqrt"}, {"fraction": 0.2, "start_factor": 0.1}),
    # rel threshold 0.5: an epoch must cut the validation loss in half, so the LR drops every epoch
    ("plateau", {"factor": 0.5, "patience": 0, "threshold": 0.5, "threshold_mode": "rel"}, None),
    ("plateau", {"factor": 0.5, "patience": 0, "threshold": 0.5}, {"fraction": 0.25}),  # warmup: first epoch
]
OPTIMIZERS = {
    "sgd_momentum": ({"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4}, 0.05),
    "sgd_nesterov": ({"name": "sgd", "momentum": 0.85, "nesterov": True}, 0.05),
    "adamw": ({"name": "adamw", "betas": [0.9, 0.99], "weight_decay": 0.05}, 0.003),
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits")


def assert_same_curve(population_result, single_result):
    assert population_result.status == single_result.status
    assert population_result.epochs_run == single_result.epochs_run
    torch.testing.assert_close(population_result.val_losses, single_result.val_losses, rtol=0, atol=1e-4)
    torch.testing.assert_close(population_result.val_scores, single_result.val_scores, rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_population_members_match_single_trials_for_every_family(digits, optimizer):
    settings, lr = OPTIMIZERS[optimizer]
    specs = [ScheduleSpec(family, lr, params, warmup, optimizer=settings) for family, params, warmup in FAMILIES]
    seeds = list(range(10, 10 + len(specs)))
    population = train_population(specs, "mlp", digits, EPOCHS, BATCH, seeds, data_seed=DATA_SEED)
    for spec, seed, member in zip(specs, seeds, population, strict=True):
        single = train_trial(spec, "mlp", digits, EPOCHS, BATCH, seed, data_seed=DATA_SEED)
        assert member.status == "complete", spec.family
        assert_same_curve(member, single)
    curves = {tuple(member.val_losses) for member in population}
    assert len(curves) == len(specs)  # the schedules really differ


def test_a_cnn_population_matches_single_trials(digits):
    small = replace(digits, train_x=digits.train_x[:512], train_y=digits.train_y[:512])
    specs = [ScheduleSpec("cosine", 0.1), ScheduleSpec("constant", 0.03)]
    population = train_population(specs, "cnn", small, 2, BATCH, [0, 1], data_seed=DATA_SEED)
    for spec, seed, member in zip(specs, [0, 1], population):
        assert_same_curve(member, train_trial(spec, "cnn", small, 2, BATCH, seed, data_seed=DATA_SEED))


def test_the_lr_table_follows_lr_at_and_the_momentum_table_follows_onecycle():
    specs = [
        ScheduleSpec("onecycle", 0.1, {"cycle_momentum": True, "base_momentum": 0.8, "max_momentum": 0.95}),
        ScheduleSpec("cosine", 0.1),
        ScheduleSpec("cosine", 0.37),  # same shape, other LR: shares the computed curve
        ScheduleSpec("wsd", 0.2, {"decay_fraction": 0.3}, warmup={"fraction": 0.1, "start_factor": 0.2}),
        ScheduleSpec("cyclic", 0.3, {"mode": "exp_range", "final_scale": 0.5}, warmup={"fraction": 0.05}),
    ]
    optimizer = StackedOptimizer(specs, total_steps=100, epochs=1, device=torch.device("cpu"))
    expected = torch.tensor([[spec.lr_at(step, 100) for spec in specs] for step in range(100)])
    torch.testing.assert_close(optimizer.lr_table, expected, rtol=1e-6, atol=0)
    onecycle_momentum, cosine_momentum = optimizer.momentum_table[:, 0], optimizer.momentum_table[:, 1]
    expected_momentum = torch.tensor([specs[0].momentum_at(step, 100) for step in range(100)])
    torch.testing.assert_close(onecycle_momentum, expected_momentum)
    assert onecycle_momentum[0].item() == pytest.approx(0.95) and onecycle_momentum.min().item() == pytest.approx(0.8, abs=1e-3)
    assert torch.all(cosine_momentum == 0.9)


def test_a_pruned_member_leaves_and_the_others_are_unchanged(digits):
    specs = [ScheduleSpec("cosine", lr) for lr in (0.02, 0.05, 0.1)]
    seeds = [0, 1, 2]
    full = train_population(specs, "mlp", digits, EPOCHS, BATCH, seeds, data_seed=DATA_SEED)
    calls = []

    def prune_member_one(member, epoch, score):
        calls.append((member, epoch))
        return member == 1 and epoch == 0

    pruned = train_population(specs, "mlp", digits, EPOCHS, BATCH, seeds, data_seed=DATA_SEED, on_epoch=prune_member_one)
    assert pruned[1].status == "pruned" and pruned[1].epochs_run == 1
    assert pruned[1].val_scores == full[1].val_scores[:1]
    assert calls == [(0, 0), (1, 0), (2, 0)] + [(member, epoch) for epoch in range(1, EPOCHS) for member in (0, 2)]
    for member in (0, 2):
        assert pruned[member].status == "complete"
        assert_same_curve(pruned[member], full[member])


def test_a_diverging_member_is_stopped_without_touching_the_others(digits):
    specs = [ScheduleSpec("constant", 0.05), ScheduleSpec("constant", 1e3), ScheduleSpec("cosine", 0.1)]
    results = train_population(specs, "mlp", digits, 3, BATCH, [0, 1, 2], data_seed=DATA_SEED)
    assert results[1].status == "diverged" and results[1].final_score is None and results[1].epochs_run == 1
    healthy = train_population([specs[0], specs[2]], "mlp", digits, 3, BATCH, [0, 2], data_seed=DATA_SEED)
    assert_same_curve(results[0], healthy[0])
    assert_same_curve(results[2], healthy[1])


def test_mixed_optimizer_kinds_train_as_one_population_per_kind(digits):
    sgd, adam = ScheduleSpec("constant", 0.1), ScheduleSpec("constant", 0.003, optimizer={"name": "adam"})
    nesterov = ScheduleSpec("constant", 0.1, optimizer={"name": "sgd", "momentum": 0.9, "nesterov": True})
    mixed = train_population([sgd, adam, nesterov, sgd], "mlp", digits, 2, BATCH, [0, 1, 2, 3], data_seed=DATA_SEED)
    sgd_only = train_population([sgd, sgd], "mlp", digits, 2, BATCH, [0, 3], data_seed=DATA_SEED)
    assert_same_curve(mixed[0], sgd_only[0])
    assert_same_curve(mixed[3], sgd_only[1])
    for spec, seed, member in ((adam, 1, mixed[1]), (nesterov, 2, mixed[2])):
        assert_same_curve(member, train_trial(spec, "mlp", digits, 2, BATCH, seed, data_seed=DATA_SEED))


def test_a_stacked_optimizer_takes_one_kind_and_seeds_must_match_specs(digits):
    sgd, adam = ScheduleSpec("constant", 0.1), ScheduleSpec("constant", 0.1, optimizer={"name": "adam"})
    with pytest.raises(UserError, match="one stacked population trains one optimizer kind"):
        StackedOptimizer([sgd, adam], total_steps=10, epochs=1, device=torch.device("cpu"))
    with pytest.raises(UserError, match="one seed per spec"):
        train_population([sgd, sgd], "mlp", digits, 1, BATCH, [0])


@pytest.mark.parametrize(("seconds_per_member", "probed", "chosen"), [
    (0.1, [4, 8, 16], 16),  # member-steps/s 2.86, 4.44 (+56%), 6.15 (+38%): still gaining at the CPU's cap
    (1.0, [4, 8, 16], 8),  # 0.80, 0.89 (+11%), 0.94 (+6%): 16 gains less than 10%, so 8
    (2.0, [4, 8], 4),  # 0.44, 0.47 (+6%): 8 gains less than 10%, so 4, and 16 is never probed
])
def test_population_size_is_the_last_doubling_that_gained_ten_percent(digits, seconds_per_member, probed, chosen):
    """A step of K members takes 1 + seconds_per_member * K seconds (injected): K doubles from 4 while
    member-steps per second grow by more than 10%."""
    asked = []

    def step_time(size: int) -> tuple[float, float]:
        asked.append(size)
        return size / (1.0 + seconds_per_member * size), 0.0

    assert choose_population_size("mlp", digits, device="cpu", probe=step_time) == chosen
    assert asked == probed
    assert choose_population_size("mlp", digits, device="cpu", largest=2, probe=step_time) == 2


def test_population_size_on_a_cpu_follows_the_measured_step_times(digits):
    """The real probe: the size chosen is the doubling rule applied to the rates it measured."""
    measured: dict[int, float] = {}
    timed = timing_probe("mlp", digits, torch.device("cpu"), BATCH)

    def recording(size: int) -> tuple[float, float]:
        measured[size] = timed(size)[0]
        return measured[size], 0.0

    size = choose_population_size("mlp", digits, device="cpu", batch_size=BATCH, probe=recording)
    sizes = sorted(measured)
    assert sizes[0] == 4 and all(later == 2 * earlier for earlier, later in zip(sizes, sizes[1:]))
    expected, best = 4, measured[4]
    for later in sizes[1:]:
        if measured[later] <= 1.1 * best:
            assert later == sizes[-1]  # the probing stops at the first size that did not gain
            break
        expected, best = later, measured[later]
    assert size == expected


def test_test_scores_of_a_mixed_population_match_single_trials(digits):
    specs = [ScheduleSpec("cosine", 0.05), ScheduleSpec("constant", 0.05, optimizer={"name": "schedulefree_sgd"}),
             ScheduleSpec("constant", 50.0)]  # the last diverges: no test score
    population = train_population(specs, "mlp", digits, 2, BATCH, [3, 4, 5], data_seed=DATA_SEED, score_test=True)
    for spec, seed, member in zip(specs[:2], [3, 4], population):
        single = train_trial(spec, "mlp", digits, 2, BATCH, seed, data_seed=DATA_SEED, score_test=True)
        assert 0.5 < member.test_score == pytest.approx(single.test_score, abs=1e-4)
    assert population[2].status == "diverged" and population[2].test_score is None
    assert train_population(specs[:1], "mlp", digits, 1, BATCH, [3], data_seed=DATA_SEED)[0].test_score is None
