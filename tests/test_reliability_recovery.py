"""Recovering trials whose process died: on this machine (the process is gone), on another machine
(its heartbeat went stale), with retrying on or off, and with several processes recovering at once.

The dead process is real: a child asks its trials and then kills itself with SIGKILL.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from autolr.backends import open_engine
from autolr.study.definition import SearchDefinition
from autolr.backends.optuna.engine import HEARTBEAT_KEY, MAX_PROCESS_DEATHS, OWNER_KEY, RETRY_OF_KEY, STALE_AFTER_S
from autolr.backends.optuna.storage import journal_url, sqlite_url
from autolr.errors import StudyError
from autolr.space.search_space import SearchSpace
from autolr.study.config import load_study
from reliability_support import write_study

STUDY = "recovery"
SPACE = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine"))


def engine(url: str, retry: bool = True):
    return open_engine(url, SearchDefinition(name=STUDY, direction="maximize", trials=8, sampler="random",
                                             pruner="none", epochs=3, retry_interrupted=retry), SPACE)


def ask_and_die(url: str, trials: int) -> None:
    """A real process that asks ``trials`` trials, reports an epoch of each, and is SIGKILLed."""
    code = (
        "import os, signal, sys\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from test_reliability_recovery import engine\n"
        "study = engine(sys.argv[1])\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    study.ask().observe(0.5, 0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, url, str(trials), str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr


def waiting_retries(study) -> list[int]:
    """The numbers of the interrupted trials that are queued to run again, one entry per retry."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sorted(t.user_attrs[RETRY_OF_KEY] for t in waiting if RETRY_OF_KEY in t.user_attrs)


@pytest.mark.parametrize("retry", [True, False], ids=["retried", "not-retried"])
def test_trials_of_a_killed_process_are_interrupted_and_queued_again(tmp_path: Path, retry: bool) -> None:
    url = sqlite_url(tmp_path / "study.db")
    ask_and_die(url, trials=2)
    survivor = engine(url, retry=retry)
    assert sorted(survivor.recover_interrupted()) == [0, 1]
    record = survivor.read_record()
    assert [t.state for t in record.trials] == ["interrupted", "interrupted"]
    assert all("process stopped" in t.error and t.val_curve == [0.5] for t in record.trials)
    assert survivor.recover_interrupted() == []  # once recovered, never again
    assert waiting_retries(survivor.study) == ([0, 1] if retry else [])
    if retry:  # the next trials asked are the retries, with the interrupted trials' schedules
        retries = [survivor.ask(), survivor.ask()]
        assert {t.optuna_trial.user_attrs[RETRY_OF_KEY]: t.spec.to_dict() for t in retries} == {
            t.number: t.spec for t in record.trials}


@pytest.mark.slow
def test_a_schedule_that_kills_its_process_every_time_is_failed_after_the_last_allowed_death(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "study.db")
    for death in range(MAX_PROCESS_DEATHS):  # each process asks the queued retry and dies on it again
        ask_and_die(url, trials=1)
        assert engine(url).recover_interrupted() == [death]
    trials = engine(url).read_record().trials
    assert [t.state for t in trials] == ["interrupted"] * (MAX_PROCESS_DEATHS - 1) + ["failed"]
    assert len({json.dumps(t.spec, sort_keys=True) for t in trials}) == 1  # one schedule, tried again and again
    assert f"stopped {MAX_PROCESS_DEATHS} times" in trials[-1].error
    assert waiting_retries(engine(url).study) == []  # not run again


def test_a_trial_on_another_machine_is_recovered_once_its_heartbeat_is_stale(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "study.db")
    elsewhere = engine(url)
    fresh, stale = elsewhere.ask(), elsewhere.ask()
    # as a worker on another machine leaves them: its host, its pid, its last heartbeat
    for trial, beat in ((fresh, time.time() - 1.0), (stale, time.time() - STALE_AFTER_S - 60)):
        trial.set_user_attr(OWNER_KEY, {"host": "worker-on-another-machine", "pid": 1})
        trial.set_user_attr(HEARTBEAT_KEY, beat)
    here = engine(url)
    assert here.recover_interrupted() == [stale.number]
    assert {t.number: t.state for t in here.read_record().trials} == {fresh.number: "running", stale.number: "interrupted"}


def recover_together(url: str, barrier) -> list[int]:
    study = engine(url)
    barrier.wait()
    return study.recover_interrupted()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_processes_recovering_at_once_queue_each_retry_once(tmp_path: Path, kind: str) -> None:
    url = sqlite_url(tmp_path / "study.db") if kind == "sqlite" else journal_url(tmp_path / "study.log")
    ask_and_die(url, trials=4)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        with context.Pool(4) as pool:
            recovered = pool.starmap(recover_together, [(url, barrier)] * 4)
    assert sorted(number for numbers in recovered for number in numbers) == [0, 1, 2, 3]  # each by one process
    assert waiting_retries(engine(url).study) == [0, 1, 2, 3]


def test_the_study_file_switches_retrying(tmp_path: Path) -> None:
    assert load_study(write_study(tmp_path / "default.toml")).retry_interrupted is True
    assert load_study(write_study(tmp_path / "off.toml", retry_interrupted=False)).retry_interrupted is False
    with pytest.raises(StudyError, match="retry_interrupted"):
        load_study(write_study(tmp_path / "bad.toml", retry_interrupted="no"))
