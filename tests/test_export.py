"""Exports: every family through every format, and the emitted Python equal to spec.lr_at."""

import ast
import types
import zlib

import pytest
import torch

from autolr.errors import UserError
from autolr.schedule.export import EXPORT_FORMATS, export, to_python
from autolr.schedule.spec import FAMILIES, ScheduleSpec

# Non-default parameters for every family, so exports carry real values (defaults are tested too).
PARAMS = {
    "constant": {},
    "step": {"step_size": 0.15, "gamma": 0.7},
    "multistep": {"milestones": [0.3, 0.6, 0.85], "gamma": 0.25},
    "exponential": {"final_factor": 0.003},
    "inverse_time": {"decay_rate": 3.5},
    "polynomial": {"power": 2.5},
    "linear": {"start_factor": 0.9, "end_factor": 0.0, "duration": 0.7},
    "cosine": {"min_factor": 0.05},
    "cosine_restarts": {"first_cycle": 0.1, "cycle_mult": 2, "min_factor": 0.01},
    "cyclic": {"base_factor": 0.2, "step_size_up": 0.07, "mode": "exp_range", "final_scale": 0.3},
    "onecycle": {"pct_start": 0.2, "anneal_strategy": "linear", "three_phase": True, "div_factor": 10.0},
    "plateau": {"factor": 0.5, "patience": 3, "mode": "max"},
    "inverse_sqrt": {"timescale": 0.05},
    "wsd": {"decay_fraction": 0.3, "decay_shape": "sqrt", "min_factor": 0.02},
}
VARIANTS = {  # the other branches of the Python export
    "cyclic": [{"mode": "triangular"}, {"mode": "triangular2"}],
    "onecycle": [{"anneal_strategy": "cos", "three_phase": False}],
    "cosine_restarts": [{"cycle_mult": 1}],
    "wsd": [{"decay_shape": "linear"}, {"decay_shape": "cosine"}],
}


def all_specs() -> list[ScheduleSpec]:
    specs = []
    for family in FAMILIES:
        for params in [PARAMS[family], {}, *({**PARAMS[family], **v} for v in VARIANTS.get(family, []))]:
            specs.append(ScheduleSpec(family, 0.07, params))
            specs.append(ScheduleSpec(family, 0.07, params, warmup={"fraction": 0.08, "start_factor": 0.1},
                                      optimizer={"name": "adam", "betas": [0.9, 0.95]},
                                      provenance={"study": "s", "score": 0.9, "trial": 3}))
    return specs


SPECS = all_specs()


def spec_id(spec: ScheduleSpec) -> str:
    """The same id in every process (pytest-xdist's workers must collect the same tests)."""
    return f"{spec.family}-{'warmup' if spec.warmup else 'plain'}-{zlib.crc32(repr(spec.params).encode()) % 1000}"


