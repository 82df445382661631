"""spec.build and spec.lr_at against torch's own schedulers, step by step, with save/restore mid-run."""

import io
import math
import pickle
import sys

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autolr.errors import SpecError, UserError
from autolr.schedule.schedulers import TORCH_FAMILIES, build, lightning_config, torch_equivalent
from autolr.schedule.spec import ScheduleSpec

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unit(low: float = 0.0, high: float = 1.0, **kwargs) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, **kwargs)


@st.composite
def momentum_pair(draw) -> dict:
    low, high = sorted([draw(unit(0.0, 0.99)), draw(unit(0.0, 0.99))])
    return {"cycle_momentum": draw(st.booleans()), "base_momentum": low, "max_momentum": high}


@st.composite
def milestones(draw) -> list[float]:
    values = draw(st.lists(unit(0.001, 0.999), min_size=1, max_size=4, unique=True))
    return sorted(values)


# Valid parameters of every family torch has, drawn over (most of) their documented ranges.
TORCH_PARAMS = {
    "constant": st.just({}),
    "step": st.fixed_dictionaries({"step_size": unit(0.0005, 1.0), "gamma": unit(0.01, 1.0)}),
    "multistep": st.fixed_dictionaries({"milestones": milestones(), "gamma": unit(0.01, 1.0)}),
    "exponential": st.fixed_dictionaries({"final_factor": unit(1e-6, 1.0)}),
    "polynomial": st.fixed_dictionaries({"power": unit(0.05, 8.0)}),
    "linear": st.fixed_dictionaries({"start_factor": unit(0.01, 1.0), "end_factor": st.one_of(st.just(0.0), unit(0.0, 1.0)),
                                     "duration": unit(0.0005, 1.0)}),
    "cosine": st.fixed_dictionaries({"min_factor": unit(0.0, 0.99)}),
    "cosine_restarts": st.fixed_dictionaries({"first_cycle": unit(0.0005, 1.0), "cycle_mult": st.integers(1, 4),
                                              "min_factor": unit(0.0, 0.99)}),
    "cyclic": st.tuples(st.fixed_dictionaries({
        "base_factor": unit(0.001, 0.999), "step_size_up": unit(0.0005, 0.5),
        "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]), "final_scale": unit(0.01, 1.0),
    }), momentum_pair()).map(lambda pair: {**pair[0], **pair[1]}),
    "onecycle": st.tuples(st.fixed_dictionaries({
        "pct_start": unit(0.01, 0.99), "anneal_strategy": st.sampled_from(["cos", "linear"]),
        "div_factor": unit(1.0, 1000.0), "final_div_factor": unit(1.0, 1e5), "three_phase": st.booleans(),
    }), momentum_pair()).map(lambda pair: {**pair[0], **pair[1]}),
}
LENGTHS = st.one_of(st.integers(1, 300), st.integers(300, 10_000))


def close(value: float, expected: float, peak: float) -> bool:
    """Equal to 1e-10 relative, give or take torch's own rounding of 1e-15 of the peak LR.

    torch's chainable LinearLR multiplies by factors computed with cancellation and leaves
    ~3e-16 of the peak (measured) where the exact LR is 0, or 1.7e-18 on an exact 1e-8 of
    a peak of 1: an absolute error relative to the peak, which no closed form can match
    to 1e-10 *relative* once the LR is tiny. Elsewhere the absolute term is negligible.
    LRs that underflow below float64's normal range (e.g. step with gamma 0.01 decayed 158
    times gives 2e-316) carry fewer than 53 bits, so both sides being subnormal is equal.
    """
    if abs(value) < sys.float_info.min and abs(expected) < sys.float_info.min:
        return True
    return abs(value - expected) <= 1e-10 * abs(expected) + 1e-15 * peak


def new_optimizer(kind: str = "sgd", groups: int = 1, lr: float = 1.0) -> torch.optim.Optimizer:
    """An optimizer whose groups are all created with ``lr`` (a spec's peak LR: spec.build then gives lr_at)."""
    parameters = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(groups)]
    if kind == "adam":
        optimizer = torch.optim.Adam(parameters, lr=lr)
    else:
        optimizer = torch.optim.SGD(parameters, lr=lr, momentum=0.5)
    return optimizer


