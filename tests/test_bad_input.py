"""Bad input, table-driven: each row is one clear sentence on stderr, exit status 2, no traceback,
and a study already in storage left exactly as it was.

The rows run the real command line (``autolr.cli.main``) in this process, so a traceback
would surface here as an uncaught exception; one row also runs as a separate process.
Every search row points at the storage of a study made beforehand, whose file checksum
and trials are compared before and after.
"""

from __future__ import annotations

import gc
import hashlib
import json
import socket
import sqlite3
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

import autolr
from autolr.backends.optuna.storage import sqlite_url
from autolr.cli import main
from autolr.space.search_space import SearchSpace
from reliability_support import read_record, run_cli, write_study

PASSWORD = "hunter2-Bad-Input"
SPECS = {
    "malformed.json": '{"autolr_spec": 1, "family": ',
    "malformed.yaml": "autolr_spec: 1\nfamily: [cosine\n",
    "malformed.toml": "autolr_spec = 1\nfamily = = 'cosine'\n",
    "negative-lr.json": json.dumps({"autolr_spec": 1, "family": "cosine", "lr": -0.1}),
    "huge-lr.json": json.dumps({"autolr_spec": 1, "family": "cosine", "lr": 1e308}),
    "unordered-milestones.yaml": "autolr_spec: 1\nfamily: multistep\nlr: 0.1\nparams: {milestones: [0.75, 0.5]}\n",
    "pct-start-one.toml": 'autolr_spec = 1\nfamily = "onecycle"\nlr = 0.1\n[params]\npct_start = 1.0\n',
    "pct-start-zero.json": json.dumps({"autolr_spec": 1, "family": "onecycle", "lr": 0.1, "params": {"pct_start": 0}}),
    "cycle-mult.json": json.dumps({"autolr_spec": 1, "family": "cosine_restarts", "lr": 0.1,
                                   "params": {"cycle_mult": 0}}),
    "unknown-key.json": json.dumps({"autolr_spec": 1, "family": "cosine", "lr": 0.1, "momentum": 0.9}),
    "unknown-param.yaml": "autolr_spec: 1\nfamily: cosine\nlr: 0.1\nparams: {T_max: 10}\n",
    "unknown-family.json": json.dumps({"autolr_spec": 1, "family": "warp_drive", "lr": 0.1}),
    "schedule.txt": "autolr_spec = 1\n",
}


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a study made beforehand (premade/study.db) and every bad file of the table."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "premade").mkdir()

    def objective(schedule, trial) -> float:
        return -abs(schedule.lr - 0.1)

    space = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine"))
    database = root / "premade" / "study.db"
    autolr.search(objective, space=space, n_trials=4, storage=sqlite_url(database),
                  study_name="premade", epochs=1, sampler="random", pruner="none", baseline_lrs=0, rescore_seeds=0)
    gc.collect()  # the search's connections close, so the checkpoint below is the last write
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    write_study(root / "tiny.toml")
    write_study(root / "unknown-model.toml", model="resnet9000")
    write_study(root / "momentum-1.5.toml", optimizer={"name": "sgd", "momentum": 1.5})
    (root / "malformed.toml").write_text('name = "x"\ndataset = [\n')
    (root / "not-utf8.toml").write_bytes(b'name = "\xff\xfe"\n')
    (root / "folder.toml").mkdir()
    (root / "empty-data").mkdir()
    (root / "out").mkdir()
    for name, text in SPECS.items():
        (root / name).write_text(text)
    (root / "folder.json").mkdir()
    return root


def search_args(root: Path, *extra: str, study: str = "tiny.toml") -> list[str]:
    """``search`` of a study file aimed at the made study's storage and name (later flags win)."""
    return ["search", "--study", str(root / study), "--storage", sqlite_url(root / "premade" / "study.db"),
            "--name", "premade", "--out", str(root / "out"), "--quiet", *extra]


def fresh_study_args(root: Path, *extra: str) -> list[str]:
    """``search`` of a new study in a storage of its own (for errors found after the study opens)."""
    return search_args(root, "--name", "fresh", "--storage", sqlite_url(root / "out" / "fresh.db"), *extra)