@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_python_export_reproduces_lr_at(spec):
    source = to_python(spec)
    module = ast.parse(source)
    imports = [node for node in ast.walk(module) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(alias.name == "math" for node in imports for alias in node.names)  # dependency-free
    namespace: dict = {}
    exec(compile(source, "<export>", "exec"), namespace)
    for total_steps in (1, 2, 7, 100, 997):
        steps = range(total_steps + 3) if total_steps < 1000 else range(0, total_steps + 3, 7)
        for step in steps:
            assert namespace["lr_at"](step, total_steps) == pytest.approx(spec.lr_at(step, total_steps),
                                                                          rel=1e-12, abs=1e-18), (total_steps, step)


def test_python_export_reads_like_get_lr():
    source = to_python(ScheduleSpec("cosine", 6e-4, {"min_factor": 0.1}, warmup={"fraction": 0.02}))
    assert source == '''"""The learning-rate schedule cosine (lr 0.0006), exported by autolr."""

import math


def lr_at(step, total_steps):
    """LR for the step after `step` scheduler steps (0 = first) of a `total_steps`-step run."""
    warmup_steps = min(max(1, round(0.02 * total_steps)), total_steps - 1)
    if step < warmup_steps:  # linear warmup
        return 0.0006 * (0.0 + (1 - 0.0) * step / warmup_steps)
    step, total_steps = step - warmup_steps, total_steps - warmup_steps  # the rest of the run
    step = min(step, total_steps)  # past the end the LR stays
    min_lr = 0.1 * 0.0006
    return min_lr + (0.0006 - min_lr) * (1 + math.cos(math.pi * step / total_steps)) / 2
'''


@pytest.mark.parametrize("export_format", ["json", "yaml", "toml"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_family_round_trips_through_every_file_format(spec, export_format):
    assert ScheduleSpec.from_text(export(spec, export_format), export_format) == spec


@pytest.mark.parametrize("family", FAMILIES)
def test_lightning_export_returns_the_configure_optimizers_dict(family):
    spec = ScheduleSpec(family, 0.05, PARAMS[family], optimizer={"name": "sgd", "momentum": 0.9})
    namespace: dict = {}
    exec(compile(export(spec, "lightning"), "<lightning>", "exec"), namespace)
    assert namespace["SPEC"] == spec
    model = torch.nn.Linear(3, 1)
    # What configure_optimizers uses of a LightningModule: parameters() and the trainer's step count.
    module = types.SimpleNamespace(parameters=model.parameters, trainer=types.SimpleNamespace(
        estimated_stepping_batches=40, max_epochs=40))
    config = namespace["configure_optimizers"](module)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["momentum"] in (0.9, spec.momentum_at(0, 40))
    assert config["lr_scheduler"]["interval"] == ("epoch" if family == "plateau" else "step")
    assert config["lr_scheduler"]["frequency"] == 1
    assert ("monitor" in config["lr_scheduler"]) == (family == "plateau")
    for step in range(40):
        assert optimizer.param_groups[0]["lr"] == spec.lr_at(step, 40)
        optimizer.step()
        scheduler.step(float(step)) if family == "plateau" else scheduler.step()  # mode max: improving


def test_lightning_plateau_export_reduces_the_lr_as_torch_does_when_the_metric_stalls():
    """The exported plateau schedule stepped with a validation accuracy that improves, stalls, improves once
    and stalls again gives, epoch by epoch, the LRs of torch's own ReduceLROnPlateau on the same metrics."""
    params = {"factor": 0.5, "patience": 3, "mode": "max", "cooldown": 1, "min_factor": 0.1}
    spec = ScheduleSpec("plateau", 0.05, params, optimizer={"name": "sgd", "momentum": 0.9})
    namespace: dict = {}
    exec(compile(export(spec, "lightning"), "<lightning>", "exec"), namespace)
    model = torch.nn.Linear(3, 1)
    module = types.SimpleNamespace(parameters=model.parameters, trainer=types.SimpleNamespace(
        estimated_stepping_batches=40, max_epochs=40))
    config = namespace["configure_optimizers"](module)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    twin_optimizer = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.05, momentum=0.9)
    twin = torch.optim.lr_scheduler.ReduceLROnPlateau(twin_optimizer, mode="max", factor=0.5, patience=3,
                                                      threshold=1e-4, threshold_mode="rel", cooldown=1, min_lr=0.005)
    metrics = [0.5, 0.6, 0.7, 0.8] + [0.8] * 12 + [0.85] + [0.85] * 15
    exported, torch_lrs = [], []
    for metric in metrics:
        optimizer.step()
        twin_optimizer.step()
        scheduler.step(metric)
        twin.step(metric)
        exported.append(optimizer.param_groups[0]["lr"])
        torch_lrs.append(twin_optimizer.param_groups[0]["lr"])
    assert exported == pytest.approx(torch_lrs, rel=1e-12)
    assert exported[3] == 0.05 and exported[7] == pytest.approx(0.025)  # 4 stalled epochs (patience 3): halved
    assert exported[-1] == pytest.approx(0.005) and len(set(exported)) >= 4  # halved again and again, to the floor


def test_unknown_export_format():
    with pytest.raises(UserError, match="export format must be one of json, yaml, toml, python, lightning"):
        export(ScheduleSpec("cosine", 0.1), "csv")
    assert set(EXPORT_FORMATS) == {"json", "yaml", "toml", "python", "lightning"}


PACKAGE_OPTIMIZERS = {  # the optimizers a package other than torch provides, with non-default settings
    "schedulefree_sgd": ({"name": "schedulefree_sgd", "momentum": 0.8, "weight_decay": 1e-4}, "schedulefree"),
    "schedulefree_adamw": ({"name": "schedulefree_adamw", "betas": [0.95, 0.99], "eps": 1e-7, "weight_decay": 0.01},
                           "schedulefree"),
    "prodigy": ({"name": "prodigy", "betas": [0.8, 0.99], "d_coef": 0.5, "safeguard_warmup": True,
                 "use_bias_correction": True}, "prodigyopt"),
}


def assert_same_optimizer(built, expected):
    assert type(built) is type(expected)
    assert built.defaults == expected.defaults


@pytest.mark.parametrize("name", PACKAGE_OPTIMIZERS)
def test_python_export_constructs_a_package_optimizer(name):
    settings, package = PACKAGE_OPTIMIZERS[name]
    spec = ScheduleSpec("cosine", 0.3, warmup={"fraction": 0.1}, optimizer=settings)
    source = to_python(spec)
    imports = [alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for alias in node.names]
    assert imports == ["math", package]
    namespace: dict = {}
    exec(compile(source, "<export>", "exec"), namespace)
    model = torch.nn.Linear(3, 2)
    assert_same_optimizer(namespace["make_optimizer"](model.parameters()), spec.build_optimizer(model.parameters()))
    assert ("optimizer.train()" in source) == name.startswith("schedulefree")
    assert [namespace["lr_at"](step, 50) for step in range(50)] == [spec.lr_at(step, 50) for step in range(50)]


def test_python_export_of_a_torch_optimizer_stays_dependency_free():
    source = to_python(ScheduleSpec("constant", 0.1, optimizer={"name": "adamw"}))
    assert "import" not in source and "make_optimizer" not in source


@pytest.mark.parametrize("name", PACKAGE_OPTIMIZERS)
def test_lightning_export_constructs_a_package_optimizer_and_switches_schedule_free_modes(name):
    settings, package = PACKAGE_OPTIMIZERS[name]
    spec = ScheduleSpec("cosine", 0.3, optimizer=settings)
    source = export(spec, "lightning")
    assert f"import {package}\n" in source
    namespace: dict = {}
    exec(compile(source, "<lightning>", "exec"), namespace)
    model = torch.nn.Linear(3, 2)
    built: list = []
    module = types.SimpleNamespace(parameters=model.parameters, optimizers=lambda use_pl_optimizer=True: built[0],
                                   trainer=types.SimpleNamespace(estimated_stepping_batches=20, max_epochs=20))
    config = namespace["configure_optimizers"](module)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    built.append(optimizer)
    assert_same_optimizer(optimizer, spec.build_optimizer(torch.nn.Linear(3, 2).parameters()))
    schedule_free = name.startswith("schedulefree")
    assert ("on_train_batch_start" in namespace) == schedule_free
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    for step in range(20):
        if schedule_free:
            namespace["on_train_batch_start"](module, (x, y), step)
        assert optimizer.param_groups[0]["lr"] == spec.lr_at(step, 20)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    if schedule_free:
        training_weights = model.weight.detach().clone()
        namespace["on_train_end"](module)
        assert not optimizer.param_groups[0]["train_mode"]
        assert not torch.equal(model.weight, training_weights)  # the averaged weights replaced the training ones