def weights_only_roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def momentum_of(optimizer: torch.optim.Optimizer) -> float:
    group = optimizer.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def onecycle_has_empty_phase(params: dict, total_steps: int) -> bool:
    """torch's OneCycleLR divides by zero when a phase has zero length (e.g. pct_start * total_steps == 1)."""
    pct = params.get("pct_start", 0.3)
    ends = [float(pct * total_steps) - 1] + ([float(2 * pct * total_steps) - 2] if params.get("three_phase") else [])
    ends.append(total_steps - 1)
    starts = [0.0] + ends[:-1]
    return any(end == start for start, end in zip(starts, ends))


def check_against_torch(family: str, params: dict, lr: float, total_steps: int, resume_at: int, kind: str) -> None:
    spec = ScheduleSpec(family, lr, params)
    ours_optimizer, torch_optimizer = new_optimizer(kind, lr=lr), new_optimizer(kind)
    ours, theirs = spec.build(ours_optimizer, total_steps), torch_equivalent(spec, torch_optimizer, total_steps)
    cycles_momentum = spec.momentum_at(0, total_steps) is not None
    for step in range(total_steps + 1):
        if step == resume_at:  # a new process: fresh optimizer and scheduler, state loaded back
            optimizer_state = weights_only_roundtrip(ours_optimizer.state_dict())
            scheduler_state = weights_only_roundtrip(ours.state_dict())
            ours_optimizer = new_optimizer(kind, lr=lr)
            ours = build(spec, ours_optimizer, total_steps)
            ours_optimizer.load_state_dict(optimizer_state)
            ours.load_state_dict(scheduler_state)
        expected = torch_optimizer.param_groups[0]["lr"]
        if family == "onecycle" and step == total_steps:
            # torch's OneCycleLR extrapolates its last phase one step past its end (linear
            # anneal goes negative); that LR is never used by an optimizer step of a run of
            # total_steps steps. Ours holds the final value (test_spec checks it).
            break
        assert close(ours_optimizer.param_groups[0]["lr"], expected, lr), (step, ours_optimizer.param_groups[0]["lr"], expected)
        assert close(spec.lr_at(step, total_steps), expected, lr), (step, spec.lr_at(step, total_steps), expected)
        if cycles_momentum:
            assert close(momentum_of(ours_optimizer), momentum_of(torch_optimizer), 1.0), step
            assert close(spec.momentum_at(step, total_steps), momentum_of(torch_optimizer), 1.0), step
        if step < total_steps:
            if step in (0, resume_at):  # torch checks the call order on a scheduler's first step only
                ours_optimizer.step()
                torch_optimizer.step()
            ours.step()
            theirs.step()


@pytest.mark.parametrize("family", [f for f in TORCH_FAMILIES if f != "plateau"])
def test_matches_torch_at_every_step_with_resume(family):
    @PROPERTY
    @given(params=TORCH_PARAMS[family], lr=st.floats(1e-5, 10.0), total_steps=LENGTHS,
           resume=st.floats(0.0, 1.0), kind=st.sampled_from(["sgd", "adam"]))
    def check(params, lr, total_steps, resume, kind):
        if family == "onecycle":
            assume(not onecycle_has_empty_phase(params, total_steps))
        check_against_torch(family, params, lr, total_steps, round(resume * total_steps), kind)

    check()


@PROPERTY
@given(params=st.fixed_dictionaries({
    "factor": unit(0.01, 0.99), "patience": st.integers(0, 5), "threshold": unit(0.0, 0.1),
    "threshold_mode": st.sampled_from(["rel", "abs"]), "cooldown": st.integers(0, 3), "min_factor": unit(0.0, 0.5),
    "mode": st.sampled_from(["min", "max"])}),
    metrics=st.lists(st.integers(0, 6).map(float), min_size=1, max_size=200), resume=st.floats(0.0, 1.0))
