"""The population check after a sweep: its best LR, at and below the sweep's loss minimum, is the suggestion."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autolr.bench.least_squares import least_squares
from autolr.errors import UserError
from autolr.rangetest.check import ALL_DIVERGED, CHECK_LRS, CHECK_SPAN, check_best, check_spread, with_check
from autolr.rangetest.confidence import NEVER_ROSE, NO_DESCENT
from autolr.rangetest.plot import TITLE_WIDTH, _title
from autolr.rangetest.range_test import RangeTestResult, lr_range_test


def _sweep(suggestion: float, loss_min: float) -> RangeTestResult:
    return RangeTestResult(lrs=[0.01, 0.1, 1.0], losses=[1.0, 0.5, 2.0], smoothed_losses=[1.0, 0.5, 2.0],
                           stopped_at=3, stop_reason="completed",
                           suggestions={"loss_min": loss_min, "steepest": 0.05}, suggestion=suggestion,
                           interval=(suggestion / 10, loss_min), suggestion_spread=(0.6 * suggestion, 1.5 * suggestion))


def test_the_checks_best_lr_is_the_suggestion_lowered_or_raised_from_the_sweeps() -> None:
    lrs = [0.4 / 2 ** k for k in range(6, -1, -1)]  # 0.00625 .. 0.4, 2x apart
    cliff = [2.0, 1.5, 1.0, 0.6, 0.5, 0.9, math.nan]  # best at 0.1 (neighbours 0.05, 0.2), diverged at 0.4
    lowered = with_check(_sweep(0.3, 0.4), lrs, cliff, num_steps=100)
    best = lowered.suggestions["check"]
    assert 0.05 < best < 0.1 and lowered.suggestion == best  # the parabola's vertex, left of the 0.1 point
    assert lowered.interval == (best / 10, 0.4)  # up to the loss minimum (more than 3x above)
    # only the best run is within 5% of its loss: (best, 0.1), less than the grid's 2x, widened to one step
    assert lowered.suggestion_spread == pytest.approx(one_step(best, 0.1))
    assert lowered.settings["check"] == {"lrs": lrs, "losses": cliff[:-1] + [None], "num_steps": 100,
                                         "sweep_suggestion": 0.3}
    assert lowered.suggestions["steepest"] == 0.05  # the other rules untouched
    raised = with_check(_sweep(0.02, 0.4), lrs, cliff, num_steps=100)
    assert raised.suggestion == best and raised.settings["check"]["sweep_suggestion"] == 0.02
    rising = [2.0, 1.5, 1.0, 0.6, 0.5, 0.45, 0.4]  # the best run is the highest LR: the vertex may not pass it
    assert with_check(_sweep(1.0, 0.4), lrs, rising, num_steps=100).suggestion == 0.4
    edge = [2.0, 1.5, 1.0, 0.6, 0.5, 1.2, math.nan]  # the next LR up more than doubles the loss: half the best run
    assert with_check(_sweep(0.3, 0.4), lrs, edge, num_steps=100).suggestion == 0.05
    assert with_check(_sweep(0.3, 0.4), lrs, rising[:5] + [0.3, math.nan], num_steps=100).suggestion == 0.1


def test_when_every_check_run_diverged_the_suggestion_is_half_its_lowest_lr_with_a_warning() -> None:
    lrs = [0.4 / 2 ** k for k in range(6, -1, -1)]  # 0.00625 .. 0.4
    result = with_check(_sweep(0.3, 0.4), lrs, [math.nan] * CHECK_LRS, num_steps=100)
    assert result.suggestion == result.suggestions["check"] == 0.003125
    assert result.suggestion_spread == pytest.approx(one_step(0.003125, 0.003125))  # not zero width
    assert result.interval == (0.0003125, 0.03125)  # search_interval: at most 10x the suggestion
    assert result.warnings == [ALL_DIVERGED]
    assert result.settings["check"]["losses"] == [None] * CHECK_LRS
    assert check_best(lrs, [math.nan] * CHECK_LRS) == 0.003125  # the rule itself, as the bench calls it


def test_a_check_that_learned_drops_the_sweeps_no_descent_warning_and_one_that_did_not_keeps_it() -> None:
    lrs = [0.4 / 2 ** k for k in range(6, -1, -1)]
    flat = _sweep(0.3, 0.4)
    flat.smoothed_losses = [2.3] * 10 + [2.25] * 10  # read from step 2 (after 10%): 2.3, at best 2% lower
    flat.warnings = [NO_DESCENT, NEVER_ROSE]
    learned = with_check(flat, lrs, [2.2, 1.5, 0.9, 0.4, 0.3, 0.35, math.nan], num_steps=100)
    assert learned.warnings == [NEVER_ROSE]
    barely = [2.2, 2.1, 2.08, 2.06, 2.08, 2.2, math.nan]  # the best, 2.06, is 10.4% below 2.3: a clear descent
    assert with_check(flat, lrs, barely, num_steps=100).warnings == [NEVER_ROSE]
    stalled = [2.2, 2.1, 2.09, 2.08, 2.09, 2.2, math.nan]  # 2.08 is 9.6% below: still no clear descent
    assert with_check(flat, lrs, stalled, num_steps=100).warnings == [NO_DESCENT, NEVER_ROSE]
    assert with_check(flat, lrs, [math.nan] * CHECK_LRS, num_steps=100).warnings == [NO_DESCENT, NEVER_ROSE,
                                                                                       ALL_DIVERGED]


def test_the_plots_draw_the_checks_losses_on_their_own_axis_and_wrap_a_long_warning(tmp_path) -> None:
    lrs = [0.4 / 2 ** k for k in range(6, -1, -1)]
    checked = with_check(_sweep(0.3, 0.4), lrs, [2.0, 1.5, 1.0, 0.6, 0.5, 0.9, math.nan], num_steps=100)
    checked.warnings.append("a warning long enough to need a second line " * 4)
    figure = json.loads(re.search(r"Plotly.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", checked.plot_html(),
                                  re.S).group(1))
    check = next(trace for trace in figure if trace["name"] == "check: held-out loss after 100 steps")
    assert check["yaxis"] == "y2" and check["x"] == lrs[:-1] and check["y"] == [2.0, 1.5, 1.0, 0.6, 0.5, 0.9]
    png = checked.plot(tmp_path / "range.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "check:" not in _sweep(0.3, 0.4).plot_html()
    title = _title(checked).splitlines()
    assert len(title) == 3 and max(map(len, title)) <= TITLE_WIDTH  # the title, and the 185-character warning in 2


def one_step(low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` widened about its geometric middle to one step (2x) of the check's grid."""
    middle = math.sqrt(low * high)
    return middle / math.sqrt(2), middle * math.sqrt(2)


