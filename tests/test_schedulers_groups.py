"""spec.build with several parameter groups against torch's own schedulers: each group keeps its LR ratio."""

import io

import pytest
import torch

from autolr.schedule.schedulers import build
from autolr.schedule.spec import ScheduleSpec, steps_for

GROUP_LRS = (0.01, 0.1)  # a backbone at a tenth of the head's LR
TOTAL_STEPS = 60
RESUME_AT = 23


def two_groups(lrs: tuple[float, ...] = GROUP_LRS) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs],
                           lr=1.0, momentum=0.9)


def weights_only_roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def lrs_of(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


# spec (peak LR 0.1 = the head's) and torch's scheduler with each group's own LR, over TOTAL_STEPS steps.
TWINS = {
    "cosine": (ScheduleSpec("cosine", 0.1),
               lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL_STEPS)),
    "step": (ScheduleSpec("step", 0.1, {"step_size": 0.25, "gamma": 0.5}),
             lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=steps_for(0.25, TOTAL_STEPS), gamma=0.5)),
    "linear": (ScheduleSpec("linear", 0.1, {"start_factor": 0.2, "end_factor": 0.05, "duration": 0.8}),
               lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, end_factor=0.05,
                                                             total_iters=steps_for(0.8, TOTAL_STEPS))),
    "exponential": (ScheduleSpec("exponential", 0.1, {"final_factor": 0.01}),
                    lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / TOTAL_STEPS))),
    "onecycle": (ScheduleSpec("onecycle", 0.1),
                 lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=list(GROUP_LRS), total_steps=TOTAL_STEPS)),
    "cyclic": (ScheduleSpec("cyclic", 0.1, {"base_factor": 0.1, "step_size_up": 0.2}),
               lambda opt: torch.optim.lr_scheduler.CyclicLR(
                   opt, base_lr=[0.1 * lr for lr in GROUP_LRS], max_lr=list(GROUP_LRS),
                   step_size_up=steps_for(0.2, TOTAL_STEPS))),
}


@pytest.mark.parametrize("family", sorted(TWINS))
def test_groups_follow_torch_with_their_own_lrs_across_a_save_and_restore(family):
    spec, torch_scheduler = TWINS[family]
    ours_optimizer, torch_optimizer = two_groups(), two_groups()
    ours, theirs = spec.build(ours_optimizer, TOTAL_STEPS), torch_scheduler(torch_optimizer)
    for step in range(TOTAL_STEPS):
        if step == RESUME_AT:  # a new process: fresh optimizer and scheduler, both states loaded back
            optimizer_state = weights_only_roundtrip(ours_optimizer.state_dict())
            scheduler_state = weights_only_roundtrip(ours.state_dict())
            ours_optimizer = two_groups((1.0, 1.0))  # the saved state, not these LRs, must decide
            ours = build(spec, ours_optimizer, TOTAL_STEPS)
            ours_optimizer.load_state_dict(optimizer_state)
            ours.load_state_dict(scheduler_state)
        assert lrs_of(ours_optimizer) == pytest.approx(lrs_of(torch_optimizer), rel=1e-10), step
        assert ours_optimizer.param_groups[1]["lr"] == spec.lr_at(step, TOTAL_STEPS)  # the group made at spec.lr
        assert [group["momentum"] for group in ours_optimizer.param_groups] == pytest.approx(
            [group["momentum"] for group in torch_optimizer.param_groups], rel=1e-10), step
        ours_optimizer.step()
        torch_optimizer.step()
        ours.step()
        theirs.step()


def test_the_issue_example_matches_cosine_annealing():
    """SGD with groups at 0.01 and 0.1, a cosine spec at 0.1 over 10 steps: [0.005, 0.05] after 5."""
    optimizer = two_groups()
    scheduler = ScheduleSpec("cosine", 0.1).build(optimizer, 10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert lrs_of(optimizer) == pytest.approx([0.005, 0.05], rel=1e-12)


def test_plateau_reduces_each_group_from_its_own_lr_with_its_own_floor():
    params = {"factor": 0.5, "patience": 1, "min_factor": 0.2}
    spec = ScheduleSpec("plateau", 0.1, params, warmup={"fraction": 0.1, "start_factor": 0.5})
    ours_optimizer, torch_optimizer = two_groups(), two_groups()
    ours = spec.build(ours_optimizer, 20)  # 2 warmup steps: half of each group's LR, then 3/4
    assert lrs_of(ours_optimizer) == pytest.approx([0.005, 0.05])
    for metric in (9.0, 9.0):
        ours.step(metric)
    assert lrs_of(ours_optimizer) == pytest.approx([0.01, 0.1])
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_optimizer, factor=0.5, patience=1,
                                                        min_lr=[0.2 * lr for lr in GROUP_LRS])
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    for index, metric in enumerate(metrics):
        if index == 6:
            state = weights_only_roundtrip(ours.state_dict())
            saved_lrs = lrs_of(ours_optimizer)
            ours_optimizer = two_groups()
            ours = build(spec, ours_optimizer, 20)
            for group, lr in zip(ours_optimizer.param_groups, saved_lrs):  # what optimizer.load_state_dict restores
                group["lr"] = lr
            ours.load_state_dict(state)
        ours.step(metric)
        theirs.step(metric)
        assert lrs_of(ours_optimizer) == lrs_of(torch_optimizer), index
    assert lrs_of(ours_optimizer) == pytest.approx([0.002, 0.02])  # both at their own floor, 0.2x


def test_a_second_schedule_scales_the_groups_first_lrs():
    """initial_lr is set once (setdefault), as torch's schedulers do: a scheduler built later on the
    same optimizer scales the groups' first LRs, like torch's closed forms, not the decayed ones."""
    optimizer = two_groups()
    first = ScheduleSpec("cosine", 0.1).build(optimizer, 10)
    for _ in range(5):
        optimizer.step()
        first.step()
    assert lrs_of(optimizer) == pytest.approx([0.005, 0.05])
    spec = ScheduleSpec("step", 0.1, {"step_size": 0.5, "gamma": 0.1})
    second = spec.build(optimizer, 10)
    assert [group["initial_lr"] for group in optimizer.param_groups] == list(GROUP_LRS)
    torch_closed_form = torch.optim.lr_scheduler.StepLR(two_groups(), step_size=5, gamma=0.1)
    for step in range(10):
        torch_closed_form.last_epoch = step
        assert lrs_of(optimizer) == pytest.approx(torch_closed_form._get_closed_form_lr(), rel=1e-12), step
        optimizer.step()
        second.step()
