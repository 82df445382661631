"""The range test on the transformer (text): gradient clipping as the job clips, the length in a text's steps, and
the LM bench's judging (``autolr.bench.rangetest_lm``) on the tests' 12 KB sample."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from autolr.bench import rangetest_lm
from autolr.data.load import load_text_splits
from autolr.rangetest.range_test import CheckCost, builtin_range_test

SAMPLE_DIR = Path(__file__).parent / "text"
ROOT = Path(__file__).resolve().parent.parent
LM_OPTIMIZER = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}


@pytest.fixture(scope="module")
def text():
    return load_text_splits("fortunes", context=16, epoch_steps=5, data_dir=SAMPLE_DIR)


def sweep(text, **options):
    return builtin_range_test("transformer", text, method="sweep", check=False, num_steps=20, batch_size=4,
                              optimizer=LM_OPTIMIZER, seeds=1, **options)


def test_a_clipped_sweep_differs_only_where_the_clip_bites(text):
    plain = sweep(text).losses
    assert sweep(text, grad_clip=1e9).losses == plain  # a limit no gradient reaches changes nothing
    clipped = sweep(text, grad_clip=1e-3).losses
    assert clipped[0] == plain[0]  # the first loss is measured before any step
    assert max(abs(a - b) for a, b in zip(clipped[1:], plain[1:])) > 1e-3


def test_a_text_length_in_epochs_counts_the_texts_steps_between_evaluations(text):
    assert sweep(text, epochs=3).settings["length"] == 3 * 5


def parabola_bits(lrs, best=1e-2):
    """Bits per byte 2 at ``best``, 0.1 more per decade squared away from it."""
    return [2.0 + 0.1 * (math.log10(lr / best)) ** 2 for lr in lrs]


def test_the_lm_grid_best_is_the_vertex_of_the_loss_in_log_lr():
    lrs = list(rangetest_lm.GRID_LRS)
    assert rangetest_lm.lm_grid_best(lrs, parabola_bits(lrs, best=7e-3)) == pytest.approx(7e-3, rel=1e-6)


@pytest.mark.parametrize("lr, good, collapse", [
    (2.9e-2, True, False),  # 2.9x the best LR
    (4e-2, True, False),  # 4x, but only 0.036 bits per byte worse
    (1e-1, False, False),  # 10x: 0.1 bits worse, a miss
    (1.8e-1, False, True),  # at the diverged top of the grid
])
def test_a_suggestion_is_judged_by_its_factor_and_its_bits_per_byte(lr, good, collapse):
    lrs = list(rangetest_lm.GRID_LRS)
    bits = parabola_bits(lrs)
    bits[-1] = rangetest_lm.DIVERGED_BITS
    verdict = rangetest_lm.judge_lm(lrs, bits, lr)
    assert (verdict.good, verdict.collapse) == (good, collapse)
    assert verdict.ratio == pytest.approx(lr / 1e-2, rel=1e-6)


def test_a_diverged_grid_run_counts_as_a_uniform_guess_after_it_stopped():
    record = rangetest_lm.LMSeed(0, [1e-3, 1e-2], [[3.0, 2.5, 2.4], [3.1, math.nan]])
    assert record.bits_at(100, 50) == [2.5, rangetest_lm.DIVERGED_BITS]
    assert record.bits_at(150, 50) == [2.4, rangetest_lm.DIVERGED_BITS]


@pytest.fixture(scope="module")
def quick_size():
    return replace(rangetest_lm.QUICK, data_dir=str(SAMPLE_DIR))


@pytest.fixture(scope="module")
def quick_records(quick_size):
    return rangetest_lm.run_lm_bench(quick_size)


def test_the_quick_lm_bench_scores_every_grid_lr_at_every_length_and_suggests_an_lr(quick_records, quick_size):
    (record,) = quick_records
    assert [len(curve) for curve in record.grid_bits] == [4] * len(quick_size.grid_lrs)  # 20 steps, every 5
    assert all(1.0 < bits < 8.0 for curve in record.grid_bits for bits in curve)
    assert 1e-5 < record.suggestions["autolr sweep"] < 10.0
    assert record.rules["loss_min"] == pytest.approx(4 * record.suggestions["autolr sweep"])


def test_a_shorter_constant_lr_grid_scores_as_the_longer_one_did_at_that_length(quick_records, quick_size):
    (shorter,) = rangetest_lm.run_lm_bench(replace(quick_size, lengths=(10,)))
    assert shorter.bits_at(10, 5) == pytest.approx(quick_records[0].bits_at(10, 5), abs=1e-5)


def test_the_lm_bench_resumes_from_its_file_without_training_again(quick_records, quick_size, tmp_path):
    rangetest_lm.write_lm(quick_records, quick_size, tmp_path, "test")
    stored, hardware = rangetest_lm.read_lm(tmp_path / "rangetest-lm.json")
    assert stored == quick_records and hardware == "test"
    ran = []
    assert rangetest_lm.run_lm_bench(quick_size, done=stored, on_seed=ran.append) == stored
    assert ran == []
    assert "| 20 | 0 |" in (tmp_path / "rangetest-lm.md").read_text()


@pytest.mark.parametrize("options, words", [
    (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
    (["--reanalyse"], "--reanalyse needs"),
])
def test_bad_options_are_refused_in_one_sentence_with_exit_2(tmp_path, options, words):
    result = subprocess.run([sys.executable, "-m", "autolr", "bench", "rangetest-lm", "--quick", *options,
                             "--out-dir", str(tmp_path)], capture_output=True, text=True, env={**os.environ,
                             "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "rangetest-lm.json").exists()


def test_the_check_and_the_population_test_hold_out_a_block_of_the_text(text):
    from autolr.rangetest.check import CHECK_LRS, CheckRuns, extended
    from autolr.rangetest.range_test import held_out_split, population_check, population_range_test

    data, epochs = held_out_split(text, num_steps=12, batch_size=4, held_out=50, seed=0, min_epochs=4)
    cut = len(text.train_tokens) - len(text.train_tokens) // 5
    assert len(data.train_tokens) == cut and (data.train_tokens == text.train_tokens[:cut]).all()
    assert data.val_x.shape == (50, 16) and (data.val_y[:, :-1] == data.val_x[:, 1:]).all()  # next-byte targets
    held = bytes(text.train_tokens[cut:].tolist())
    assert all(bytes(window.tolist()) in held for window in data.val_x)  # every held-out window lies in the tail
    assert (epochs, data.epoch_steps) == (4, 3)  # 4 evaluations, 12 steps in all
    again, _ = held_out_split(text, num_steps=12, batch_size=4, held_out=50, seed=1, min_epochs=4)
    assert not (again.val_x == data.val_x).all()  # another seed, other held-out windows

    checked = builtin_range_test("transformer", text, method="sweep", check=True, num_steps=20, batch_size=4,
                                 optimizer=LM_OPTIMIZER, seeds=3, steps=12,
                                 check_cost=CheckCost(8, held_out=30, seeds=2))
    check = checked.settings["check"]
    assert (check["num_steps"], check["length"]) == (8, 12)  # runs of 8 steps judged at 12 (the cost's cap)
    assert len(checked.settings["seeds"]) == 3 and check["seeds"] == checked.settings["seeds"][:2]  # 2 of 3 seeds
    assert len(check["losses"]) == 2 and len(check["losses"][0]) == len(check["lrs"])
    assert 0 < checked.suggestion <= max(check["lrs"])
    below = population_check("transformer", text, check["lrs"][0], batch_size=4, optimizer=LM_OPTIMIZER, seeds=[0],
                             length=12, highest=False)  # a pass one span lower leaves out the LR already run
    assert len(below.lrs) == CHECK_LRS - 1 and below.lrs[-1] * 2 == pytest.approx(check["lrs"][0])
    assert check["batch_size"] == below.batch_size == 4  # the user's batch, kept with the runs
    assert extended(below, CheckRuns(check["lrs"], [0], check["losses"][:1], 12, 12, 4)).lrs == [*below.lrs,
                                                                                               *check["lrs"]]
    population = population_range_test("transformer", text, num_steps=12, batch_size=4, optimizer=LM_OPTIMIZER,
                                       num_lrs=4, held_out=50)
    assert population.method == "population" and population.stopped_at == 12
    assert sum(math.isfinite(loss) for loss in population.losses) >= 2
