"""Schedule-free SGD/AdamW and Prodigy as spec optimizers: validated, built from the real packages, trained."""

import inspect

import prodigyopt
import pytest
import schedulefree
import torch
import torch.nn.functional as F

from autolr.data import load_splits
from autolr.errors import SpecError
from autolr.training.models import build_model
from autolr.training.population import train_population
from autolr.rangetest.range_test import builtin_range_test
from autolr.schedule.optimizers import OPTIMIZER_PARAMETERS
from autolr.schedule.spec import ScheduleSpec
from autolr.training.train import evaluate, shuffled_epochs, steps_per_epoch, train_trial

EPOCHS, BATCH, DATA_SEED = 2, 64, 5
PACKAGE_CLASSES = {
    "schedulefree_sgd": schedulefree.SGDScheduleFree,
    "schedulefree_adamw": schedulefree.AdamWScheduleFree,
    "prodigy": prodigyopt.Prodigy,
}
SETTINGS = {  # non-default values of every setting
    "schedulefree_sgd": {"momentum": 0.8, "weight_decay": 1e-4},
    "schedulefree_adamw": {"betas": [0.95, 0.99], "eps": 1e-7, "weight_decay": 0.01},
    "prodigy": {"betas": [0.8, 0.99], "weight_decay": 0.02, "d_coef": 0.5, "safeguard_warmup": True,
                "use_bias_correction": True},
}


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits")


@pytest.mark.parametrize("name", PACKAGE_CLASSES)
def test_spec_defaults_mirror_the_package_and_round_trip_through_every_format(name):
    package_defaults = inspect.signature(PACKAGE_CLASSES[name]).parameters
    for parameter in OPTIMIZER_PARAMETERS[name]:
        default = package_defaults[parameter.name].default
        assert parameter.default == (list(default) if isinstance(default, tuple) else default), parameter.name
    spec = ScheduleSpec("cosine", 0.2, warmup={"fraction": 0.1}, optimizer={"name": name, **SETTINGS[name]})
    assert spec.optimizer == {"name": name, **SETTINGS[name]}
    for file_format in ("json", "yaml", "toml"):
        assert ScheduleSpec.from_text(spec.to_text(file_format), file_format) == spec


@pytest.mark.parametrize(("optimizer", "message"), [
    ({"name": "schedulefree_sgd", "momentum": 0.0}, "optimizer.momentum must be in (0, 1), got 0.0"),
    ({"name": "schedulefree_sgd", "weight_decay": -1}, "optimizer.weight_decay must be >= 0, got -1"),
    ({"name": "schedulefree_adamw", "betas": [0.0, 0.999]}, "optimizer.betas must be two numbers in (0, 1), got [0.0, 0.999]"),
    ({"name": "schedulefree_adamw", "eps": 0}, "optimizer.eps must be > 0, got 0"),
    ({"name": "prodigy", "d_coef": 0}, "optimizer.d_coef must be > 0, got 0"),
    ({"name": "prodigy", "betas": [0.9, 1.0]}, "optimizer.betas must be two numbers in [0, 1), got [0.9, 1.0]"),
    ({"name": "prodigy", "safeguard_warmup": "yes"}, 'optimizer.safeguard_warmup must be true or false, got "yes"'),
    ({"name": "prodigy", "use_bias_correction": 1}, "optimizer.use_bias_correction must be true or false, got 1"),
    ({"name": "prodigy", "eps": 1e-8}, "optimizer.eps is not a parameter of prodigy (its parameters: betas, d_coef, "
                                       "safeguard_warmup, use_bias_correction, weight_decay)"),
])
def test_a_bad_setting_names_its_field(optimizer, message):
    with pytest.raises(SpecError) as error:
        ScheduleSpec.from_dict({"autolr_spec": 1, "family": "constant", "lr": 0.1, "optimizer": optimizer})
    assert str(error.value) == message


@pytest.mark.parametrize("name", ["schedulefree_sgd", "schedulefree_adamw"])
def test_schedule_free_takes_no_cycled_momentum(name):
    with pytest.raises(SpecError) as error:
        ScheduleSpec("onecycle", 0.1, optimizer={"name": name})  # onecycle cycles momentum by default
    assert str(error.value) == (f"params.cycle_momentum must be false with optimizer {name}, "
                                f"whose momentum converts its training weights to its evaluation weights")
    assert ScheduleSpec("onecycle", 0.1, {"cycle_momentum": False}, optimizer={"name": name}).optimizer["name"] == name


@pytest.mark.parametrize("name", PACKAGE_CLASSES)
def test_build_optimizer_returns_the_package_class_with_the_spec_settings(name):
    spec = ScheduleSpec("constant", 0.3, optimizer={"name": name, **SETTINGS[name]})
    optimizer = spec.build_optimizer(torch.nn.Linear(4, 2).parameters())
    assert type(optimizer) is PACKAGE_CLASSES[name]
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.3
    for key, value in SETTINGS[name].items():
        assert group[key] == (tuple(value) if key == "betas" else value), key
    if name != "prodigy":
        assert group["warmup_steps"] == 0  # the spec's schedule, not the package's own warmup, sets the LR


