"""Test helper for the reliability tests: run `autolr` as a real process, read a study while it runs."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import tomli_w

from autolr.errors import StudyError
from autolr.study.records import StudyRecord

# A study small enough for the test suite: 8x8 digits, a tiny MLP, 4 trials per population.
TINY_STUDY = {
    "name": "tiny", "dataset": "digits", "model": "mlp", "epochs": 6, "trials": 20,
    "families": ["constant", "cosine", "exponential"], "warmup": False, "batch_size": 64,
    "population": 4, "seed": 0, "device": "cpu", "rescore": {"top": 1, "seeds": 2}, "baseline_lrs": 1,
    "schedule_free": False,
}
FINISHED_STATES = ("complete", "pruned", "diverged", "failed")


def write_study(path: Path, **changes: Any) -> Path:
    """Write ``TINY_STUDY`` with ``changes`` as a study TOML file."""
    path.write_text(tomli_w.dumps({**TINY_STUDY, **changes}), encoding="utf-8")
    return path


def autolr_command(*args: str) -> list[str]:
    """The command line that runs autolr with this interpreter."""
    return [sys.executable, "-m", "autolr", *args]


def cli_env() -> dict[str, str]:
    """The environment of a CLI run: one torch thread, so test runs stay on one core each."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``autolr ARGS`` to the end and capture its output."""
    return subprocess.run(autolr_command(*args), capture_output=True, text=True, timeout=timeout, env=cli_env())


@dataclasses.dataclass
class Running:
    """A started ``autolr`` process (its own session, so a signal can reach its whole group)."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


def start_cli(log_dir: Path, tag: str, *args: str) -> Running:
    """Start ``autolr ARGS`` in the background, output into files (no pipe can fill up)."""
    stdout, stderr = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(autolr_command(*args), stdout=out, stderr=err, env=cli_env(),
                                   start_new_session=True)
    return Running(process, stdout, stderr)


def read_record(storage_url: str, study_name: str) -> StudyRecord | None:
    """The stored study as the report reads it, or None before the study exists."""
    from autolr.backends.optuna.engine import read_study_record

    try:
        return read_study_record(storage_url, study_name)
    except StudyError:
        return None


def wait_for_record(
    running: Running, storage_url: str, study_name: str, ready: Callable[[StudyRecord], bool], timeout: float = 240
) -> StudyRecord:
    """Poll the storage every 50 ms until ``ready(record)``; fail if the process ends first or time runs out."""
    import optuna

    from autolr.backends.optuna.engine import study_record
    from autolr.backends.optuna.storage import open_storage

    deadline, study = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if study is None:
            try:
                study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url, reader=True))
            except (KeyError, StudyError):  # the run has not created its storage or study yet
                pass
        if study is not None:
            record = study_record(study)
            if ready(record):
                return record
        if running.process.poll() is not None:
            raise AssertionError(f"autolr ended ({running.process.returncode}) before the awaited state: "
                                 f"{running.output()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"the awaited state did not come within {timeout} s")


def signal_while_training(
    running: Running, storage_url: str, study_name: str, ready: Callable[[StudyRecord], bool], signum: int,
    whole_group: bool = True,
) -> StudyRecord:
    """Send ``signum`` to the run's process group (or to its main process alone) at a moment
    when ``ready(record)`` holds; return that record.

    A poll sees the study some milliseconds before a signal lands, long enough for a tiny
    population to finish meanwhile. So the group is frozen (SIGSTOP) first and the study read
    again: when ``ready`` still holds, the signal is sent and the group resumed (SIGCONT), so
    the signal lands exactly in the state returned; otherwise the group resumes and polling goes on.
    """
    group = running.process.pid
    while True:
        wait_for_record(running, storage_url, study_name, ready)
        os.killpg(group, signal.SIGSTOP)
        frozen = read_record(storage_url, study_name)
        if frozen is not None and ready(frozen):
            if whole_group:
                os.killpg(group, signum)
            else:
                os.kill(running.process.pid, signum)
            os.killpg(group, signal.SIGCONT)
            return frozen
        os.killpg(group, signal.SIGCONT)


def numbers_in(record: StudyRecord, *wanted: str) -> set[int]:
    """Numbers of the trials in any of the ``wanted`` states."""
    return {trial.number for trial in record.trials if trial.state in wanted}


def mid_training(record: StudyRecord) -> bool:
    """A population is training: some running trial has reported some of its epochs, not all.

    Only without pruning: a pruned member stays running, its curve cut short, until the rest
    of its population finishes and the outcomes are stored.
    """
    epochs = record.config.get("epochs", 0)
    return any(trial.state == "running" and 0 < len(trial.val_curve) < epochs for trial in record.trials)


def report_counts(index_html: Path) -> dict[str, int]:
    """The trial counts per state shown at the top of a report page."""
    found = re.findall(r'class="state-(\w+)"><b>(\d+)</b>', index_html.read_text(encoding="utf-8"))
    return {state: int(count) for state, count in found}
