"""The LR range test: suggestions on problems with a known stable LR, state restored, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autolr.errors import UserError
from autolr.bench.least_squares import least_squares
from autolr.rangetest.range_test import RangeTestResult, lr_range_test
from autolr.rangetest.analysis import ema, valley_index


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_least_squares_suggestion_is_below_the_stability_bound(seed: int) -> None:
    """Full-batch gradient descent on a quadratic is stable for lr < 2/L.

    Plain GD diverges slowly just past the bound, so the sweep needs more steps than the
    default 100 to see it in time (with 100 steps the suggestion lands at about 1.7x the bound).
    """
    problem = least_squares(seed)
    x, y, stable_bound, model = problem.x, problem.y, problem.stable_lr, problem.model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, (x, y), nn.functional.mse_loss, num_steps=300,
                           batch_size=len(x), seed=seed)
    assert result.stop_reason == "diverged"
    assert stable_bound / 10 < result.suggestion < stable_bound
    low, high = result.interval
    assert low < result.suggestion < high
    assert result.lrs[result.stopped_at - 1] > stable_bound  # it only stopped beyond the bound


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heavy_ball_suggestion_is_below_its_stability_bound(seed: int) -> None:
    """SGD with momentum beta (autolr's default optimizer) on a quadratic is stable for lr < 2 (1 + beta) / L."""
    problem = least_squares(seed)
    x, y, plain_bound, model = problem.x, problem.y, problem.stable_lr, problem.model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = lr_range_test(model, optimizer, (x, y), nn.functional.mse_loss, batch_size=len(x), seed=seed)
    stable_bound = plain_bound * (1 + 0.9)
    assert stable_bound / 10 < result.suggestion < stable_bound


def _state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": json.dumps(_plain(optimizer.state_dict())),
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "rng": torch.get_rng_state().clone(),
    }


def _plain(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _assert_same(before: dict, after: dict) -> None:
    assert before["model"].keys() == after["model"].keys()
    for key in before["model"]:
        assert torch.equal(before["model"][key], after["model"][key]), key
    assert before["optimizer"] == after["optimizer"]
    for grad_before, grad_after in zip(before["grads"], after["grads"]):
        assert (grad_before is None) == (grad_after is None)
        if grad_before is not None:
            assert torch.equal(grad_before, grad_after)
    assert before["modes"] == after["modes"]
    assert torch.equal(before["rng"], after["rng"])


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_model_optimizer_and_rng_are_exactly_restored(optimizer_name: str) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2),
                          nn.Linear(4 * 6 * 6, 3))
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
                                     {"params": list(model[1].parameters()) + list(model[5].parameters())}],
                                    lr=0.05, momentum=0.9, weight_decay=1e-4)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    for _ in range(3):  # some optimizer state (momentum buffers / moments) and BatchNorm statistics
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    model[4].train()  # a mix of modes must come back as it was
    before = _state(model, optimizer)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    result = lr_range_test(model, optimizer, loader, nn.functional.cross_entropy, num_steps=30)
    assert result.stopped_at >= 10
    _assert_same(before, _state(model, optimizer))
    assert [g["lr"] for g in optimizer.param_groups] == ([0.01, 0.05] if optimizer_name == "sgd" else [1e-3])


