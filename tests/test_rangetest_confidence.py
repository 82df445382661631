"""How sure the range test is: the suggestion's spread over the curve's noise, and the curve warnings."""

from __future__ import annotations

import json
import math
import random

import pytest
from typer.testing import CliRunner

from autolr.cli import app
from autolr.rangetest.range_test import RangeTestResult, sweep_result
from autolr.rangetest.confidence import NEVER_ROSE, NO_DESCENT, curve_warnings

STEPS = 100
GRID_STEP = (10 / 1e-5) ** (1 / (STEPS - 1))  # ratio of neighbouring LRs of the sweep, about 1.15


def _sweep(noise: float, seed: int = 0, rises: bool = True) -> tuple[list[float], list[float]]:
    """A cross-entropy-like sweep from 1e-5 to 10: a descent around 1e-3, the minimum near 0.1, a rise after it."""
    generator = random.Random(seed)
    lrs = [1e-5 * GRID_STEP ** i for i in range(STEPS)]
    losses = []
    for lr in lrs:
        decade = math.log10(lr)
        rise = 3 * max(0.0, decade + 1) ** 2 if rises else 0.0
        losses.append(2.3 - 2.0 / (1 + math.exp(-2.5 * (decade + 3))) + rise + noise * generator.gauss(0, 1))
    return lrs, losses


def _spread_ratio(result: RangeTestResult) -> float:
    low, high = result.suggestion_spread
    return high / low


def test_a_clean_curve_gives_a_spread_of_one_grid_step_around_the_suggestion() -> None:
    """Without noise every resample picks the same LR: the spread is one step of the sweep's grid (the
    finest the grid can place a suggestion), never a zero-width interval."""
    result = sweep_result(*_sweep(noise=0.0), "completed", {"smooth": 0.05})
    low, high = result.suggestion_spread
    assert low < result.suggestion < high
    assert _spread_ratio(result) == pytest.approx(GRID_STEP)  # 1.15: was (0.0502, 0.0502) before the floor
    assert math.sqrt(low * high) == pytest.approx(result.suggestion)
    assert result.warnings == []
    again = sweep_result(*_sweep(noise=0.0), "completed", {"smooth": 0.05})
    assert again.suggestion_spread == result.suggestion_spread  # seeded


@pytest.mark.parametrize("seed", range(5))
def test_noise_widens_the_spread(seed: int) -> None:
    clean = sweep_result(*_sweep(noise=0.0), "completed", {"smooth": 0.05})
    noisy = sweep_result(*_sweep(noise=0.3, seed=seed), "completed", {"smooth": 0.05})
    low, high = noisy.suggestion_spread
    assert low <= noisy.suggestion <= high
    assert _spread_ratio(noisy) >= 1.5 > 1.3 * _spread_ratio(clean)


def test_a_flat_curve_warns_that_the_loss_never_descended() -> None:
    generator = random.Random(1)
    lrs = [1e-5 * GRID_STEP ** i for i in range(STEPS)]
    flat = [2.3 + 0.02 * generator.gauss(0, 1) for _ in lrs]
    assert NO_DESCENT in sweep_result(lrs, flat, "completed", {"smooth": 0.05}).warnings
    assert NO_DESCENT not in curve_warnings([2.3, 2.2, 2.05, 2.06], "completed", skip_start=0.0)  # 11% below
    assert NO_DESCENT in curve_warnings([2.3, 2.2, 2.1, 2.11], "completed", skip_start=0.0)  # 9% below


def test_a_curve_that_only_falls_warns_that_the_loss_never_rose() -> None:
    falling = sweep_result(*_sweep(noise=0.02, rises=False), "completed", {"smooth": 0.05})
    assert falling.warnings == [NEVER_ROSE]
    assert curve_warnings([2.0, 1.0, 1.2], "completed", skip_start=0.0) == []  # rose 20% of its descent
    assert curve_warnings([2.0, 1.0, 1.05], "completed", skip_start=0.0) == [NEVER_ROSE]  # 5%
    assert curve_warnings([2.0, 1.0, 1.05], "diverged", skip_start=0.0) == []  # the sweep stopped at the rise
    assert curve_warnings([2.0, 1.0, math.nan], "completed", skip_start=0.0) == []  # a population copy diverged


def test_a_result_stored_before_the_spread_existed_still_loads() -> None:
    result = sweep_result(*_sweep(noise=0.1), "completed", {"smooth": 0.05})
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert RangeTestResult.from_dict(stored) == result
    old = {key: value for key, value in stored.items() if key not in ("suggestion_spread", "warnings")}
    loaded = RangeTestResult.from_dict(old)
    assert loaded.suggestion_spread is None and loaded.warnings == []
    assert loaded.suggestion == result.suggestion and loaded.interval == result.interval


@pytest.mark.slow  # about 9 s on the shared 2-core VM under load
def test_a_real_sweep_on_digits_has_a_spread_around_its_suggestion_and_no_warning() -> None:
    """A 60-step sweep of the MLP on 8x8 digits descends and diverges: no warning, a seeded spread."""
    from autolr.data import load_splits
    from autolr.rangetest.range_test import builtin_range_test

    splits = load_splits("digits", seed=0, device="cpu")
    result = builtin_range_test("mlp", splits, method="sweep", num_steps=60, batch_size=32, seed=1, check=False)
    low, high = result.suggestion_spread
    assert low <= result.suggestion <= high and low < high  # real noise: not a single point
    assert result.stop_reason == "diverged" and result.warnings == []
    again = sweep_result(result.lrs, result.losses, result.stop_reason, result.settings)
    assert again.suggestion_spread == (low, high)  # seeded


@pytest.mark.slow
def test_range_test_json_and_table_carry_the_spread_and_warnings(tmp_path) -> None:
    arguments = ["range-test", "--dataset", "digits", "--model", "mlp", "--method", "sweep", "--num-steps", "60",
                 "--batch-size", "32", "--device", "cpu", "--no-check", "--out", str(tmp_path)]
    completed = CliRunner().invoke(app, arguments + ["--json"])
    assert completed.exit_code == 0, completed.output
    printed = json.loads(completed.output)
    low, high = printed["suggestion_spread"]
    assert low <= printed["suggestion"] <= high and printed["warnings"] == []
    stored = RangeTestResult.from_dict(json.loads((tmp_path / "range_test.json").read_text()))
    assert stored.suggestion_spread == (low, high) and stored.warnings == []
    assert "suggestion spread" in (tmp_path / "range_test.html").read_text()
    table = CliRunner().invoke(app, arguments)
    assert table.exit_code == 0 and "spread of the suggestion over the curve's noise" in table.output
