"""`autolr bench cost`: the plain grid trains as autolr would; bad arguments exit 2; a small run writes its table;
a language model's rows (a tiny study on the tests' text) hold the verdict, baselines and grid, and resume."""

import json
import math
import os
import subprocess
import sys

import pytest
from test_lm_study import tiny_lm_study

from autolr.bench import cost, plain_grid
from autolr.jobs.builtin import BuiltinJob
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import kind_spec
from autolr.study.config import packaged_study
from autolr.training.train import train_trial


def test_a_plain_grid_run_trains_as_train_trial_does_under_cosine_to_zero():
    config = packaged_study("smoke").replace(epochs=2)
    splits = BuiltinJob(config, "cpu").splits
    plain = plain_grid.plain_cosine_run(config, splits, "cpu", 0.2)
    spec = ScheduleSpec("cosine", 0.2, {"min_factor": 0.0}, optimizer=config.optimizer)
    single = train_trial(spec, config.model, splits, 2, config.batch_size, config.seed)
    assert 0.8 < plain == pytest.approx(single.final_score, abs=1e-3)  # same batches, weights and LR per step


def test_the_plain_lm_run_trains_as_train_trial_does_under_the_recipes_warmup_cosine():
    config = tiny_lm_study(steps=20, eval_every=10)
    splits = BuiltinJob(config, "cpu").splits
    plain = plain_grid.plain_lm_run(config, splits, "cpu", 3e-3)  # torch.optim.AdamW, LambdaLR, clipping
    single = train_trial(kind_spec("warmup_cosine", 3e-3, config.optimizer), config.model, splits, 2,
                         config.batch_size, config.seed, metric="loss", grad_clip=1.0)
    assert 4.0 < plain == pytest.approx(single.final_score / math.log(2), rel=1e-6)  # bits per byte
    assert plain_grid.warmup_cosine(0, 2, 40) == 0.0 and plain_grid.warmup_cosine(2, 2, 40) == 1.0
    assert plain_grid.warmup_cosine(40, 2, 40) == pytest.approx(0.1)  # cosine to 10% of the peak


def test_each_study_runs_at_its_length_and_at_the_target():
    configs = cost.study_lengths(["mnist", "smoke"], None)
    assert [(c.dataset, c.verdict_epochs) for c in configs] == [("mnist", 3), ("mnist", 9), ("digits", 3),
                                                               ("digits", 9)]
    assert [c.verdict_epochs for c in cost.study_lengths(["smoke"], 3)] == [3]  # the target is the trial length
    lm = cost.study_lengths(["fortunes"])  # a language model's target: 4x its steps
    assert [(c.steps, c.target_steps, cost.row_key(c)) for c in lm] == [
        (400, None, "fortunes-400steps"), (400, 1600, "fortunes-1600steps")]
    assert [c.target_steps for c in cost.study_lengths(["fortunes"], target_steps=800, target_only=True)] == [800]