def test_same_seed_same_curve_and_linear_mode_spacing() -> None:
    x, y = least_squares(0).x, least_squares(0).y
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(x.shape[1], 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        runs.append(lr_range_test(model, optimizer, (x, y), nn.functional.mse_loss, start_lr=1e-4, end_lr=0.005,
                                  num_steps=20, mode="linear", batch_size=32, seed=5))
    assert runs[0].losses == runs[1].losses
    steps = [b - a for a, b in zip(runs[0].lrs, runs[0].lrs[1:])]
    assert all(math.isclose(step, (0.005 - 1e-4) / 19) for step in steps)


def test_result_round_trips_through_json_and_plots(tmp_path) -> None:
    x, y = least_squares(1).x, least_squares(1).y
    torch.manual_seed(0)
    model = nn.Linear(x.shape[1], 1)
    result = lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), (x, y), nn.functional.mse_loss,
                           start_lr=1e-6, end_lr=10.0, batch_size=256)
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    again = RangeTestResult.from_dict(stored)
    assert again.suggestion == result.suggestion and again.interval == result.interval
    assert again.lrs == result.lrs and again.suggestions == result.suggestions
    png = result.plot(tmp_path / "range.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fragment = result.plot_html()
    assert fragment.startswith("<div") and "cdn" not in fragment.lower() and "<html" not in fragment
    assert "plotly.js v" in result.plot_html(include_plotlyjs=True)  # embedded, offline


def test_smoothing_is_bias_corrected() -> None:
    assert ema([5.0, 5.0, 5.0], 0.05) == pytest.approx([5.0, 5.0, 5.0])
    assert ema([4.0, 2.0], 0.5) == pytest.approx([4.0, (0.25 * 4 + 0.5 * 2) / 0.75])
    ramp = [float(i) for i in range(200)]
    assert ramp[150] - ema(ramp, 0.05)[150] == pytest.approx(19, abs=0.5)  # lags (1 - 0.05) / 0.05 steps
    # fastai's valley: halfway along the longest decreasing stretch
    assert valley_index([9, 8, 7, 6, 5, 4, 3, 10, 20]) == 2  # fastai's index arithmetic, start at -1


@pytest.mark.parametrize("kwargs, match", [
    ({"start_lr": 1.0, "end_lr": 1.0}, "end_lr must be greater"),
    ({"start_lr": 0.1, "end_lr": 0.01}, "end_lr must be greater"),
    ({"start_lr": 0.1, "end_lr": 1e308}, r"end_lr must be at most 1000 \(an LR above it is a typo"),
    ({"num_steps": 5}, "num_steps must be at least 10"),
    ({"mode": "cubic"}, "mode must be"),
    ({"data": (torch.zeros(0, 3), torch.zeros(0))}, "non-empty"),
    ({"data": DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0)), batch_size=4)}, "no batches"),
    ({"data": 42}, "DataLoader"),
])
def test_bad_arguments_raise_one_sentence_user_errors(kwargs: dict, match: str) -> None:
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    arguments = {"data": (torch.randn(8, 3), torch.randn(8, 1))} | kwargs
    data = arguments.pop("data")
    with pytest.raises(UserError, match=match):
        lr_range_test(model, optimizer, data, nn.functional.mse_loss, **arguments)


def test_population_curve_points_equal_single_constant_lr_runs() -> None:
    """Each grid point is the held-out loss of a plain constant-LR run of the same model and data."""
    from autolr.data import load_splits
    from autolr.rangetest.range_test import held_out_split, population_range_test
    from autolr.schedule.spec import ScheduleSpec
    from autolr.training.train import train_trial

    splits = load_splits("digits", seed=0)
    result = population_range_test("mlp", splits, start_lr=1e-3, end_lr=30.0, num_lrs=8, num_steps=40,
                                   batch_size=64, held_out=300, seed=1)
    assert result.method == "population" and len(result.lrs) == 8
    assert math.isnan(result.losses[-1])  # 30 with momentum 0.9 diverges
    finite = [loss for loss in result.losses if math.isfinite(loss)]
    assert result.losses.index(min(finite)) not in (0, 7)  # a real minimum inside the grid
    low, high = result.interval
    assert result.lrs[0] < low < result.suggestion < high
    assert result.lrs[2] < result.suggestion < result.lrs[-1]
    data, epochs = held_out_split(splits, 40, 64, 300, seed=1)
    for member in (1, 4):
        single = train_trial(ScheduleSpec("constant", result.lrs[member]), "mlp", data, epochs=epochs, batch_size=64,
                             seed=1, data_seed=1, metric="loss")
        assert single.val_losses[-1] == pytest.approx(result.losses[member], rel=1e-4)
    assert RangeTestResult.from_dict(json.loads(json.dumps(result.to_dict()))).losses[:7] == result.losses[:7]