def test_the_spread_is_the_run_of_lrs_within_five_percent_of_the_best_loss() -> None:
    lrs = [0.4 / 2 ** k for k in range(6, -1, -1)]  # 0.00625 .. 0.4, 2x apart
    flat = [0.50, 0.31, 0.300, 0.304, 0.308, 0.33, math.nan]  # 0.025 .. 0.1 within 5% of the best (0.025)
    assert check_spread(lrs, flat, 0.025) == (0.0125, 0.1)  # 0.0125 (0.31) is within 5% too; 0.2 (0.33) is not
    gap = [0.35, 0.50, 0.300, 0.40, 0.301, 0.33, math.nan]  # only the contiguous run around the best counts
    assert check_spread(lrs, gap, 0.025) == pytest.approx(one_step(0.025, 0.025))  # one run alone: not zero width
    assert check_spread(lrs, gap, 0.02) == pytest.approx(one_step(0.02, 0.025))  # takes in the check's best LR
    assert check_spread(lrs, flat, 0.025)[1] / check_spread(lrs, flat, 0.025)[0] == 8  # wider than a step: as is


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_least_squares_the_check_brings_a_sweep_past_two_over_l_back_below_it(seed: int) -> None:
    """Plain GD diverges slowly just past 2/L, so a 100-step sweep overshoots; the check's constant-LR runs see it."""
    problem = least_squares(seed)
    model = problem.model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sweep = lr_range_test(model, optimizer, (problem.x, problem.y), nn.functional.mse_loss,
                          batch_size=len(problem.y), seed=seed)
    checked = lr_range_test(model, optimizer, (problem.x, problem.y), nn.functional.mse_loss,
                            batch_size=len(problem.y), seed=seed, check=True)
    assert sweep.suggestion > problem.stable_lr  # the sweep alone lands past the limit ...
    # ... the check brings it back under (its best run may sit at the limit, next to a diverged one: half of it)
    assert problem.stable_lr / 3 < checked.suggestion < problem.stable_lr
    lrs = checked.settings["check"]["lrs"]
    assert len(lrs) == CHECK_LRS and lrs[-1] == pytest.approx(sweep.suggestions["loss_min"])
    assert lrs[0] == pytest.approx(lrs[-1] / CHECK_SPAN)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the copies trained, not it
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_the_check_needs_tensors_and_says_so_before_training() -> None:
    model = nn.Linear(4, 2)
    loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match=r"check=True needs data as an \(x, y\) pair of tensors, got DataLoader"):
        lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, nn.functional.cross_entropy,
                      check=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
