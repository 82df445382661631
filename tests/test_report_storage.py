"""`autolr report` on real Optuna storages: the files agree with the storage, even mid-search."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading

import optuna
import pandas as pd
import pytest

from typer.testing import CliRunner

from autolr.backends.optuna.storage import journal_url, sqlite_url
from autolr.cli import app
from autolr.errors import UserError
from autolr.study.records import TRIAL_SPEC_KEY
from autolr.search import search
from autolr.study.records import RescoreRecord
from autolr.space.search_space import SearchSpace
from autolr.schedule.spec import load_spec
from quadratic_objective import quadratic_objective

def run_search(storage_url: str, trials: int, epochs: int) -> None:
    """A real search on a quadratic bowl (score = -loss)."""
    objective = quadratic_objective(epochs)
    space = SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant", "cosine", "step"))
    search(objective, space=space, n_trials=trials, storage=storage_url, study_name="demo", epochs=epochs, seed=0,
           baseline_lrs=1, rescore_seeds=2)


def report(*args: str):
    """``autolr report ARGS`` in this process (typer's runner); a UserError is left in ``.exception``."""
    return CliRunner().invoke(app, ["report", *args])


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A finished 8-trial search stored in <tmp>/reports/demo/study.db."""
    root = tmp_path_factory.mktemp("work")
    folder = root / "reports" / "demo"
    folder.mkdir(parents=True)
    url = sqlite_url(folder / "study.db")
    run_search(url, trials=8, epochs=4)
    return root, folder, url


def test_report_by_study_name_agrees_with_the_storage(finished_study, monkeypatch):
    root, folder, url = finished_study
    monkeypatch.chdir(root)
    result = report("demo")
    assert result.exit_code == 0, result.output
    assert "reports/demo/index.html" in result.output

    study = optuna.load_study(study_name="demo", storage=url)
    stored = {trial.number: trial for trial in study.trials}
    table = pd.read_csv(folder / "trials.csv").set_index("number")
    assert set(table.index) <= set(stored) and len(table) >= 8
    for number, row in table.iterrows():
        trial = stored[number]
        spec = trial.user_attrs[TRIAL_SPEC_KEY]
        assert (row["family"], row["lr"]) == (spec["family"], spec["lr"])
        curve = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
        assert [row[f"val_epoch_{epoch + 1}"] for epoch in range(len(curve))] == pytest.approx(curve)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert row["state"] == "complete" and row["value"] == pytest.approx(trial.value)

    best = load_spec(folder / "best_schedule.json")  # the verdict's export, as the study stored it
    exported = RescoreRecord(**study.user_attrs["autolr.study.rescore"][study.user_attrs["autolr.verdict"]["exported"]])
    assert (best.family, best.lr) == (exported.spec["family"], exported.spec["lr"])
    assert best.provenance["trial"] == exported.trial_number
    assert best.provenance["val_mean"] == pytest.approx(sum(exported.val_scores) / len(exported.val_scores))


def test_report_to_another_folder_from_a_storage_url(finished_study, tmp_path):
    _, _, url = finished_study
    result = report(url, "--out", str(tmp_path / "elsewhere"), "--study", "demo")
    assert result.exit_code == 0, result.output
    ranking = pd.read_csv(tmp_path / "elsewhere" / "ranking.csv")
    assert ranking["rank"].tolist() == list(range(1, len(ranking) + 1))
    values = ranking["val_mean"].tolist()
    assert values == sorted(values, reverse=True)


@pytest.mark.slow
def test_report_built_while_the_search_still_writes(tmp_path):
    """The search (in a thread, with its own storage connection) holds its third trial open
    while the report is built, so the page is partial and the counts are known exactly."""
    folder = tmp_path / "live"
    folder.mkdir()
    url = sqlite_url(folder / "study.db")
    third_trial_started, report_built = threading.Event(), threading.Event()
    calls = itertools.count()
    train = quadratic_objective(epochs=4)

    def objective(schedule, trial):
        if next(calls) == 2:
            third_trial_started.set()
            report_built.wait()
        return train(schedule, trial)

    space = SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant", "cosine", "step"))
    searching = threading.Thread(target=search, args=(objective,), kwargs=dict(
        space=space, n_trials=5, storage=url, study_name="demo", epochs=4, seed=0, pruner="none", baseline_lrs=0,
        rescore_seeds=0))
    searching.start()
    try:
        assert third_trial_started.wait(timeout=300), "the search never reached its third trial"
        result = report(str(folder))
    finally:
        report_built.set()
        searching.join()
    assert result.exit_code == 0, result.output
    assert "Partial report: the search is still running (1 trials in progress)" in (folder / "index.html").read_text()
    assert pd.read_csv(folder / "trials.csv")["state"].value_counts().to_dict() == {"complete": 2, "running": 1}
    stored = optuna.load_study(study_name="demo", storage=url).trials
    assert [trial.state for trial in stored] == [optuna.trial.TrialState.COMPLETE] * 5  # nothing lost by the reading


def test_unknown_study_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autolr", "report", "no-such-study"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "no-such-study" in result.stderr


def test_unreachable_database_never_shows_its_password():
    result = report("postgresql://autolr:hunter2-s3cret@127.0.0.1:9/studies")
    assert isinstance(result.exception, UserError)
    assert "hunter2" not in str(result.exception) + result.output
    assert "postgresql://autolr:***@127.0.0.1:9/studies" in str(result.exception)


def test_report_of_a_postgresql_study_never_writes_its_password(postgres_url, postgres_server, tmp_path, monkeypatch):
    run_search(postgres_url, trials=6, epochs=2)
    monkeypatch.chdir(tmp_path)
    result = report(postgres_url)  # no --out: a database server's study goes to reports/<study>
    assert result.exit_code == 0, result.output
    folder = tmp_path / "reports" / "demo"
    assert len(pd.read_csv(folder / "trials.csv")) == 6
    written = [path for path in folder.rglob("*") if path.is_file() and path.name != "plotly.min.js"]
    assert {path.name for path in written} >= {"index.html", "trials.csv", "best_schedule.json", "charts.json"}
    for path in written:
        assert postgres_server.password not in path.read_text(), path.name
    assert postgres_server.password not in result.output


def test_report_of_a_journal_file_study_by_its_path(tmp_path):
    log = tmp_path / "study.log"
    run_search(journal_url(log), trials=6, epochs=2)
    result = report(str(log))
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "trials.csv")) == 6
    assert load_spec(tmp_path / "best_schedule.json").provenance["study"] == "demo"


def test_reading_a_sqlite_study_never_waits_for_the_write_lock(finished_study):
    import sqlite3
    import threading

    from autolr.backends.optuna.engine import read_study_record

    _, folder, url = finished_study
    writer = sqlite3.connect(folder / "study.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a searching process holds the write lock
    read: list = []
    try:
        reader = threading.Thread(target=lambda: read.append(read_study_record(url, "demo")), daemon=True)
        reader.start()
        reader.join(timeout=20)  # a writer's transaction would wait 60 s for the lock
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert read and len(read[0].trials) == 8
