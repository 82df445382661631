"""Read a Ray Tune result folder into a ``StudyRecord``; needs no Ray, only the files Tune wrote.

A study's Ray folder ``<run_dir>/ray`` holds Tune's experiment state
(``experiment_state-*.json``: every trial's status, folder and config, i.e. its
population's member schedules), one folder per Tune trial (``result.json``: one JSON line
per reported epoch), and autolr's ``autolr_study.json``: the study attributes under the same
keys the Optuna backend stores (``autolr.study.records``: study, range test, re-scoring, meta)
plus the Ray options. Tune trial ``p`` with K members holds trials ``p*K .. p*K+K-1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from autolr.errors import StudyError
from autolr.study.records import (
    RANGE_TEST_KEY,
    RESCORE_KEY,
    SEARCH_META_KEY,
    STUDY_CONFIG_KEY,
    VERDICT_KEY,
    RescoreRecord,
    StudyRecord,
    TrialRecord,
)

EXPERIMENT_NAME = "ray"  # the Tune experiment's folder name inside a study's run folder
STUDY_FILE = "autolr_study.json"
RAY_KEY = "autolr.ray"  # the Ray options, the population size and the number of populations planned
# A Tune trial's config (written by ray/searcher.py) and a member config inside it.
MEMBERS_KEY = "members"  # list of member configs
POPULATION_KEY = "population"  # the population's number, counted from 0
UNKNOWN_EPOCHS = 1000  # a trial's epochs (ASHA's longest rung) when the Python API is not told them
SPEC_KEY = "spec"  # member: ScheduleSpec.to_dict()
BASELINE_KEY = "baseline"  # member: baseline name, or None
# A Tune trial's results (written by ray/trainable.py): per epoch, then a final one.
MEMBER_SCORES_KEY = "member_scores"  # each member's validation score this epoch, None once stopped
MEMBER_STATES_KEY = "member_states"  # final: complete | pruned | diverged per member
CURVES_KEY = "member_curves"  # final: each member's validation score after every epoch
EPOCHS_KEY = "member_epochs"  # final: epochs each member ran
DURATIONS_KEY = "member_durations_s"  # final: each member's training time (s)
ERRORS_KEY = "member_errors"  # final: each member's stop reason, or None
UNFINISHED_STATUSES = ("PENDING", "RUNNING", "PAUSED")  # Tune trial statuses of an interrupted run


class RayStudyFolder:
    """The study attributes kept beside a Ray experiment, read and written like Optuna's user attributes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        target = self.path / STUDY_FILE
        return json.loads(target.read_text()) if target.exists() else {}

    def get_attr(self, key: str) -> Any:
        """The stored value of ``key``, or None."""
        return self._read().get(key)

    def set_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe value under ``key`` (the file is replaced atomically)."""
        self.path.mkdir(parents=True, exist_ok=True)
        data = {**self._read(), key: value}
        temporary = self.path / f".{STUDY_FILE}.tmp"
        temporary.write_text(json.dumps(data, indent=1, default=str))
        temporary.replace(self.path / STUDY_FILE)

    def read_record(self) -> StudyRecord:
        """The study as an engine-neutral record."""
        return read_ray_record(self.path)

    def claim(self, definition: dict[str, Any], identity_keys: Sequence[str]) -> None:
        """Store the study definition once; refuse a rerun whose ``identity_keys`` differ from the stored ones."""
        stored = self.get_attr(STUDY_CONFIG_KEY)
        if stored is None:
            self.set_attr(STUDY_CONFIG_KEY, definition)
            return
        changed = [key for key in identity_keys if stored.get(key) != definition.get(key)]
        if changed:
            raise StudyError(f"study {definition['name']!r} in {self.path} was run with a different {changed[0]}; "
                             "give it another name or folder")


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
    attrs = json.loads((path / STUDY_FILE).read_text())
    trials: list[TrialRecord] = []
    for status, folder, config in _tune_trials(path):
        trials.extend(member_records(status, config, _results(path / folder), _error_line(path / folder, status)))
    trials.sort(key=lambda trial: trial.number)
    config = attrs[STUDY_CONFIG_KEY]
    return StudyRecord(
        name=config["name"], config=config, trials=trials, range_test=attrs.get(RANGE_TEST_KEY),
        rescored=[RescoreRecord(**record) for record in attrs.get(RESCORE_KEY) or []],
        meta={"backend": "ray", "ray": attrs.get(RAY_KEY, {}), **(attrs.get(SEARCH_META_KEY) or {})},
        verdict=attrs.get(VERDICT_KEY),
    )


def unfinished_trials(path: Path) -> int:
    """Tune trials (populations) of the experiment in ``path`` not yet run to their end."""
    planned = RayStudyFolder(path).get_attr(RAY_KEY)["populations"]
    trials = _tune_trials(path)
    return max(planned - len(trials), 0) + sum(status in UNFINISHED_STATUSES for status, _, _ in trials)


def _tune_trials(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(status, folder, config) of every Tune trial, from the newest experiment state file."""
    states = sorted(path.glob("experiment_state-*.json"))
    if not states:
        return []
    trials = []
    for trial_json, _runtime_json in json.loads(states[-1].read_text())["trial_data"]:
        trial = json.loads(trial_json)
        trials.append((trial["status"], trial["relative_logdir"], trial["config"]))
    return trials