def test_the_package_steps_with_the_lr_the_spec_schedules(digits):
    """Warmup from 0 then cosine on top of schedule-free SGD: the LR the package used is spec.lr_at at every step."""
    spec = ScheduleSpec("cosine", 0.5, warmup={"fraction": 0.2, "start_factor": 0.0},
                        optimizer={"name": "schedulefree_sgd"})
    model = build_model("mlp", digits.input_shape, digits.num_classes, 0)
    optimizer = spec.build_optimizer(model.parameters())
    scheduler = spec.build(optimizer, total_steps=20)
    optimizer.train()
    used = []
    for step in range(20):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        F.cross_entropy(model(digits.train_x[batch]), digits.train_y[batch]).backward()
        optimizer.step()
        optimizer.zero_grad()
        used.append(optimizer.param_groups[0]["scheduled_lr"])
        scheduler.step()
    assert used == [spec.lr_at(step, 20) for step in range(20)]
    assert used[0] == 0.0 and optimizer.param_groups[0]["lr_max"] == 0.5
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_train_trial_scores_schedule_free_sgd_in_eval_mode(digits):
    spec = ScheduleSpec("constant", 0.5, optimizer={"name": "schedulefree_sgd"})
    trained = build_model("mlp", digits.input_shape, digits.num_classes, 0)
    result = train_trial(spec, trained, digits, EPOCHS, BATCH, seed=0, data_seed=DATA_SEED)
    assert result.status == "complete" and result.final_score >= 0.9

    # The same run by hand, to reach the optimizer and score both of its modes.
    model = build_model("mlp", digits.input_shape, digits.num_classes, 0)
    optimizer = spec.build_optimizer(model.parameters())
    scheduler = spec.build(optimizer, EPOCHS * steps_per_epoch(digits.train_x.shape[0], BATCH))
    eval_losses, train_losses = [], []
    for epoch_x, epoch_y in shuffled_epochs(digits.train_x, digits.train_y, EPOCHS, DATA_SEED):
        optimizer.train()
        for start in range(0, epoch_x.shape[0], BATCH):
            F.cross_entropy(model(epoch_x[start:start + BATCH]), epoch_y[start:start + BATCH]).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        train_losses.append(float(evaluate(model, digits.val_x, digits.val_y)[0]))
        optimizer.eval()
        eval_losses.append(float(evaluate(model, digits.val_x, digits.val_y)[0]))
    assert result.val_losses == pytest.approx(eval_losses, rel=1e-6)
    assert all(abs(train - scored) > 1e-3 for train, scored in zip(train_losses, result.val_losses))
    for returned, averaged in zip(trained.parameters(), model.parameters()):
        torch.testing.assert_close(returned, averaged)  # train_trial returns the evaluation weights


def test_a_mixed_population_matches_single_trials_in_input_order(digits):
    specs = [
        ScheduleSpec("cosine", 0.1, optimizer={"name": "sgd", "momentum": 0.9}),
        ScheduleSpec("cosine", 0.5, warmup={"fraction": 0.1}, optimizer={"name": "schedulefree_sgd"}),
        ScheduleSpec("cosine", 1.0, optimizer={"name": "prodigy"}),
        ScheduleSpec("constant", 0.003, optimizer={"name": "adamw"}),
        ScheduleSpec("constant", 0.05, optimizer={"name": "sgd", "momentum": 0.9}),
    ]
    seeds = [3, 1, 4, 1, 5]
    calls = []

    def record(member, epoch, score):
        calls.append((member, epoch, score))
        return member in (2, 4)  # prune the one Prodigy member and one stacked with member 0

    results = train_population(specs, "mlp", digits, EPOCHS, BATCH, seeds, data_seed=DATA_SEED, on_epoch=record)
    singles = [train_trial(spec, "mlp", digits, EPOCHS, BATCH, seed, data_seed=DATA_SEED)
               for spec, seed in zip(specs, seeds)]
    for member, (result, single) in enumerate(zip(results, singles, strict=True)):
        pruned = member in (2, 4)
        assert result.status == ("pruned" if pruned else "complete"), member
        assert result.epochs_run == (1 if pruned else EPOCHS)
        torch.testing.assert_close(result.val_scores, single.val_scores[:result.epochs_run], rtol=0, atol=1e-4)
        torch.testing.assert_close(result.val_losses, single.val_losses[:result.epochs_run], rtol=0, atol=1e-4)
    assert sorted((member, epoch) for member, epoch, _ in calls) == sorted(
        [(member, 0) for member in range(5)] + [(member, 1) for member in (0, 1, 3)])
    for member, epoch, score in calls:
        assert score == results[member].val_scores[epoch]
    assert len({tuple(single.val_losses) for single in singles}) == len(specs)  # every member really differs


def test_prodigy_adapts_its_step_size_on_digits(digits):
    spec = ScheduleSpec("constant", 1.0, optimizer={"name": "prodigy"})
    model = build_model("mlp", digits.input_shape, digits.num_classes, 0)
    optimizer = spec.build_optimizer(model.parameters())
    d0 = optimizer.param_groups[0]["d"]
    losses = []
    for start in range(0, digits.train_x.shape[0], BATCH):
        loss = F.cross_entropy(model(digits.train_x[start:start + BATCH]), digits.train_y[start:start + BATCH])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert d0 == 1e-6
    assert optimizer.param_groups[0]["d"] > 1000 * d0  # measured: about 5e-3 after this one epoch
    assert losses[-1] < losses[0] / 2


@pytest.mark.parametrize("name", ["schedulefree_sgd", "prodigy"])
def test_the_range_test_sweeps_package_optimizers(digits, name):
    result = builtin_range_test("mlp", digits, method="sweep", num_steps=40, batch_size=BATCH,
                                optimizer={"name": name}, check=False)
    assert len(result.lrs) == len(result.losses) >= 10
    assert result.interval[0] < result.suggestion < result.interval[1]