# (id, arguments given the inputs folder, words the one-sentence message must contain)
ROWS = [
    ("unknown dataset", lambda r: search_args(r, "--dataset", "imagenet-22k"), ["dataset", "imagenet-22k"]),
    ("unknown model", lambda r: search_args(r, study="unknown-model.toml"), ["model", "resnet9000"]),
    ("unknown family", lambda r: search_args(r, "--families", "cosine,warp_drive"), ["family", "warp_drive"]),
    ("unknown sampler", lambda r: search_args(r, "--sampler", "annealing"), ["sampler", "annealing"]),
    ("unknown pruner", lambda r: search_args(r, "--pruner", "sometimes"), ["pruner", "sometimes"]),
    ("unknown backend", lambda r: search_args(r, "--backend", "spark"), ["backend", "spark"]),
    ("neither dataset nor study", lambda r: ["search", "--out", str(r / "out")], ["--dataset", "--study"]),
    ("missing study file", lambda r: search_args(r, study="no-such-study.toml"), ["no-such-study.toml"]),
    ("study file is a folder", lambda r: search_args(r, study="folder.toml"), ["folder.toml"]),
    ("study file not UTF-8", lambda r: search_args(r, study="not-utf8.toml"), ["not-utf8.toml"]),
    ("malformed study TOML", lambda r: search_args(r, study="malformed.toml"), ["malformed.toml", "TOML"]),
    ("momentum of 1.5", lambda r: search_args(r, study="momentum-1.5.toml"), ["optimizer.momentum", "1.5"]),
    ("unknown model flag", lambda r: search_args(r, "--model", "resnet9000"), ["model", "resnet9000"]),
    ("unknown optimizer", lambda r: search_args(r, "--optimizer", "rmsprop"), ["optimizer", "rmsprop"]),
    ("batch size zero", lambda r: search_args(r, "--batch-size", "0"), ["batch_size", "0"]),
    ("rescore seeds one", lambda r: search_args(r, "--rescore-seeds", "1"), ["rescore_seeds", "at least 2", "got 1"]),
    ("rescore top negative", lambda r: search_args(r, "--rescore-top", "-2"), ["rescore top", "-2"]),
    ("epochs zero", lambda r: search_args(r, "--epochs", "0"), ["epochs", "0"]),
    ("epochs negative", lambda r: search_args(r, "--epochs", "-3"), ["epochs", "-3"]),
    ("trials zero", lambda r: search_args(r, "--trials", "0"), ["trials", "0"]),
    ("trials negative", lambda r: search_args(r, "--trials", "-1"), ["trials", "-1"]),
    ("trials all baselines", lambda r: search_args(r, "--trials", "4"), ["trials = 4", "tuned-baseline"]),
    ("target epochs zero", lambda r: search_args(r, "--target-epochs", "0"), ["target_epochs", "0"]),
    ("budget zero", lambda r: search_args(r, "--budget", "0"), ["budget", "minutes", "0"]),
    ("budget on ray", lambda r: search_args(r, "--budget", "5", "--backend", "ray"), ["budget", "optuna"]),
    ("budget and full", lambda r: search_args(r, "--budget", "5", "--full"), ["--budget", "--full", "not both"]),
    ("workers zero", lambda r: search_args(r, "--workers", "0"), ["workers", "0"]),
    ("unsupported storage URL", lambda r: search_args(r, "--storage", "redis://127.0.0.1/0"), ["redis"]),
    ("storage folder missing", lambda r: search_args(r, "--storage", sqlite_url(r / "nowhere" / "s.db")),
     ["nowhere"]),
    ("unreachable database", lambda r: search_args(
        r, "--storage", f"postgresql://autolr:{PASSWORD}@127.0.0.1:{closed_port()}/studies"), ["storage", "***"]),
    ("data dir without the files", lambda r: fresh_study_args(
        r, "--dataset", "mnist", "--data-dir", str(r / "empty-data")), ["empty-data", "mnist"]),
    ("a different study under the same name", lambda r: search_args(r), ["premade", "created with"]),
    ("missing spec file", lambda r: ["schedule", "show", str(r / "no-such-spec.json")], ["no-such-spec.json"]),
    ("spec file is a folder", lambda r: ["schedule", "show", str(r / "folder.json")], ["folder.json"]),
    ("spec without a format", lambda r: ["schedule", "show", str(r / "schedule.txt")], ["schedule.txt", ".json"]),
    ("malformed spec JSON", lambda r: ["schedule", "show", str(r / "malformed.json")], ["malformed.json", "JSON"]),
    ("malformed spec YAML", lambda r: ["schedule", "show", str(r / "malformed.yaml")], ["malformed.yaml", "YAML"]),
    ("malformed spec TOML", lambda r: ["schedule", "export", str(r / "malformed.toml"), "--format", "json"],
     ["malformed.toml", "TOML"]),
    ("negative LR", lambda r: ["schedule", "show", str(r / "negative-lr.json")], ["lr", "-0.1"]),
    ("unordered milestones", lambda r: ["schedule", "show", str(r / "unordered-milestones.yaml")],
     ["milestones", "increasing"]),
    ("pct_start of 1", lambda r: ["schedule", "show", str(r / "pct-start-one.toml")], ["pct_start", "(0, 1)"]),
    ("pct_start of 0", lambda r: ["schedule", "show", str(r / "pct-start-zero.json")], ["pct_start", "(0, 1)"]),
    ("cycle_mult below 1", lambda r: ["schedule", "show", str(r / "cycle-mult.json")], ["cycle_mult", "[1, 1000]"]),
    ("huge LR", lambda r: ["schedule", "show", str(r / "huge-lr.json")], ["lr", "(0, 1000]", "1e+308"]),
    ("unknown spec key", lambda r: ["schedule", "show", str(r / "unknown-key.json")], ["momentum"]),
    ("unknown family parameter", lambda r: ["schedule", "show", str(r / "unknown-param.yaml")], ["T_max"]),
    ("unknown family in a spec", lambda r: ["schedule", "show", str(r / "unknown-family.json")], ["warp_drive"]),
    ("bench runs folder that cannot be created", lambda r: [
        "bench", "verdict", "--quick", "--runs-dir", "/proc/1/nonexistent", "--out-dir", str(r / "out")],
     ["runs folder", "/proc/1/nonexistent", "cannot be created"]),
    ("epochs not an integer", lambda r: search_args(r, "--epochs", "abc"), ["--epochs", "valid integer", "--help"]),
    ("unknown option", lambda r: search_args(r, "--epoch", "3"), ["No such option: --epoch", "--epochs"]),
    ("missing spec argument", lambda r: ["schedule", "show"], ["Missing argument", "spec_file"]),
    ("show steps zero", lambda r: ["schedule", "show", str(r / "negative-lr.json"), "--steps", "0"],
     ["--steps", "greater than or equal to 1"]),
    ("report of a missing study", lambda r: ["report", str(r / "no-such-study")], ["no-such-study"]),
    ("report of a storage without that study", lambda r: [
        "report", sqlite_url(r / "premade" / "study.db"), "--study", "other", "--out", str(r / "out")], ["other"]),
]


