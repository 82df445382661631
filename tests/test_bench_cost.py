"""`autolr bench cost`: the plain grid trains as autolr would; bad arguments exit 2; a small run writes its table."""

import json
import subprocess
import sys

import pytest

from autolr.bench import cost
from autolr.schedule.spec import ScheduleSpec
from autolr.study.config import packaged_study
from autolr.jobs.builtin import BuiltinJob
from autolr.training.train import train_trial


def test_a_plain_grid_run_trains_as_train_trial_does_under_cosine_to_zero():
    config = packaged_study("smoke").replace(epochs=2)
    splits = BuiltinJob(config, "cpu").splits
    plain = cost.plain_cosine_run(config, splits, "cpu", 0.2)
    spec = ScheduleSpec("cosine", 0.2, {"min_factor": 0.0}, optimizer=config.optimizer)
    single = train_trial(spec, config.model, splits, 2, config.batch_size, config.seed)
    assert 0.8 < plain == pytest.approx(single.final_score, abs=1e-3)  # same batches, weights and LR per step


def test_each_study_runs_at_its_length_and_at_the_target():
    configs = cost.study_lengths(["mnist", "smoke"], None)
    assert [(c.dataset, c.verdict_epochs) for c in configs] == [("mnist", 3), ("mnist", 9), ("digits", 3),
                                                               ("digits", 9)]
    assert [c.verdict_epochs for c in cost.study_lengths(["smoke"], 3)] == [3]  # the target is the trial length


@pytest.mark.parametrize(("arguments", "message"), [
    (["--study", "nosuch"], "error: unknown built-in study 'nosuch'; choose one of fashion-mnist, fortunes, mnist, "
                            "smoke"),
    (["--quick", "--target-epochs", "0"], "Invalid value for '--target-epochs'"),
])
def test_a_bad_argument_exits_2_with_one_sentence_and_writes_nothing(tmp_path, arguments, message):
    result = subprocess.run([sys.executable, "-m", "autolr", "bench", "cost", *arguments, "--out-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_quick_run_writes_both_wall_times_and_their_ratio(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autolr", "bench", "cost", "--quick", "--target-epochs", "3",
                             "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    payload = json.loads((tmp_path / "cost.json").read_text())
    (row,) = payload["rows"]
    assert (row["study"], row["epochs"], row["verdict_epochs"], row["trials"]) == ("smoke", 3, 3, 8)
    assert row["study_s"] > 0 and row["grid_s"] > 0 and row["ratio"] == pytest.approx(row["study_s"] / row["grid_s"])
    low, high = row["grid_lrs"]
    assert low < row["grid_best_lr"] <= high and row["grid_best_val_accuracy"] > 0.9
    assert payload["threads"] >= 1 and payload["torch"] and "CPU" in payload["hardware"]
    table = (tmp_path / "cost.md").read_text()
    assert f"| smoke | 3 | 3 | 8 | {row['study_s']:.1f} | {row['grid_s']:.1f} | {row['ratio']:.1f}x |" in table
