"""Trials left running with no owner: a process killed inside ``ask``, between Optuna creating the
trial and its owner and first heartbeat being written, must not leave a trial that nobody runs.

The dead process is real: a child counts the storage writes of one ask and SIGKILLs itself right
after the Nth (the storage is Optuna's own; only a counter is put in front of its write methods),
once for every N the ask makes. A resume in this process then finds and retries the trial, and a
search run to its end holds every trial finished, the killed baseline rung included.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from autolr.backends import open_engine
from autolr.backends.optuna.engine import ASKING_PREFIX, OWNER_KEY, RETRY_OF_KEY, STALE_AFTER_S
from autolr.backends.optuna.storage import journal_url, sqlite_url
from autolr.space.baselines import tuned_baselines
from autolr.space.search_space import SearchSpace
from autolr.study.records import TRIAL_BASELINE_KEY, TRIAL_STATUS_KEY
from autolr.jobs.objective import ObjectiveJob
from autolr.study.definition import SearchDefinition
from autolr.trials import run_trials

STUDY = "orphans"
SPACE = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine"))
BASELINES = tuned_baselines(SPACE, points=1, schedule_free=False)  # one rung per standard kind
TRIALS = len(BASELINES) + 2
DEFINITION = SearchDefinition(name=STUDY, direction="maximize", trials=TRIALS, sampler="random", pruner="none",
                              epochs=3)
WRITES = ("create_new_trial", "set_trial_state_values", "set_trial_param", "set_trial_user_attr",
          "set_trial_system_attr", "set_study_user_attr", "set_trial_intermediate_value")
ASKED = 3  # the child's exit status when its ask ended before the Nth write


def engine(url: str, name: str = STUDY):
    study = open_engine(url, dataclasses.replace(DEFINITION, name=name), SPACE)
    study.queue_baselines(BASELINES)
    return study


def ask_and_die_at(url: str, name: str, nth_write: int) -> None:
    """Ask the study's first trial, SIGKILLing this process right after the ask's ``nth_write``-th
    storage write; exit with ASKED when the ask made fewer writes."""
    study = engine(url, name)
    storage, left = study.study._storage, [nth_write]

    def counted(write):
        def call(*args, **kwargs):
            result = write(*args, **kwargs)
            left[0] -= 1
            if left[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return call

    for write in WRITES:
        setattr(storage, write, counted(getattr(storage, write)))
    study.ask()
    os._exit(ASKED)


def kill_inside_ask(url: str, name: str, nth_write: int) -> bool:
    """In a child process (forked: it starts at once): ask the study's first trial (a queued baseline
    rung, as ``autolr search`` does first) and die right after the ask's ``nth_write``-th storage
    write; False when the ask made fewer writes and ended."""
    child = multiprocessing.get_context("fork").Process(target=ask_and_die_at, args=(url, name, nth_write))
    child.start()
    child.join(timeout=120)
    assert child.exitcode in (-signal.SIGKILL, ASKED), child.exitcode
    return child.exitcode == -signal.SIGKILL


def storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return sqlite_url(tmp_path / "study.db")
    if kind == "journal":
        return journal_url(tmp_path / "study.log")
    return request.getfixturevalue("postgres_url")


def lr_objective(spec, trial) -> float:
    return -abs(spec.lr - 0.1)


@pytest.mark.parametrize("kind", ["sqlite", "journal", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_process_killed_at_any_write_of_an_ask_leaves_no_trial_running(
        tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    killed_at = []
    for nth in range(1, 30):
        folder, name = tmp_path / str(nth), f"{STUDY}-{nth}"  # a study of its own per kill point
        folder.mkdir()
        url = storage_url(kind, folder, request)
        if not kill_inside_ask(url, name, nth):
            break
        killed_at.append(nth)
        resumed = engine(url, name)
        created = resumed.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        recovered = resumed.recover_interrupted()
        assert recovered == [t.number for t in created]  # every trial the dead ask created, owner or not
        assert resumed.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) == []
        waiting = resumed.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        assert sorted(t.user_attrs[RETRY_OF_KEY] for t in waiting if RETRY_OF_KEY in t.user_attrs) == recovered
        progress = run_trials(resumed, ObjectiveJob(lr_objective).evaluator(DEFINITION), TRIALS)
        record = resumed.read_record()
        assert progress.counts["complete"] == TRIALS and progress.counts["running"] == 0
        assert [t.state for t in record.trials].count("complete") == TRIALS
        assert {t.baseline for t in record.trials if t.state == "complete"} >= {b.name for b in BASELINES}
    # the ask's 8 writes, each followed by a kill: its asking mark, the trial (taken from the queue),
    # its owner, its first heartbeat, the mark cleared, then the spec, family and LR of the trial
    assert killed_at == list(range(1, 9)), killed_at


def test_the_end_of_a_search_retries_a_trial_orphaned_while_it_ran(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "study.db")
    study = engine(url)
    evaluate = ObjectiveJob(lr_objective).evaluator(DEFINITION)
    orphaned = []

    def evaluate_and_orphan(trials):
        if not orphaned:  # another process dies inside its ask while this one trains
            orphaned.append(kill_inside_ask(url, STUDY, nth_write=2))
        return evaluate(trials)

    progress = run_trials(study, evaluate_and_orphan, TRIALS)
    record = study.read_record()
    assert orphaned == [True]
    assert progress.counts == {"complete": TRIALS, "pruned": 0, "diverged": 0, "failed": 0, "interrupted": 1,
                               "running": 0}
    (lost,) = [t for t in record.trials if t.state == "interrupted"]
    assert lost.number == 1 and "process stopped" in lost.error  # the second queued rung, taken by the dead ask
    assert {t.baseline for t in record.trials if t.state == "complete"} == {b.name for b in BASELINES} | {None}


def test_a_trial_without_an_owner_waits_for_a_live_process_asking(tmp_path: Path) -> None:
    study = engine(sqlite_url(tmp_path / "study.db"))
    host, mark = socket.gethostname(), ASKING_PREFIX + "elsewhere"
    asking = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        first = study.study.ask()  # Optuna's own ask: running, its owner not written yet
        study.study.set_user_attr(mark, {"host": host, "pid": asking.pid, "since": time.time()})
        assert study.recover_interrupted() == []  # this machine's process asking is alive
        study.study.set_user_attr(mark, {"host": "another-machine", "pid": 1, "since": time.time()})
        assert study.recover_interrupted() == []  # another machine's ask, not stale yet
        clear = threading.Thread(target=engine(study.storage_url).study.set_user_attr, args=(mark, None))
        clear.start()  # the ask ends; the end of a search waits for it, whenever it ends
        assert study.recover_interrupted(wait=True) == [first.number]
        clear.join()
        second = study.study.ask()
        study.study.set_user_attr(mark, {"host": "another-machine", "pid": 1, "since": time.time() - STALE_AFTER_S - 1})
        assert study.recover_interrupted() == [second.number]
        third = study.study.ask()
        study.study.set_user_attr(mark, {"host": host, "pid": asking.pid, "since": time.time()})
    finally:
        asking.kill()
        asking.wait()
    assert study.recover_interrupted() == [third.number]  # the asking process is gone
    assert study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) == []


def test_a_duplicate_draw_left_running_is_closed_and_not_retried(tmp_path: Path) -> None:
    study = engine(sqlite_url(tmp_path / "study.db"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    draw = study.study.ask()
    draw.set_user_attr(OWNER_KEY, {"host": socket.gethostname(), "pid": int(gone.stdout)})
    draw.set_user_attr(TRIAL_STATUS_KEY, "duplicate")  # the process died before it closed the draw
    assert study.recover_interrupted() == []
    closed = study.study._storage.get_trial(draw._trial_id)
    assert closed.state == TrialState.FAIL and closed.user_attrs[TRIAL_STATUS_KEY] == "duplicate"
    waiting = study.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert [t.user_attrs[TRIAL_BASELINE_KEY] for t in waiting] == [b.name for b in BASELINES[1:]]  # no retry
