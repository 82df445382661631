"""What a study stores, engine-neutral: the records the search writes and the report reads.

Both backends (Optuna storage, Ray Tune result folder) are read into a ``StudyRecord``;
the report, ``trials.csv`` and ``best_schedule.json`` are built from it alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from autolr.study.definition import Direction

# Keys of the Optuna study/trial user attributes the search writes.
STUDY_CONFIG_KEY = "autolr.study.config"  # the study definition (dict), written once
RANGE_TEST_KEY = "autolr.range_test"  # RangeTestResult.to_dict(), written once
RESCORE_KEY = "autolr.study.rescore"  # list of RescoreRecord dicts, written after the search
POPULATION_KEY = "autolr.population"  # {"device", "size"}: trials trained at once, kept for a resume
SEARCH_META_KEY = "autolr.meta"  # {"wall_time_s", "hardware", "finished", ...}
TRIAL_SPEC_KEY = "autolr.schedule.spec"  # ScheduleSpec.to_dict() of the trial
TRIAL_STATUS_KEY = "autolr.status"  # complete | pruned | diverged | failed | interrupted
TRIAL_BASELINE_KEY = "autolr.baseline"  # baseline name, or absent
TRIAL_EPOCHS_KEY = "autolr.epochs_run"
TRIAL_DURATION_KEY = "autolr.duration_s"
TRIAL_ERROR_KEY = "autolr.error"  # one-line reason for failed / diverged trials
TRIAL_FAMILY_KEY = "autolr.family"  # the spec's family and LR again as plain values, so Optuna's
TRIAL_LR_KEY = "autolr.lr"  # own tools (optuna-dashboard) show, sort and filter trials by them

OPTIMIZER_BASELINES_KEY = "autolr.optimizer_baselines"  # {"left_out": reason or None}: the job's answer, kept
BUDGET_KEY = "autolr.budget"  # {"budget": minutes, "plan": BudgetPlan.to_dict()}: sized once from the first trials
VERDICT_KEY = "autolr.verdict"  # the verdict's Verdict.to_dict(), decided once after the re-scoring


class TrialState(enum.StrEnum):
    """How a trial stands: finished in one of five ways, or still running.

    ``diverged``: its loss became NaN/inf or grew past the divergence factor; ``failed``: it
    raised (its one-line reason is stored); ``interrupted``: its process stopped before it
    finished (it is retried). A str enum: stored and compared as its plain value.
    """

    COMPLETE = "complete"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    RUNNING = "running"


def zero_counts() -> dict[str, int]:
    """A count of 0 for every trial state, in TrialState's order (the report's and progress's tables)."""
    return {state.value: 0 for state in TrialState}




@dataclass
class TrialRecord:
    """One trial: its schedule, how it ended and its validation score per epoch."""

    number: int
    state: str
    spec: dict[str, Any]
    val_curve: list[float] = field(default_factory=list)  # validation score after each epoch
    value: float | None = None  # final validation score (None unless complete)
    epochs_run: int = 0
    duration_s: float | None = None
    baseline: str | None = None
    error: str | None = None


@dataclass
class RescoreRecord:
    """A top configuration (or a tuned baseline's best rung) retrained on fresh seeds after the search.

    ``spec`` is the schedule re-scored (its LR the one the LR check chose); ``baseline`` the
    baseline's kind (None for a searched trial); ``val_scores``/``test_scores`` one final
    score per seed in ``seeds`` (NaN where the run diverged) after ``epochs`` epochs (None:
    the search's epochs); ``lr_check`` the LR check at that length, when it ran: one
    ``{"lr", "val_scores"}`` per LR tried. ``val_resolution``/``test_resolution``: the smallest
    step a score of that split can take, in score units (``definition.score_resolution``: 1 / rows
    for accuracy; 0 for a loss, or unknown, as in records stored before it was kept).
    """

    trial_number: int | None
    spec: dict[str, Any]
    seeds: list[int]
    val_scores: list[float]
    test_scores: list[float]
    baseline: str | None = None
    epochs: int | None = None
    lr_check: list[dict[str, Any]] = field(default_factory=list)
    val_resolution: float = 0.0
    test_resolution: float = 0.0


@dataclass
class StudyRecord:
    """Everything a report needs about one study, read from its storage."""

    name: str
    config: dict[str, Any]
    trials: list[TrialRecord]
    range_test: dict[str, Any] | None = None
    rescored: list[RescoreRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None  # the stored verdict (``Verdict.to_dict()``), None before it is decided


def direction_of(record: StudyRecord) -> Direction:
    """The study's ``direction`` (default maximize)."""
    return Direction.parse(str(record.config.get("direction", Direction.MAXIMIZE.value)).lower())


def maximizes(record: StudyRecord) -> bool:
    """Whether a higher validation score is better (the study's ``direction``, default maximize)."""
    return direction_of(record).maximize
