"""Read a Ray Tune result folder into a ``StudyRecord``; needs no Ray, only the files Tune wrote.

A study's Ray folder ``<run_dir>/ray`` holds Tune's experiment state
(``experiment_state-*.json``: every trial's status and folder), one folder per Tune trial
(``params.json``: the population's member configs; ``result.json``: one JSON line per
reported epoch), and autolr's ``autolr_study.json`` (study, range test, options,
re-scoring, meta). Tune trial ``p`` with K members holds trials ``p*K .. p*K+K-1``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autolr.errors import StudyError
from autolr.records import RescoreRecord, StudyRecord, TrialRecord

EXPERIMENT_NAME = "ray"  # the Tune experiment's folder name inside a study's run folder
STUDY_FILE = "autolr_study.json"
# A Tune trial's config (written by ray_searcher) and a member config inside it.
MEMBERS_KEY = "members"  # list of member configs
POPULATION_KEY = "population"  # the population's number, counted from 0
SPEC_KEY = "spec"  # member: ScheduleSpec.to_dict()
BASELINE_KEY = "baseline"  # member: baseline name, or None
# A Tune trial's results (written by ray_trainable): per epoch, then a final one.
MEMBER_SCORES_KEY = "member_scores"  # each member's validation score this epoch, None once stopped
MEMBER_STATES_KEY = "member_states"  # final: complete | pruned | diverged per member
CURVES_KEY = "member_curves"  # final: each member's validation score after every epoch
EPOCHS_KEY = "member_epochs"  # final: epochs each member ran
DURATIONS_KEY = "member_durations_s"  # final: each member's training time (s)
ERRORS_KEY = "member_errors"  # final: each member's stop reason, or None
UNFINISHED_STATUSES = ("PENDING", "RUNNING", "PAUSED")  # Tune trial statuses of an interrupted run


def write_study_file(path: Path, **fields: Any) -> None:
    """Merge ``fields`` (study, range_test, options, rescored, meta) into ``autolr_study.json``."""
    path.mkdir(parents=True, exist_ok=True)
    target = path / STUDY_FILE
    data = json.loads(target.read_text()) if target.exists() else {}
    data.update(fields)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str))
    temporary.replace(target)


def save_rescored(path: Path, rescored: list[RescoreRecord], meta: dict[str, Any]) -> None:
    """Store the re-scoring of the top configurations and the run's meta with the experiment."""
    write_study_file(path, rescored=[asdict(record) for record in rescored], meta=meta)


def is_ray_result(path: str | Path) -> bool:
    """True when ``path`` (a study run folder or its ``ray`` folder) holds a Ray experiment."""
    return _locate(Path(path)) is not None


def _locate(path: Path) -> Path | None:
    for candidate in (path, path / EXPERIMENT_NAME):
        if (candidate / STUDY_FILE).exists():
            return candidate
    return None


def read_ray_record(result_dir: str | Path) -> StudyRecord:
    """The ``StudyRecord`` of a Ray Tune result folder (the study's run folder or its ``ray`` folder)."""
    path = _locate(Path(result_dir))
    if path is None:
        raise StudyError(f"{str(result_dir)!r} holds no autolr Ray Tune experiment ({STUDY_FILE} is missing)")
    study = json.loads((path / STUDY_FILE).read_text())
    trials: list[TrialRecord] = []
    for status, folder in _tune_trials(path):
        trials.extend(_member_records(status, path / folder))
    trials.sort(key=lambda trial: trial.number)
    config = study["study"]
    return StudyRecord(
        name=config["name"], config=config, trials=trials, range_test=study.get("range_test"),
        rescored=[RescoreRecord(**record) for record in study.get("rescored", [])],
        meta={"backend": "ray", "ray": study.get("options", {}), **study.get("meta", {})},
    )


def unfinished_trials(path: Path) -> int:
    """Tune trials (populations) of the experiment in ``path`` not yet run to their end."""
    planned = json.loads((path / STUDY_FILE).read_text()).get("populations", 0)
    trials = _tune_trials(path)
    return max(planned - len(trials), 0) + sum(status in UNFINISHED_STATUSES for status, _ in trials)


def _tune_trials(path: Path) -> list[tuple[str, str]]:
    """(status, folder) of every Tune trial, from the newest experiment state file."""
    states = sorted(path.glob("experiment_state-*.json"))
    if not states:
        return []
    trials = []
    for trial_json, _runtime_json in json.loads(states[-1].read_text())["trial_data"]:
        trial = json.loads(trial_json)
        trials.append((trial["status"], trial["relative_logdir"]))
    return trials


def _results(folder: Path) -> list[dict[str, Any]]:
    """The reported results of the trial's last attempt (a retried trial starts over at iteration 1)."""
    rows: list[dict[str, Any]] = []
    result_file = folder / "result.json"
    if not result_file.exists():
        return rows
    for line in result_file.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if rows and row.get("training_iteration", 0) <= rows[-1].get("training_iteration", 0):
                rows = []
            rows.append(row)
    return rows


def _member_records(status: str, folder: Path) -> list[TrialRecord]:
    """One TrialRecord per member of the population trained in ``folder``."""
    params = json.loads((folder / "params.json").read_text())
    members = params[MEMBERS_KEY]
    rows = _results(folder)
    final = rows[-1] if rows and MEMBER_STATES_KEY in rows[-1] else None
    error = _error_line(folder) if status == "ERROR" else None
    records = []
    for index, member in enumerate(members):
        if final is not None:
            state = final[MEMBER_STATES_KEY][index]
            curve = final[CURVES_KEY][index]
            epochs, duration, reason = final[EPOCHS_KEY][index], final[DURATIONS_KEY][index], final[ERRORS_KEY][index]
        else:
            curve = [row[MEMBER_SCORES_KEY][index] for row in rows if row[MEMBER_SCORES_KEY][index] is not None]
            state = "failed" if status == "ERROR" else "interrupted" if status in UNFINISHED_STATUSES else "pruned"
            epochs, duration, reason = len(curve), rows[-1].get("time_total_s") if rows else None, error
        records.append(TrialRecord(
            number=params[POPULATION_KEY] * len(members) + index, state=state, spec=member[SPEC_KEY],
            val_curve=curve, value=curve[-1] if state == "complete" and curve else None,
            epochs_run=epochs, duration_s=duration, baseline=member.get(BASELINE_KEY), error=reason,
        ))
    return records


def _error_line(folder: Path) -> str | None:
    """The last line of Tune's error file of a failed trial."""
    error_file = folder / "error.txt"
    if not error_file.exists():
        return None
    lines = [line for line in error_file.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else None
