"""Concurrency: worker processes sharing one storage record each trial exactly once.

Four independent processes (as on four machines) run ``autolr.search`` on one study,
released at the same moment, on a journal file, a SQLite file and a real PostgreSQL
server; each writes down every trial it evaluated. Nothing may be lost, evaluated twice
(baselines included) or left running. On PostgreSQL a report is built while the workers
are still writing, and the server's password appears nowhere it writes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from autolr.backends.optuna.storage import journal_url, sqlite_url
from autolr.bench.load import LOAD_STUDY_NAME, Hold, LoadResult, run_load
from reliability_support import FINISHED_STATES, read_record

pytestmark = pytest.mark.slow

WORKERS = 4
TRIALS = 24


def check_exactly_once(result: LoadResult, trials: int = TRIALS) -> None:
    assert result.lost == 0 and result.duplicated == 0 and result.left_running == 0, result
    # every recorded trial was evaluated by exactly one worker; racing workers may each take
    # the last trial of the budget, so the study may hold up to WORKERS - 1 more
    assert result.evaluated == result.recorded, result
    assert trials <= result.recorded <= trials + WORKERS - 1, result


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_workers_on_one_file_record_each_trial_once(tmp_path: Path, kind: str) -> None:
    url = journal_url(tmp_path / "study.log") if kind == "journal" else sqlite_url(tmp_path / "study.db")
    check_exactly_once(run_load(url, workers=WORKERS, trials=TRIALS))


def test_workers_on_postgresql_and_a_report_built_meanwhile(tmp_path: Path, postgres_url: str) -> None:
    from typer.testing import CliRunner

    import autolr.report.write  # noqa: F401  (imported before the workers start: the report reads at once)
    from autolr.cli import app
    from conftest import POSTGRES_PASSWORD

    outcome: dict = {}
    # each worker holds before its third trial until the report is built: the report finds the study
    # part-way (at most WORKERS x 3 of its 24 trials stored), however fast or slow this machine is; the hold, not
    # the study's size, makes it part-way, so the workers then race through the same 24 trials as on the files
    hold = Hold(after=2, gate=tmp_path / "report-built")
    load = threading.Thread(target=lambda: outcome.update(
        result=run_load(postgres_url, WORKERS, TRIALS, hold=hold)))
    load.start()
    try:
        held = None  # the study once every worker holds: 2 trials finished each, the third running (frozen)
        while load.is_alive():
            record = read_record(postgres_url, LOAD_STUDY_NAME)
            if record is not None and sum(t.state in FINISHED_STATES for t in record.trials) >= WORKERS * 2 \
                    and sum(t.state == "running" for t in record.trials) >= WORKERS:
                held = record
                break
            time.sleep(0.2)
        report = CliRunner().invoke(app, ["report", postgres_url, "--out", str(tmp_path / "report")])
    finally:
        hold.gate.touch()
        load.join()
    check_exactly_once(outcome["result"])
    assert report.exit_code == 0, report.output
    assert "partial" in report.stdout
    assert held is not None and len(held.trials) == WORKERS * 3  # 8 finished, 4 held running, of 24
    assert sum(t.state in FINISHED_STATES for t in held.trials) == WORKERS * 2
    rows = (tmp_path / "report" / "trials.csv").read_text().strip().splitlines()[1:]
    assert len(rows) == WORKERS * 3  # what was stored when the report read the study
    written = [report.output, outcome["result"].storage]
    written += [path.read_text(errors="replace") for path in (tmp_path / "report").rglob("*") if path.is_file()]
    assert not any(POSTGRES_PASSWORD in text for text in written)