def _results(folder: Path) -> list[dict[str, Any]]:
    """The reported results of the trial's first attempt that reached its final result, else of its
    last attempt (a retried trial starts over at iteration 1). Once a final result is in, a later
    attempt (a run restored from a state saved before Tune closed the trial) changes nothing."""
    rows: list[dict[str, Any]] = []
    result_file = folder / "result.json"
    if not result_file.exists():
        return rows
    for line in result_file.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if rows and MEMBER_STATES_KEY in rows[-1]:
                break
            if rows and row.get("training_iteration", 0) <= rows[-1].get("training_iteration", 0):
                rows = []
            rows.append(row)
    return rows


def member_states(status: str, final: dict[str, Any] | None, size: int, unfinished: str = "interrupted") -> list[str]:
    """How each member of a Tune trial ended, from the trial's status and its final result.

    A final result names each member's state; without one, a trial Tune stopped early
    (ASHA) is pruned, one that errored out of retries failed, and one still pending or
    running when the run stopped is ``unfinished`` (interrupted, or running while it runs).
    """
    if final is not None and MEMBER_STATES_KEY in final:
        return list(final[MEMBER_STATES_KEY])
    state = "failed" if status == "ERROR" else unfinished if status in UNFINISHED_STATUSES else "pruned"
    return [state] * size


def member_records(status: str, params: dict[str, Any], rows: list[dict[str, Any]], error: str | None = None,
                   unfinished: str = "interrupted") -> list[TrialRecord]:
    """One TrialRecord per member of a Tune trial, from its config and its reported results."""
    members = params[MEMBERS_KEY]
    final = rows[-1] if rows and MEMBER_STATES_KEY in rows[-1] else None
    states = member_states(status, final, len(members), unfinished)
    records = []
    for index, member in enumerate(members):
        if final is not None:
            curve = final[CURVES_KEY][index]
            epochs, duration, reason = final[EPOCHS_KEY][index], final[DURATIONS_KEY][index], final[ERRORS_KEY][index]
        else:
            curve = [row[MEMBER_SCORES_KEY][index] for row in rows if row[MEMBER_SCORES_KEY][index] is not None]
            epochs, duration, reason = len(curve), rows[-1].get("time_total_s") if rows else None, error
        records.append(TrialRecord(
            number=params[POPULATION_KEY] * len(members) + index, state=states[index], spec=member[SPEC_KEY],
            val_curve=curve, value=curve[-1] if states[index] == "complete" and curve else None,
            epochs_run=epochs, duration_s=duration, baseline=member.get(BASELINE_KEY), error=reason,
        ))
    return records


def _error_line(folder: Path, status: str) -> str | None:
    """The last line of Tune's error file of a trial that failed (status ERROR), else None."""
    error_file = folder / "error.txt"
    if status != "ERROR" or not error_file.exists():
        return None
    lines = [line for line in error_file.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else None
