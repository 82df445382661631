"""Faults: `autolr search` killed (SIGKILL) and stopped (Ctrl-C) mid-population, then resumed.

One real study runs three times with the same command line: run 1 is killed with SIGKILL
while a population trains (after one population finished), run 2 gets SIGINT to its
process group (what Ctrl-C in a terminal sends) while the next populations train, run 3
finishes. The storage is polled to pick the moment, never a fixed sleep, and the processes are
frozen while the moment is confirmed, so each signal lands in the state the tests compare with. Each test checks
one promise against what the storage held at those moments. Run 2 has two worker processes,
so the Ctrl-C reaches both.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

from autolr.backends.optuna.engine import RETRY_OF_KEY
from autolr.backends.optuna.storage import journal_url, sqlite_url
from autolr.study.records import StudyRecord
from reliability_support import (
    FINISHED_STATES, TINY_STUDY, mid_training, numbers_in, read_record, report_counts, run_cli, signal_while_training,
    start_cli, write_study,
)

pytestmark = pytest.mark.slow


@dataclass
class FaultChain:
    """What the storage and the processes showed around the kill, the Ctrl-C and the last run."""

    storage_url: str
    run_dir: Path
    after_kill: StudyRecord  # the storage as the killed process left it
    after_interrupt: StudyRecord  # ... as the Ctrl-C'd process left it
    running_at_interrupt: set[int]  # trials training when SIGINT was sent
    interrupt_exit: int
    interrupt_stderr: str
    final: StudyRecord
    final_json: dict
    retry_of: dict[int, int]  # retry trial number -> number of the interrupted trial it runs again


@pytest.fixture(scope="module")
def fault_chain(tmp_path_factory: pytest.TempPathFactory) -> FaultChain:
    root = tmp_path_factory.mktemp("faults")
    study = write_study(root / "tiny.toml", pruner="none")  # a running trial with a short curve is training
    out = root / "reports"
    command = ("search", "--study", str(study), "--out", str(out))
    storage_url = sqlite_url(out / "tiny" / "study.db")
    name = TINY_STUDY["name"]

    first = start_cli(root, "killed", *command, "--quiet")
    signal_while_training(first, storage_url, name,
                          lambda r: len(numbers_in(r, *FINISHED_STATES)) >= 4 and mid_training(r), signal.SIGKILL)
    assert first.process.wait(timeout=60) == -signal.SIGKILL
    after_kill = read_record(storage_url, name)

    finished_by_kill = len(numbers_in(after_kill, *FINISHED_STATES))
    second = start_cli(root, "interrupted", *command, "--quiet", "--workers", "2")  # Ctrl-C reaches both
    at_interrupt = signal_while_training(
        second, storage_url, name,
        lambda r: len(numbers_in(r, *FINISHED_STATES)) >= finished_by_kill + 4 and mid_training(r), signal.SIGINT,
    )
    interrupt_exit = second.process.wait(timeout=120)
    after_interrupt = read_record(storage_url, name)

    last = run_cli(*command, "--json")
    assert last.returncode == 0, last.stderr[-3000:]
    frozen = optuna.load_study(study_name=name, storage=storage_url).get_trials(deepcopy=False)
    return FaultChain(
        storage_url=storage_url, run_dir=out / "tiny", after_kill=after_kill, after_interrupt=after_interrupt,
        running_at_interrupt=numbers_in(at_interrupt, "running"), interrupt_exit=interrupt_exit,
        interrupt_stderr=second.output()[1], final=read_record(storage_url, name),
        final_json=json.loads(last.stdout), retry_of={t.number: t.user_attrs[RETRY_OF_KEY] for t in frozen
                                                      if RETRY_OF_KEY in t.user_attrs},
    )


def by_number(record: StudyRecord) -> dict[int, dict]:
    return {trial.number: dataclasses.asdict(trial) for trial in record.trials}


def test_sigkill_keeps_every_finished_trial_with_its_values(fault_chain: FaultChain) -> None:
    before = {n: t for n, t in by_number(fault_chain.after_kill).items() if t["state"] in FINISHED_STATES}
    assert len(before) >= 4
    after = by_number(fault_chain.final)
    assert {n: after[n] for n in before} == before  # same state, value, curve, spec, duration


def test_sigkill_leaves_running_trials_that_the_rerun_marks_interrupted(fault_chain: FaultChain) -> None:
    killed_running = numbers_in(fault_chain.after_kill, "running")
    assert killed_running  # the kill landed mid-population
    final = {trial.number: trial for trial in fault_chain.final.trials}
    for number in killed_running:
        assert final[number].state == "interrupted"
        assert "process stopped" in final[number].error
        assert final[number].value is None


def test_interrupted_trials_are_retried_with_the_same_schedule(fault_chain: FaultChain) -> None:
    # A retry records the first trial of its chain: retrying trial 8, itself a retry of 4, gives retry_of 4.
    final = {trial.number: trial for trial in fault_chain.final.trials}
    chains: dict[int, list[int]] = {}
    for retry, original in sorted(fault_chain.retry_of.items()):
        assert final[retry].spec == final[original].spec
        chains.setdefault(original, [original]).append(retry)
    interrupted = numbers_in(fault_chain.final, "interrupted")
    assert interrupted
    for number in interrupted:  # each interrupted trial has a later retry in its chain
        chain = chains[fault_chain.retry_of.get(number, number)]
        assert chain.index(number) + 1 < len(chain), (number, chain)
    for chain in chains.values():  # ... which ends in a finished trial, after interrupted ones only
        assert [final[n].state for n in chain[:-1]] == ["interrupted"] * (len(chain) - 1), chain
        assert final[chain[-1]].state in FINISHED_STATES, chain


def test_ctrl_c_stops_cleanly_records_what_finished_and_says_how_to_resume(fault_chain: FaultChain) -> None:
    assert fault_chain.interrupt_exit == 130, fault_chain.interrupt_stderr[-2500:]
    assert "Traceback" not in fault_chain.interrupt_stderr
    assert "rerun the same command to resume" in fault_chain.interrupt_stderr
    after = fault_chain.after_interrupt
    assert not numbers_in(after, "running")  # nothing left running, without waiting for recovery
    assert fault_chain.running_at_interrupt & numbers_in(after, "interrupted")
    for trial in after.trials:
        if trial.number in fault_chain.running_at_interrupt:
            assert trial.state in FINISHED_STATES or "KeyboardInterrupt" in trial.error, trial
    finished_before = by_number(after)
    final = by_number(fault_chain.final)
    assert len(numbers_in(after, *FINISHED_STATES)) >= len(numbers_in(fault_chain.after_kill, *FINISHED_STATES)) + 4
    assert all(final[n] == t for n, t in finished_before.items() if t["state"] in FINISHED_STATES)


def test_final_report_counts_interrupted_trials_apart(fault_chain: FaultChain) -> None:
    final = fault_chain.final
    interrupted = numbers_in(final, "interrupted")
    assert numbers_in(fault_chain.after_kill, "running") | numbers_in(fault_chain.after_interrupt, "interrupted") \
        == interrupted
    assert not numbers_in(final, "running")
    assert len(numbers_in(final, *FINISHED_STATES)) == TINY_STUDY["trials"]  # the budget, interrupted aside
    counts = fault_chain.final_json["counts"]
    assert counts["interrupted"] == len(interrupted) and counts["running"] == 0
    assert report_counts(fault_chain.run_dir / "index.html")["interrupted"] == len(interrupted)
    with (fault_chain.run_dir / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(row["number"]) for row in rows if row["state"] == "interrupted"} == interrupted
    assert all(row["error"] for row in rows if row["state"] == "interrupted")


def test_sigterm_to_the_main_process_stops_every_worker_as_ctrl_c_does(tmp_path: Path) -> None:
    # What a batch scheduler or `kill PID` sends: the main process forwards the stop to its worker.
    study = write_study(tmp_path / "tiny.toml", pruner="none")
    out = tmp_path / "reports"
    storage_url = journal_url(out / "tiny" / "study.log")  # a new study with workers is stored in a journal file
    running = start_cli(tmp_path, "terminated", "search", "--study", str(study), "--out", str(out), "--quiet",
                        "--workers", "2")
    epochs, population = TINY_STUDY["epochs"], TINY_STUDY["population"]

    def both_processes_training(record: StudyRecord) -> list[int]:
        return [t.number for t in record.trials if t.state == "running" and 0 < len(t.val_curve) < epochs]

    at_signal = signal_while_training(running, storage_url, TINY_STUDY["name"],
                                      lambda r: len(both_processes_training(r)) > population, signal.SIGTERM,
                                      whole_group=False)
    assert running.process.wait(timeout=120) == 128 + signal.SIGTERM
    stderr = running.output()[1]
    assert "Traceback" not in stderr and "rerun the same command to resume" in stderr, stderr[-2000:]
    after = read_record(storage_url, TINY_STUDY["name"])
    assert not numbers_in(after, "running")
    assert set(both_processes_training(at_signal)) <= numbers_in(after, "interrupted")