def test_plateau_matches_reduce_lr_on_plateau(params, metrics, resume):
    spec = ScheduleSpec("plateau", 0.1, params)
    ours_optimizer, torch_optimizer = new_optimizer(lr=0.1), new_optimizer()
    ours, theirs = spec.build(ours_optimizer, 1000), torch_equivalent(spec, torch_optimizer, 1000)
    assert isinstance(ours, torch.optim.lr_scheduler.ReduceLROnPlateau)
    resume_at = round(resume * len(metrics))
    for index, metric in enumerate(metrics):
        if index == resume_at:
            state = weights_only_roundtrip(ours.state_dict())
            ours_optimizer = new_optimizer(lr=0.1)
            ours = build(spec, ours_optimizer, 1000)
            ours_optimizer.param_groups[0]["lr"] = torch_optimizer.param_groups[0]["lr"]  # optimizer state
            ours.load_state_dict(state)
        ours_optimizer.step()
        torch_optimizer.step()
        ours.step(metric)
        theirs.step(metric)
        assert ours_optimizer.param_groups[0]["lr"] == torch_optimizer.param_groups[0]["lr"], index
        assert ours.get_last_lr() == theirs.get_last_lr()


def test_plateau_warms_up_then_reacts_to_the_metric():
    spec = ScheduleSpec("plateau", 0.1, {"patience": 1, "factor": 0.5}, warmup={"fraction": 0.1, "start_factor": 0.2})
    optimizer, reference_optimizer = new_optimizer(lr=0.1), new_optimizer()
    scheduler = spec.build(optimizer, 40)  # 4 warmup steps
    lrs = [optimizer.param_groups[0]["lr"]]
    for metric in [9.0, 9.0, 9.0, 9.0]:  # flat metrics during warmup are ignored
        scheduler.step(metric)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1], rel=1e-12)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(reference_optimizer, factor=0.5, patience=1)
    reference_optimizer.param_groups[0]["lr"] = 0.1
    for metric in [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0]:
        scheduler.step(metric)
        reference.step(metric)
        assert optimizer.param_groups[0]["lr"] == reference_optimizer.param_groups[0]["lr"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)  # two reductions happened


@pytest.mark.parametrize("family", ["inverse_time", "inverse_sqrt", "wsd"])
def test_scheduler_without_torch_twin_follows_lr_at_with_warmup_and_resume(family):
    spec = ScheduleSpec(family, 0.2, warmup={"fraction": 0.05, "start_factor": 0.1})
    optimizer = new_optimizer(groups=2, lr=0.2)
    scheduler = spec.build(optimizer, 500)
    for step in range(501):
        if step == 250:
            optimizer_state = weights_only_roundtrip(optimizer.state_dict())
            state = weights_only_roundtrip(scheduler.state_dict())
            optimizer = new_optimizer(groups=2, lr=0.2)
            scheduler = build(spec, optimizer, 500)
            optimizer.load_state_dict(optimizer_state)
            scheduler.load_state_dict(state)
        assert [group["lr"] for group in optimizer.param_groups] == [spec.lr_at(step, 500)] * 2
        optimizer.step()
        scheduler.step()
    with pytest.raises(SpecError, match="has no torch scheduler"):
        torch_equivalent(spec, new_optimizer(), 500)


def test_warmup_has_no_single_torch_scheduler():
    with pytest.raises(SpecError, match="warmup"):
        torch_equivalent(ScheduleSpec("cosine", 0.1, warmup={"fraction": 0.1}), new_optimizer(), 100)


@pytest.mark.parametrize("family", sorted(set(TORCH_FAMILIES) | {"inverse_time", "inverse_sqrt", "wsd"}))
def test_built_scheduler_pickles_and_its_state_loads_weights_only(family):
    spec = ScheduleSpec(family, 0.1, warmup=None if family in ("onecycle", "cyclic") else {"fraction": 0.1})
    optimizer = new_optimizer()
    scheduler = spec.build(optimizer, 100)
    for _ in range(37):
        optimizer.step()
        scheduler.step(1.0) if family == "plateau" else scheduler.step()
    clone = pickle.loads(pickle.dumps(scheduler))
    assert clone.get_last_lr() == scheduler.get_last_lr()
    assert clone.spec == spec
    state = weights_only_roundtrip(scheduler.state_dict())
    assert state["last_epoch"] == 37
    assert state["spec"] == spec.to_dict()