def stored_study(root: Path) -> tuple[str, dict]:
    """The made study's checksum (database and write-ahead log, so an uncheckpointed write
    counts) and the study as the report reads it."""
    database = root / "premade" / "study.db"
    log = database.with_name("study.db-wal")
    checksum = hashlib.sha256(database.read_bytes() + (log.read_bytes() if log.exists() else b""))
    return checksum.hexdigest(), asdict(read_record(sqlite_url(database), "premade"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("arguments", "words"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_one_sentence_exit_2_and_the_study_untouched(
    inputs: Path, arguments, words: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    before = stored_study(inputs)
    monkeypatch.setattr(sys, "argv", ["autolr", *arguments(inputs)])
    with pytest.raises(SystemExit) as exit_info:
        main()  # any exception but SystemExit fails the test: the user would have seen a traceback
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in stderr and PASSWORD not in stderr
    assert stored_study(inputs) == before


@pytest.mark.slow
def test_bad_input_in_a_separate_process(inputs: Path) -> None:
    """The same promise from the installed entry point: exit 2, one line, no traceback, no password."""
    url = f"postgresql://autolr:{PASSWORD}@127.0.0.1:{closed_port()}/studies"
    result = run_cli(*search_args(inputs, "--storage", url))
    assert result.returncode == 2
    assert len(error_lines(result.stderr)) == 1 and "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_the_table_covers_the_issue() -> None:
    """Every kind of bad input the issue names has a row (a missing row fails here, not silently)."""
    named = {row[0] for row in ROWS}
    required = {
        "unknown dataset", "unknown model", "unknown family", "unknown sampler", "unknown pruner",
        "unknown backend", "missing study file", "missing spec file", "malformed spec JSON",
        "malformed spec YAML", "malformed spec TOML", "malformed study TOML", "negative LR",
        "unordered milestones", "pct_start of 1", "cycle_mult below 1", "unknown spec key",
        "unsupported storage URL", "unreachable database", "data dir without the files", "epochs zero",
        "trials zero", "momentum of 1.5", "huge LR", "rescore seeds one", "bench runs folder that cannot be created",
        "epochs not an integer", "show steps zero",
    }
    assert required <= named


@pytest.mark.slow
def test_a_rejected_study_stores_nothing_and_the_corrected_rerun_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``momentum = 1.5`` is refused before anything is stored, so the same name with the value
    corrected is a new study that runs, not "a different optimizer"."""
    storage = tmp_path / "study.db"
    arguments = ["search", "--study", str(tmp_path / "study.toml"), "--storage", sqlite_url(storage),
                 "--out", str(tmp_path / "out"), "--quiet"]
    small = {"epochs": 1, "trials": 2, "families": ["constant"], "baseline_lrs": 0, "population": 2,
             "rescore": {"top": 1, "seeds": 2}}
    monkeypatch.setattr(sys, "argv", ["autolr", *arguments])
    write_study(tmp_path / "study.toml", **small, optimizer={"name": "sgd", "momentum": 1.5})
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert not storage.exists() and not (tmp_path / "out").exists()

    write_study(tmp_path / "study.toml", **small, optimizer={"name": "sgd", "momentum": 0.9})
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    record = read_record(sqlite_url(storage), "tiny")
    assert record is not None and record.config["optimizer"] == {"name": "sgd", "momentum": 0.9}
    assert sum(trial.state == "complete" for trial in record.trials) == 2