def test_a_tiny_lm_row_holds_the_verdict_baselines_and_grid_in_bits_and_resumes(tmp_path):
    config = tiny_lm_study(name="bench-cost-tiny-lm")
    configs = [config, config.replace(target_steps=8)]
    runs, out = tmp_path / "runs", tmp_path / "out"
    first = cost.run_cost(configs, runs, out)
    assert [(row.unit, row.length, row.verdict_length, row.trials) for row in first.rows] == [
        ("steps", 4, 4, 6), ("steps", 4, 8, 6)]
    parts = json.loads((out / cost.PARTS_FILE).read_text())
    for row in first.rows:
        assert row.grid_lrs == pytest.approx((1e-4, 0.1))  # a fixed range, not the study's range-test anchor
        (stored,) = parts["rows"][f"tiny-lm-{row.verdict_length}steps"]["repeats"]
        points = stored["grid_points"]
        assert len(points) == cost.GRID_POINTS and [p["lr"] for p in points] == pytest.approx(
            cost.lr_ladder(row.grid_lrs[0], row.grid_lrs[1], cost.GRID_POINTS))
        scores = [p["score"] for p in points if p["score"] is not None]
        assert row.grid_best_score == min(scores) and 4.0 < row.grid_best_score < 9.0  # bits per byte
        assert row.study_s == pytest.approx(sum(stored["study_attempts_s"]))
        assert row.grid_s == pytest.approx(stored["grid_data_s"] + sum(p["seconds"] for p in points))
        assert sorted(row.baselines) == ["schedule_free", "warmup_cosine", "warmup_linear", "wsd"]
        assert all(4.0 < scores["val"] < 16.0 and scores["lr"] > 0 for scores in row.baselines.values())
        assert row.outcome in ("gain", "no gain") and "validation loss (bits/byte)" in row.verdict
        assert row.score_name == "validation loss (bits/byte)" and row.threads >= 1 and "CPU" in row.hardware
    # the stored study's own numbers, converted to bits per byte
    from autolr.pipeline.run import run_study
    record = run_study(configs[1], out=runs / "tiny-lm-8steps").record
    cosine = next(item for item in record.rescored if item.baseline == "warmup_cosine")
    assert first.rows[1].baselines["warmup_cosine"]["val"] == pytest.approx(
        sum(cosine.val_scores) / len(cosine.val_scores) / math.log(2))
    # stopped during the second row's grid: the study is not run again, the missing points are trained
    key = "tiny-lm-8steps"
    (repeat,) = parts["rows"][key]["repeats"]
    scores = [p["score"] for p in repeat["grid_points"]]
    repeat["grid_points"] = repeat["grid_points"][:5]
    (out / cost.PARTS_FILE).write_text(json.dumps(parts))
    resumed = cost.run_cost(configs, runs, out)
    (again,) = json.loads((out / cost.PARTS_FILE).read_text())["rows"][key]["repeats"]
    assert len(again["study_attempts_s"]) == 1  # the study was not run again
    assert [p["score"] for p in again["grid_points"]] == pytest.approx(scores)  # 7 trained again, as before
    assert resumed.rows[1].grid_best_score == pytest.approx(first.rows[1].grid_best_score)
    assert resumed.rows[0] == first.rows[0]  # a finished row is read back, nothing trained
    cost.write_cost(resumed, out)
    table = (out / "cost.md").read_text()
    assert "| tiny-lm | 4 steps | 8 steps | 6 | 1 |" in table and "warmup_cosine" in table
    # a second repeat: a fresh study in its own folder and the grid again; each side's median, both kept
    twice = cost.run_cost(configs[:1], runs, out, repeats=2)
    (row,) = twice.rows
    assert len(row.study_runs_s) == len(row.grid_runs_s) == 2 and (runs / "tiny-lm-4steps-r1").is_dir()
    assert row.study_runs_s[0] == pytest.approx(first.rows[0].study_s)  # the first repeat was read back
    assert row.study_s == pytest.approx(sum(row.study_runs_s) / 2) and row.grid_s == pytest.approx(
        sum(row.grid_runs_s) / 2) and row.ratio == pytest.approx(row.study_s / row.grid_s)
    assert row.repeat_exports[1] == row.repeat_exports[0] == f"{row.outcome}, {row.exported}"
    cost.write_cost(twice, out)
    low, high = min(row.study_runs_s), max(row.study_runs_s)
    assert f"| 2 | {row.study_s:.1f} ({low:.1f}–{high:.1f}) |" in (out / "cost.md").read_text()


def test_parts_stored_before_repeats_are_read_as_the_first_repeat(tmp_path):
    path = tmp_path / cost.PARTS_FILE
    old = {"study_attempts_s": [3.0], "study": {"trials": 6}, "grid_data_s": 0.5, "grid_points": [{"lr": 0.1}]}
    path.write_text(json.dumps({"rows": {"mnist-3epochs": {"measured_on": {"threads": 2}, **old}}}))
    parts = cost.Parts(path)
    assert parts.repeats("mnist-3epochs") == [old]
    assert parts.row("mnist-3epochs") == {"measured_on": {"threads": 2}, "repeats": [old]}
    assert parts.repeats("mnist-9epochs") == []


@pytest.mark.parametrize(("arguments", "message"), [
    (["--study", "nosuch"], "error: unknown built-in study 'nosuch'; choose one of fashion-mnist, fortunes, mnist, "
                            "smoke"),
    (["--quick", "--target-epochs", "0"], "Invalid value for '--target-epochs'"),
    (["--study", "fortunes", "--target-epochs", "9"], "not target_epochs"),
    (["--study", "mnist", "--target-steps", "900"], "steps is for text datasets"),
])
def test_a_bad_argument_exits_2_with_one_sentence_and_writes_nothing(tmp_path, arguments, message):
    result = subprocess.run([sys.executable, "-m", "autolr", "bench", "cost", *arguments, "--out-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_quick_run_writes_both_wall_times_and_their_ratio(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autolr", "bench", "cost", "--quick", "--target-epochs", "3",
                             "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    payload = json.loads((tmp_path / "cost.json").read_text())
    (row,) = payload["rows"]
    assert (row["study"], row["unit"], row["length"], row["verdict_length"], row["trials"]) == ("smoke", "epochs", 3,
                                                                                                3, 8)
    assert row["study_s"] > 0 and row["grid_s"] > 0 and row["ratio"] == pytest.approx(row["study_s"] / row["grid_s"])
    low, high = row["grid_lrs"]
    assert low < row["grid_best_lr"] <= high and row["grid_best_score"] > 0.9
    assert payload["threads"] >= 1 and payload["torch"] and "CPU" in payload["hardware"]
    table = (tmp_path / "cost.md").read_text()
    assert (f"| smoke | 3 epochs | 3 epochs | 8 | 1 | {row['study_s']:.1f} | {row['grid_s']:.1f} "
            f"| {row['ratio']:.1f}x |") in table


def test_the_warm_up_pays_the_lazy_dynamo_import_that_any_torch_script_pays_once():
    code = ("import sys; from autolr.bench.cost import warm_up_torch; before = 'torch._dynamo' in sys.modules; "
            "warm_up_torch('cpu'); print(before, 'torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.stdout.split() == ["False", "True"]