def test_loading_state_of_another_schedule_is_refused():
    state = ScheduleSpec("cosine", 0.1).build(new_optimizer(), 100).state_dict()
    with pytest.raises(UserError, match="different schedule"):
        ScheduleSpec("cosine", 0.2).build(new_optimizer(), 100).load_state_dict(state)


def test_momentum_cycling_sets_adam_beta1_and_keeps_beta2():
    spec = ScheduleSpec("onecycle", 0.1)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0, betas=(0.9, 0.98))
    scheduler = spec.build(optimizer, 100)
    for step in range(1, 100):
        optimizer.step()
        scheduler.step()
        assert optimizer.param_groups[0]["betas"] == (spec.momentum_at(step, 100), 0.98)
    assert spec.momentum_at(30, 100) < spec.momentum_at(0, 100)  # lowest momentum at the LR peak


def test_momentum_cycling_needs_momentum_or_betas():
    optimizer = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(SpecError, match="cycle_momentum"):
        ScheduleSpec("cyclic", 0.1).build(optimizer, 100)
    ScheduleSpec("cyclic", 0.1, {"cycle_momentum": False}).build(optimizer, 100)


def test_build_optimizer_uses_spec_settings():
    parameters = [torch.nn.Parameter(torch.zeros(1))]
    sgd = ScheduleSpec("cosine", 0.3, optimizer={"name": "sgd", "momentum": 0.9, "nesterov": True,
                                                   "weight_decay": 5e-4}).build_optimizer(parameters)
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.param_groups[0]["lr"], sgd.param_groups[0]["momentum"], sgd.param_groups[0]["nesterov"],
            sgd.param_groups[0]["weight_decay"]) == (0.3, 0.9, True, 5e-4)
    adamw = ScheduleSpec("cosine", 1e-3, optimizer={"name": "adamw", "betas": [0.8, 0.99]}).build_optimizer(parameters)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["betas"] == (0.8, 0.99) and adamw.param_groups[0]["weight_decay"] == 0.01
    default = ScheduleSpec("constant", 0.1).build_optimizer(parameters)
    assert isinstance(default, torch.optim.SGD) and default.param_groups[0]["momentum"] == 0.9
    assert ScheduleSpec("constant", 0.1).optimizer_settings() == {"name": "sgd", "momentum": 0.9, "nesterov": False,
                                                                  "weight_decay": 0.0}


def test_lightning_config():
    spec = ScheduleSpec("plateau", 0.1)
    optimizer = new_optimizer()
    config = lightning_config(spec, optimizer, 50, interval="epoch", monitor="val_accuracy")
    assert config["optimizer"] is optimizer
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert {k: v for k, v in config["lr_scheduler"].items() if k != "scheduler"} == {
        "interval": "epoch", "frequency": 1, "monitor": "val_accuracy"}
    step_config = lightning_config(ScheduleSpec("cosine", 0.1), new_optimizer(), 50)
    assert step_config["lr_scheduler"]["interval"] == "step" and "monitor" not in step_config["lr_scheduler"]
    with pytest.raises(UserError, match="interval"):
        lightning_config(spec, optimizer, 50, interval="batch")


def test_real_training_loop_uses_the_schedule():
    """A model trained with the built scheduler sees exactly lr_at at every optimizer step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    spec = ScheduleSpec("wsd", 0.05, {"decay_shape": "sqrt"}, warmup={"fraction": 0.1},
                        optimizer={"name": "sgd", "momentum": 0.9})
    optimizer = spec.build_optimizer(model.parameters())
    scheduler = spec.build(optimizer, 30)
    inputs, targets = torch.randn(64, 4), torch.randn(64, 1)
    seen = []
    for _ in range(30):
        seen.append(optimizer.param_groups[0]["lr"])
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert seen == [spec.lr_at(step, 30) for step in range(30)]
    assert not math.isnan(loss.item())
