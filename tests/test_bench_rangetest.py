"""`autolr bench rangetest`: the least-squares problem's known limit, how a suggestion is judged, a real quick run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from autolr.bench.least_squares import least_squares
from autolr.bench.rangetest import (
    DATA_SEED,
    FRESH,
    FRESH_ROLE,
    HELD_OUT_3,
    HELD_OUT_ROLE,
    LEAST_SQUARES_SETTING,
    QUICK,
    BenchCase,
    BenchSetting,
    BenchSize,
    SeedRun,
    accuracy_at,
    judge,
    markdown,
    read,
    read_seed_runs,
    reanalyse,
    run_case,
    run_seed_spread,
    seed_spread_table,
    seed_variation,
    setting_table,
    summary,
    write,
    write_seed_runs,
)
from autolr.rangetest.range_test import run_seeds


@pytest.mark.parametrize("seed", [0, 1])
def test_least_squares_gd_converges_just_below_two_over_l_and_diverges_just_above(seed: int) -> None:
    problem = least_squares(seed)
    below, above = problem.final_loss(0.95 * problem.stable_lr, 400, seed), problem.final_loss(
        1.05 * problem.stable_lr, 400, seed)
    start = problem.final_loss(problem.stable_lr, 0, seed)
    assert below < 0.5 * start and math.isinf(above)
    # the best constant LR for a fixed budget sits just under the limit (the flat directions need large steps)
    assert problem.final_loss(0.9 * problem.stable_lr, 200, seed) < problem.final_loss(0.3 * problem.stable_lr, 200,
                                                                                       seed)


def _case(accuracies: list[float], **extra: object) -> BenchCase:
    lrs = [10 ** (k / 4) for k in range(-8, 1)]  # 0.01 .. 1
    return BenchCase("digits", "cnn", 0, lrs, accuracies, 0.1, [[]], [[]], ["completed"],
                     **extra)  # type: ignore[arg-type]


def test_a_suggestion_is_good_within_3x_or_close_in_accuracy_and_a_collapse_past_a_cliff() -> None:
    cliff = _case([0.80, 0.90, 0.965, 0.97, 0.975, 0.96, 0.30, 0.10, math.nan])  # best at 0.1, collapse above 0.18
    assert accuracy_at(cliff, 0.1) == pytest.approx(0.975)
    assert accuracy_at(cliff, 10 ** -0.625) == pytest.approx(0.63)  # half way between 0.96 and 0.30 in log LR
    assert accuracy_at(cliff, 1.0) == 0.0  # diverged counts 0
    near = judge(cliff, 0.25)
    assert near.ratio == pytest.approx(2.5) and near.good and near.collapse  # within 3x, yet over the cliff
    low = judge(cliff, 0.0178)  # 5.6x too low and 7.5 points worse: a miss, not a collapse
    assert not low.good and not low.collapse
    close = judge(cliff, 0.0316)  # 3.2x too low, 1 point worse: good by accuracy
    assert close.good and not close.collapse


def test_least_squares_suggestions_are_judged_against_the_stability_limit() -> None:
    case = _case([1.0] * 9, stable_lr=0.2, role=HELD_OUT_ROLE)
    assert judge(case, 0.1).good and not judge(case, 0.1).collapse
    assert not judge(case, 0.05).good  # a quarter of 2/L: too timid
    assert judge(case, 0.2).collapse and judge(case, 0.5).collapse
    tuning = _case([0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5], suggestions={"autolr sweep": 0.1, "x": 1.0})
    stats = summary([tuning, _case([1.0] * 9, stable_lr=0.2, role=HELD_OUT_ROLE, suggestions={"autolr sweep": 0.3})])
    assert stats["autolr sweep"]["tuning"] == {"cases": 1, "good": 1, "collapses": 0, "worst_factor": 1.0}
    assert stats["autolr sweep"]["held_out"]["collapses"] == 1 and stats["autolr sweep"]["held_out"]["good"] == 0
    assert "held_out" not in stats["x"] and stats["x"]["tuning"]["collapses"] == 1
    assert "fresh" not in stats["autolr sweep"]


def test_fresh_cases_are_counted_among_the_held_out_and_on_their_own() -> None:
    accuracies = [0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5]  # best at 0.1
    held_out = _case(accuracies, role=HELD_OUT_ROLE, suggestions={"autolr sweep": 0.1})
    fresh = [_case(accuracies, role=FRESH_ROLE, suggestions={"autolr sweep": lr}) for lr in (0.05, 0.01)]
    stats = summary([held_out, *fresh])["autolr sweep"]
    assert stats["held_out"]["cases"] == 3 and stats["held_out"]["good"] == 2
    # 12 and 40 points below the best: both collapses, the first still good (2x from the best LR)
    assert stats["fresh"] == {"cases": 2, "good": 1, "collapses": 2, "worst_factor": pytest.approx(10.0)}
    assert fresh[0].setting.fresh and fresh[0].setting.held_out and fresh[0].setting.label == held_out.setting.label
    assert held_out.held_out and not held_out.fresh and not _case(accuracies).held_out


@pytest.mark.slow
def test_quick_bench_trains_the_grid_and_judges_every_method(tmp_path) -> None:
    completed = subprocess.run([sys.executable, "-m", "autolr", "bench", "rangetest", "--quick", "--out-dir",
                                str(tmp_path)], capture_output=True, text=True, check=True)
    cases, size, _ = read(tmp_path / "rangetest.json")
    (case,) = cases
    assert (case.dataset, case.model, case.held_out) == ("digits", "mlp", False) and len(case.grid_lrs) == 13
    assert max(case.grid_accuracies) > 0.8  # the grid really trained
    assert len(case.check_lrs) == 7 and case.check_lrs[-1] == pytest.approx(case.suggestions["rule loss_min"])
    for method in ("autolr sweep", "autolr sweep + check", "autolr population"):
        assert 0.001 < case.suggestions[method] < 3.0
    assert 1e-7 < case.suggestions["torch-lr-finder"] < 10.0  # side by side (the test setup installs autolr[bench])
    assert "| digits mlp sgd b128 2ep |" in completed.stdout
    stored = json.loads((tmp_path / "rangetest.json").read_text())
    assert stored["summary"]["autolr sweep"]["tuning"]["cases"] == 1 and size.seeds == (0,)


def test_the_spread_across_seeds_is_the_widest_ratio_within_one_setting() -> None:
    accuracies = [0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5]
    cases = [_case(accuracies, suggestions={"autolr sweep + check": lr, "rule x": lr * 9}) for lr in (0.1, 0.15, 0.3)]
    other = [_case(accuracies, epochs=20, suggestions={"autolr sweep + check": lr}) for lr in (0.1, 0.5)]
    assert seed_variation(cases) == {"autolr sweep + check": pytest.approx(3.0)}  # rules are not methods
    assert seed_variation(cases + other) == {"autolr sweep + check": pytest.approx(5.0)}  # per setting, the widest
    table = "\n".join(setting_table(cases + other, "autolr sweep + check"))
    assert "| digits cnn sgd b128 2ep | tuning | 3 | 3/3 | 1 | 1.00x-3.00x | 3.00x |" in table  # 0.3: 3x, 19 points
    assert "| digits cnn sgd b128 20ep | tuning | 2 | 1/2 | 1 | 1.00x-5.00x | 5.00x |" in table  # 0.5: 5x, 35 points


def test_the_fresh_set_has_long_cnns_adamw_and_both_batch_extremes() -> None:
    assert all(setting.role == FRESH_ROLE for setting in FRESH) and len(FRESH) == 4
    assert any(s.model == "cnn" and s.epochs >= 20 for s in FRESH) and any(s.optimizer == "adamw" for s in FRESH)
    assert min(s.batch_size for s in FRESH) <= 32 and any(s.batch_size >= 512 and s.epochs >= 20 for s in FRESH)
    assert BenchSetting("mnist", "cnn", train_rows=1500).label == "mnist cnn sgd b128 2ep 1500 rows"
    older = {s.label for s in BenchSize().settings if s.role != FRESH_ROLE}
    assert not older & {s.label for s in FRESH}  # none repeats a setting run before


def test_reanalyse_gives_a_stored_case_the_role_its_setting_has_now() -> None:
    cases, _, _ = read(Path("reports/reference/bench-rangetest.json"))
    stored = next(c for c in cases if c.setting.label == "mnist mlp sgd b16 3ep")
    seen = replace(stored, role=FRESH_ROLE)  # as it was stored when it ran fresh for #26
    assert replace(seen.setting, role=HELD_OUT_ROLE) in HELD_OUT_3
    (again,) = reanalyse([seen])
    assert again.role == HELD_OUT_ROLE and not again.fresh  # fresh for #26, seen since


def test_cases_stored_before_seeds_read_as_one_seed_and_reanalyse() -> None:
    cases, _, _ = read(Path("reports/reference/bench-rangetest.json"))
    case = next(c for c in cases if c.stable_lr is None and c.check_lrs and c.length is None)  # stored before #26
    assert len(case.sweep_losses) == len(case.check_losses) == 1 and case.range_seeds == [] and case.length is None
    (again,) = reanalyse([case])
    assert 0 < again.suggestions["autolr sweep + check"] <= max(case.check_lrs)


def test_a_stored_grid_is_reused_and_the_range_tests_run_on_three_seeds_at_the_settings_length() -> None:
    from autolr.data import load_splits

    lrs = [10 ** (k / 4) for k in range(-10, 3)]
    fake = [0.1 * k for k in range(7)] + [0.1 * k for k in range(5, -1, -1)]  # peaked at lrs[6], not trained
    case = run_case(load_splits("digits", seed=0), BenchSetting("digits", "mlp"), 0, QUICK, (lrs, fake, 1.5))
    assert case.grid_accuracies == fake and case.seconds["grid"] == 1.5
    assert case.grid_best == pytest.approx(lrs[6])
    assert case.range_seeds == [0, 1, 2] and len(case.sweep_losses) == 3 and len(case.check_losses) == 3
    assert case.length == 2 * math.ceil(1294 / 128) and case.check_steps == QUICK.check_steps  # 22, run 20
    assert case.suggestions["autolr sweep + check"] <= max(case.check_lrs)


def test_cases_stored_before_seeds_are_in_the_table_but_not_in_the_summaries() -> None:
    accuracies = [0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5]
    stored = _case(accuracies, suggestions={"autolr sweep + check": 1.0})  # 10x off, the previous rule
    current = _case(accuracies, length=20, range_seeds=[3, 4, 5], check_steps=20,
                    suggestions={"autolr sweep + check": 0.1})
    text = markdown([stored, current], QUICK, "test")
    assert "| 1 seed, 100 steps (stored before #26) |" in text and "| 3 seeds, 20/20 steps |" in text
    assert "Summary of the 1 cases run under the current range test" in text
    assert "| autolr sweep + check | 1/1 | - | - | 0 | 1.00 |" in text
    assert "| autolr sweep + check | 0/1 |" in markdown([stored], QUICK, "test")  # all stored: all counted


def _seed_run(label: str, seed: int, low_lr: float) -> SeedRun:
    """A seed run whose check curve is a symmetric valley, no cliff: its suggestion is the middle LR, 4x ``low_lr``."""
    lrs = [low_lr * 2 ** k for k in range(5)]
    return SeedRun(label, seed, run_seeds(seed, 3), lrs, [[1.5, 1.2, 1.0, 1.2, 1.5]] * 3, 20, 20, 128)


def test_the_seed_only_spread_is_per_setting_beside_the_spread_across_cases() -> None:
    accuracies = [0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5]  # the grid's best at 0.1
    cases = [replace(_case(accuracies, length=20, range_seeds=run_seeds(seed, 3), check_steps=20,
                           suggestions={"autolr sweep + check": lr}), seed=seed)
             for seed, lr in ((0, 0.1), (1, 0.4), (2, 0.2))]
    label = cases[0].setting.label
    runs = [_seed_run(label, 0, 0.025), _seed_run(label, 1, 0.05), _seed_run(label, 2, 0.0375),
            *(_seed_run("digits cnn sgd b128 20ep", seed, 0.01) for seed in (0, 1, 2))]
    assert [run.suggestion for run in runs[:3]] == pytest.approx([0.1, 0.2, 0.15])
    table = "\n".join(seed_spread_table(runs, cases))
    # seeds alone 2x (same data), across cases 4x (seeds and data); ratios to the seed-0 case's grid best, 0.1
    assert f"| {label} | 0, 1, 2 | 0.1, 0.2, 0.15 | 2.00x | 4.00x | 1.00x-2.00x: 3/3 |" in table
    assert "| digits cnn sgd b128 20ep | 0, 1, 2 | 0.04, 0.04, 0.04 | 1.00x | - | - |" in table  # no stored case
    assert "varies within 2x on every one of the 2 settings." in table
    runs[1] = _seed_run(label, 1, 0.0625)  # 0.25: 2.5x seed 0's
    assert f"within 2x on 1 of the 2 settings; above it: {label} 2.500x." in "\n".join(seed_spread_table(runs, cases))
    text = markdown(cases, QUICK, "test", runs)
    assert "Across seeds alone, as a user with fixed data sees it" in text and "| 2.50x | 4.00x |" in text
    assert "Across seeds alone" not in markdown(cases, QUICK, "test")


def test_seed_runs_share_seed_0s_data_and_seed_0_is_that_cases_own_run(tmp_path) -> None:
    from autolr.data import load_splits

    size = replace(QUICK, seeds=(0, 1), population_models=())
    setting = size.settings[0]
    grid = ([10 ** (k / 4) for k in range(-10, 3)], [0.5] * 13, 1.0)  # not trained: only the range tests run
    case = run_case(load_splits(setting.dataset, seed=0), setting, DATA_SEED, size, grid)
    zero, one = run_seed_spread(size)
    assert zero.check_losses == case.check_losses and zero.suggestion == case.suggestions["autolr sweep + check"]
    assert (zero.range_seeds, one.range_seeds) == ([0, 1, 2], [3, 4, 5]) and not zero.stored
    assert one.length == zero.length == case.length and one.check_losses != zero.check_losses
    # the stored case lends its run to seed 0 (nothing trains), and a stored setting is not run again
    (lent,) = run_seed_spread(replace(size, seeds=(0,)), stored=[case])
    assert lent.stored and lent.check_losses == case.check_losses and lent.suggestion == zero.suggestion
    assert run_seed_spread(size, done=[zero, one]) == [zero, one]
    write_seed_runs([zero, one], tmp_path / "seeds.json")
    assert read_seed_runs(tmp_path / "seeds.json") == [zero, one]


def test_bench_rangetest_seed_spread_lends_the_stored_seed_0_run_and_writes_the_table(tmp_path) -> None:
    from typer.testing import CliRunner

    from autolr.cli import app

    valley = _seed_run("digits mlp sgd b128 2ep", 0, 0.025)  # suggestion 0.1
    stored = BenchCase("digits", "mlp", 0, [0.01, 0.1, 1.0], [0.8, 0.9, 0.8], 0.1, [[]], [[]], ["completed"],
                       suggestions={"autolr sweep + check": 0.1}, length=22, range_seeds=[0, 1, 2], check_steps=20,
                       check_lrs=valley.check_lrs, check_losses=valley.check_losses)
    write([stored], QUICK, tmp_path, "test")
    result = CliRunner().invoke(app, ["bench", "rangetest", "--quick", "--seeds", "0", "--seed-spread",
                                      "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,) = read_seed_runs(tmp_path / "rangetest-seeds.json")  # nothing trained: seed 0 is the stored case's run
    assert run.stored and run.suggestion == pytest.approx(0.1)
    table = (tmp_path / "rangetest.md").read_text()
    assert "| digits mlp sgd b128 2ep | 0 | 0.1 | 1.00x | - | 1.00x-1.00x: 1/1 |" in table


def test_seed_runs_stored_before_their_batch_size_take_their_settings(tmp_path) -> None:
    runs = [_seed_run("mnist mlp sgd b512 20ep", 0, 0.025), _seed_run(LEAST_SQUARES_SETTING.label, 0, 0.025)]
    write_seed_runs(runs, tmp_path / "seeds.json")
    stored = json.loads((tmp_path / "seeds.json").read_text())
    for run in stored["runs"]:
        del run["batch_size"]  # as the runs of issue #26's first seed-spread measurement were stored
    (tmp_path / "seeds.json").write_text(json.dumps(stored))
    assert [run.batch_size for run in read_seed_runs(tmp_path / "seeds.json")] == [512, 640]
    # the valley's middle LR (0.1), raised by the square root of 512 / 128
    assert read_seed_runs(tmp_path / "seeds.json")[0].suggestion == pytest.approx(0.2)