@pytest.mark.slow
def test_range_test_command_prints_json_and_writes_plots(tmp_path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "autolr", "range-test", "--dataset", "digits", "--model", "mlp",
               "--num-steps", "60", "--batch-size", "32", "--epochs", "2", "--json", "--out", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    printed = json.loads(completed.stdout)
    low, high = printed["interval"]
    assert low < printed["suggestion"] < high and printed["method"] == "sweep"
    assert printed["data_source"]  # says where the data came from
    assert printed["suggestion"] == printed["suggestions"]["check"] <= printed["suggestions"]["loss_min"]
    spread_low, spread_high = printed["suggestion_spread"]  # the LRs the check cannot rank apart
    assert spread_low <= printed["suggestion"] <= spread_high
    assert printed["length"] == 2 * math.ceil(1294 / 32)  # digits' 1294 training rows, 2 epochs
    assert len(printed["seed_suggestions"]) == 3 and min(printed["seed_suggestions"]) > 0
    stored = json.loads((tmp_path / "range_test.json").read_text())
    assert stored["suggestion"] == printed["suggestion"] and stored["stopped_at"] <= 60
    checked = stored["settings"]["check"]
    assert checked["length"] == printed["length"] and checked["seeds"] == [0, 1, 2]
    assert (tmp_path / "range_test.png").stat().st_size > 10_000
    assert "plotly" in (tmp_path / "range_test.html").read_text().lower()
    bad = subprocess.run(command[:4] + ["--method", "guess"], capture_output=True, text=True)
    assert bad.returncode == 2 and "method must be auto, sweep or population" in bad.stderr and "Traceback" not in bad.stderr
    both = subprocess.run(command[:4] + ["--epochs", "2", "--steps", "50"], capture_output=True, text=True)
    assert both.returncode == 2 and "not both" in both.stderr and "Traceback" not in both.stderr


def test_bench_grid_best_is_the_vertex_of_the_accuracy_parabola() -> None:
    from autolr.bench.rangetest import grid_best

    lrs = [10 ** (k / 4) for k in range(-8, 1)]
    peak = 10 ** -1.1
    accuracies = [0.9 - 0.05 * (math.log10(lr) - math.log10(peak)) ** 2 for lr in lrs]
    assert grid_best(lrs, accuracies) == pytest.approx(peak, rel=1e-6)
    accuracies[5] += 0.004  # one noisy point moves the vertex a little, not to that point
    assert abs(math.log10(grid_best(lrs, accuracies) / peak)) < 0.1
    assert grid_best([0.01, 0.1, 1.0], [0.5, 0.9, math.nan]) == pytest.approx(0.1, rel=0.5)


def test_population_method_on_your_own_model_runs_real_constant_lr_copies() -> None:
    """lr_range_test(method="population"): copies of the user's model (BatchNorm, Adam) at each grid LR,
    each point the held-out loss of a plain constant-LR run; model, optimizer and RNG untouched."""
    import copy

    from sklearn.datasets import load_digits

    from autolr.data.splits import Splits
    from autolr.rangetest.range_test import held_out_split
    from autolr.schedule.spec import ScheduleSpec
    from autolr.training.train import train_trial

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16 + 0.05 * torch.randn(len(digits.data), 64,
                                                                                generator=torch.Generator().manual_seed(0))
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    before = _state(model, optimizer)
    result = lr_range_test(model, optimizer, (x, y), nn.functional.cross_entropy, method="population",
                           start_lr=1e-4, end_lr=3.0, num_lrs=6, num_steps=30, batch_size=64, seed=2)
    _assert_same(before, _state(model, optimizer))
    assert result.method == "population" and len(result.lrs) == 6 and result.settings["model"] == "your model"
    assert result.lrs[0] < result.suggestion < result.lrs[-1]
    assert min(result.losses) < 0.5 * result.losses[0]  # learning happens inside the grid, not at its low end
    splits = Splits(
        name="t", train_x=x, train_y=y, val_x=x[:0], val_y=y[:0], test_x=x[:0], test_y=y[:0], num_classes=10,
        input_shape=(64,), source="tensors", root=None, mean=(0.0,), std=(1.0,))
    data, epochs = held_out_split(splits, 30, 64, 2000, seed=2)
    spec = ScheduleSpec("constant", result.lrs[2], optimizer={"name": "adam", "betas": [0.9, 0.99]})
    single = train_trial(spec, copy.deepcopy(model), data, epochs=epochs, batch_size=64, seed=2, data_seed=2,
                         metric="loss")
    assert single.val_losses[-1] == pytest.approx(result.losses[2], rel=1e-4)


def test_population_method_needs_tensors_and_a_population_optimizer() -> None:
    model = nn.Linear(3, 2)
    data = (torch.randn(200, 3), torch.randint(0, 2, (200,)))
    with pytest.raises(UserError, match="needs data as an \\(x, y\\) pair of tensors"):
        lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(TensorDataset(*data)),
                      nn.functional.cross_entropy, method="population")
    with pytest.raises(UserError, match="SGD, Adam or AdamW, got RMSprop"):
        lr_range_test(model, torch.optim.RMSprop(model.parameters()), data, nn.functional.cross_entropy,
                      method="population")
    with pytest.raises(UserError, match="method must be sweep or population"):
        lr_range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), data, nn.functional.cross_entropy,
                      method="grid")
