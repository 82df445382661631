"""`autolr search` as a user runs it: a smoke study end to end, resume, bad flags, the exported spec in a torch loop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

from autolr.backends.optuna.engine import read_study_record
from autolr.backends.optuna.storage import sqlite_url
from autolr.schedule.spec import load_spec
from reliability_support import run_cli, signal_while_training, start_cli

SMOKE = str(Path(__file__).resolve().parent.parent / "studies" / "smoke.toml")
TINY = ["--study", SMOKE, "--epochs", "2", "--population", "3"]


def autolr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolr", "search", *args], capture_output=True, text=True, cwd=cwd)


def autolr_in_process(args: list[str], cwd: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """The CLI's entry point in this process (same error handling as the installed command)."""
    from autolr.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["autolr", "search", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A tiny smoke study (5 trials), then the same command with 7 trials, re-scoring the top 1 on 3 seeds: a resume."""
    cwd = tmp_path_factory.mktemp("cli")
    first = autolr(*TINY, "--trials", "5", "--json", cwd=cwd)
    assert first.returncode == 0, first.stderr
    storage = sqlite_url(cwd / "reports" / "smoke" / "study.db")
    before = read_study_record(storage)
    second = autolr(*TINY, "--trials", "7", "--rescore-top", "1", "--rescore-seeds", "3", "--quiet", cwd=cwd)
    assert second.returncode == 0, second.stderr
    return cwd, json.loads(first.stdout), before, read_study_record(storage), second.stdout


@pytest.mark.slow
def test_smoke_run_writes_report_trials_and_best_schedule(smoke_run):
    cwd, summary, before, _, _ = smoke_run
    run_dir = cwd / "reports" / "smoke"
    for name in ("index.html", "trials.csv", "best_schedule.json"):
        assert (run_dir / name).stat().st_size > 0
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] + summary["counts"]["diverged"] == 5
    assert summary["best_schedule"] == "reports/smoke/best_schedule.json"
    assert summary["best_spec"]["provenance"]["study"] == "smoke"
    assert summary["data_source"].startswith("scikit-learn load_digits")  # says where the data came from
    assert 0.5 < summary["best_score"] <= 1.0 and 0.5 < summary["test_score"] <= 1.0  # 10 digit classes: chance is 0.1
    assert {t.baseline for t in before.trials} >= {"constant#1", "cosine#1", "onecycle#1", "linear#1"}
    assert len(before.rescored) >= 4 and all(len(r.val_scores) == 2 for r in before.rescored)  # 2 fresh seeds
    verdict = summary["verdict"]
    assert verdict["outcome"] in ("gain", "no gain", "no searched") and verdict["val_gain"] is not None
    assert verdict["sentence"] == summary["best_spec"]["provenance"]["verdict_text"]
    if verdict["outcome"] != "gain":  # Occam: a baseline unless the search won with its interval above zero
        assert summary["best_spec"]["provenance"]["trial"] in {t.number for t in before.trials if t.baseline}
    study = optuna.load_study(study_name="smoke", storage=sqlite_url(run_dir / "study.db"))
    assert study.metric_names == ["val_accuracy"]  # how optuna-dashboard labels the score


@pytest.mark.slow
def test_rerun_resumes_keeping_every_finished_trial_and_the_range_test(smoke_run):
    cwd, _, before, after, stdout = smoke_run
    assert len(after.trials) == 7
    kept = {t.number: t for t in after.trials}
    for trial in before.trials:
        assert kept[trial.number] == trial  # same state, spec, curve, value, epochs, duration
    assert after.range_test == before.range_test
    assert sum(t.baseline is not None for t in after.trials) == 4  # not queued again
    assert "best_schedule.json" in stdout and "build(optimizer, epochs)" in stdout
    assert "Verdict:       " in stdout
    assert "best searched:" not in stdout or "95% CI" in stdout  # 3 fresh seeds: a paired interval
    assert "Data:          digits from scikit-learn load_digits" in stdout
    # --rescore-top 1 --rescore-seeds 3 (not the study file's 2 and 2): the baselines and the best other trial, 3 seeds each
    assert all(len(r.val_scores) == len(r.test_scores) == 3 for r in after.rescored)
    assert len([r for r in after.rescored if r.baseline is None]) <= 1 and len(after.rescored) >= 4


@pytest.mark.parametrize("flags, stored, given", [
    (["--model", "cnn"], 'model = "mlp"', '"cnn"'),
    (["--optimizer", "adamw"],  # sgd's momentum and nesterov, and its L2 weight decay, are not adamw's settings
     'optimizer = {"name": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005}', '{"name": "adamw"}'),
    (["--optimizer", "adam"], '"weight_decay": 0.0005}', '{"name": "adam", "weight_decay": 0.0005}'),
    (["--batch-size", "32"], "batch_size = 64", "32"),
], ids=["model", "optimizer adamw", "optimizer adam", "batch size"])
@pytest.mark.slow
def test_flags_override_the_study_file(smoke_run, monkeypatch, capsys, flags, stored, given):
    """Each flag reaches the study definition: against the stored smoke study it is the one difference named."""
    cwd, _, _, after, _ = smoke_run
    code, _, err = autolr_in_process([*TINY, "--trials", "7", *flags], cwd, monkeypatch, capsys)
    assert code == 2, err
    assert f"{stored}, not {given};" in err
    assert read_study_record(sqlite_url(cwd / "reports" / "smoke" / "study.db")) == after


@pytest.mark.slow
def test_exported_spec_drives_a_plain_torch_loop_stepped_once_per_epoch(smoke_run):
    cwd = smoke_run[0]
    spec = load_spec(cwd / "reports" / "smoke" / "best_schedule.json")
    epochs = 6
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=0.9)
    scheduler = spec.build(optimizer, epochs)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    seen = []
    for epoch in range(epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        for start in range(0, 64, 16):
            loss = torch.nn.functional.mse_loss(model(x[start:start + 16]), y[start:start + 16])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([spec.lr_at(epoch, epochs) for epoch in range(epochs)])


@pytest.mark.slow
def test_conflicting_rerun_exits_2_and_leaves_the_study_untouched(smoke_run):
    cwd, _, _, after, _ = smoke_run
    result = autolr(*TINY, "--trials", "7", "--epochs", "3", cwd=cwd)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "epochs = 2, not 3" in result.stderr
    assert read_study_record(sqlite_url(cwd / "reports" / "smoke" / "study.db")) == after


@pytest.mark.parametrize("flags, words", [
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--trials", "-1"], "trials must be a positive integer"),
    (["--sampler", "grid"], "unknown sampler 'grid'"),
    (["--pruner", "patient"], "unknown pruner 'patient'"),
    (["--families", "cosine,sawtooth"], "unknown family 'sawtooth'"),
    (["--backend", "dask"], "unknown backend 'dask'"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["--batch-size", "0"], "batch_size must be a positive integer, got 0"),
    (["--rescore-seeds", "1"], "paired interval needs 2 seeds, got 1"),
    (["--rescore-top", "-1"], "rescore top must be a non-negative integer, got -1"),
    (["--storage", "redis://localhost/0"], "unsupported storage URL"),
    (["--storage", "postgresql://autolr:hunter2@127.0.0.1:9/autolr"], "cannot open storage"),
    (["--study", "missing.toml"], "cannot read study file"),
    ([], "give --dataset NAME"),
])
def test_bad_flags_exit_2_with_one_sentence(tmp_path, monkeypatch, capsys, flags, words):
    args = flags if "--study" in flags or "--dataset" in flags or not flags else ["--study", SMOKE, *flags]
    code, out, err = autolr_in_process(args, tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in err and "hunter2" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "reports" / "smoke" / "trials.csv").exists()


def test_not_an_integer_exits_2_without_traceback(tmp_path):
    result = autolr("--study", SMOKE, "--epochs", "many", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--epochs" in result.stderr


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    study = tmp_path / "smoke.toml"  # the smoke study with the re-scoring cut to the baselines on two seeds
    study.write_text(Path(SMOKE).read_text().replace("top = 2", "top = 0"))
    # 16 trials in populations of 2: once two finished, about 7 populations are still to come, so
    # the Ctrl-C lands mid-search even on a loaded machine.
    args = ["search", "--study", str(study), "--trials", "16", "--population", "2", "--epochs", "4",
            "--pruner", "none", "--out", str(tmp_path / "reports"), "--quiet"]  # no pruning: a short curve is training
    storage = sqlite_url(tmp_path / "reports" / "smoke" / "study.db")
    running = start_cli(tmp_path, "interrupted", *args)
    at_signal = signal_while_training(  # two trials finished and a population has two of its four epochs or more to go
        running, storage, "smoke",
        lambda record: sum(t.state == "complete" for t in record.trials) >= 2
        and any(t.state == "running" and 1 <= len(t.val_curve) <= 2 for t in record.trials),
        signal.SIGINT,
    )
    running.process.wait(timeout=120)
    process, stderr = running.process, running.output()[1]
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "rerun the same command to resume" in stderr
    stopped = read_study_record(storage)
    assert not [t for t in stopped.trials if t.state == "running"]
    interrupted = [t for t in stopped.trials if t.state == "interrupted"]
    training = {t.number for t in at_signal.trials if t.state == "running" and len(t.val_curve) < 4}
    assert training and training <= {t.number for t in interrupted}  # the population in flight, kept apart from failures

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    record = read_study_record(storage)
    assert sum(t.state != "interrupted" for t in record.trials) == 16
    for trial in interrupted:  # each ran again, later, with the same schedule
        assert any(t.number > trial.number and t.spec == trial.spec and t.state != "interrupted" for t in record.trials)
    finished_before = {t.number: t for t in stopped.trials if t.state != "interrupted"}
    assert all(record.trials[number] == trial for number, trial in finished_before.items())


def test_a_budgeted_search_tunes_cosine_first_and_its_budget_line_names_what_it_cut(tmp_path, monkeypatch, capsys):
    # the smoke study (one-rung ladders of 4 kinds, populations of 3): cosine's rung and 2 searched fill the first
    # population; no time is left, so the search keeps those 2 (at least one kind's ladder) and no other kind is tuned
    code, out, err = autolr_in_process([*TINY, "--budget", "0.0001"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    budget = next(line for line in out.splitlines() if line.startswith("Budget:"))
    assert budget.startswith("Budget:        To fit its 0.0001-minute budget the study cut search trials 4 -> 2; "
                             "re-scored searched configurations 2 -> 1; tuned baseline kinds 4 -> 1 (cosine to zero, "
                             "the schedule of the plain grid); even so it needs about"), budget
    trials = read_study_record(sqlite_url(tmp_path / "reports" / "smoke" / "study.db")).trials
    assert [t.baseline for t in trials] == ["cosine#1", None, None]
