"""A Ray Tune search's progress for a live display: a Tune callback and the counts it reports."""

from __future__ import annotations

import time
from typing import Any, Callable

from ray import tune

from autolr.backends.ray.record import MEMBER_SCORES_KEY, MEMBERS_KEY, member_records
from autolr.study.records import TrialRecord, zero_counts
from autolr.trials import Progress


def progress_of(trials: list[TrialRecord], target: int, maximize: bool, elapsed_s: float) -> Progress:
    """A search's progress: trials per state and the best complete trial."""
    counts = zero_counts()
    for trial in trials:
        counts[trial.state] += 1
    scored = [(trial.value, trial) for trial in trials if trial.state == "complete" and trial.value is not None]
    best = (max if maximize else min)(scored, key=lambda pair: pair[0])[1] if scored else None
    return Progress(target=target, counts=counts, best_value=best.value if best else None,
                    best_family=best.spec.get("family") if best else None, best_number=best.number if best else None,
                    elapsed_s=elapsed_s, finished_this_run=sum(counts.values()) - counts["running"])


class ProgressCallback(tune.Callback):
    """Passes the search's progress to ``on_progress`` each time a Tune trial ends.

    ``target``: trials (schedules) the study should hold. Tune pickles its callbacks
    with the experiment; ``on_progress`` (a live display, say) stays out of the pickle,
    so a restored run reports no progress through it.
    """

    def __init__(self, target: int, maximize: bool, on_progress: Callable[[Progress], None] | None) -> None:
        self.target = target
        self.maximize = maximize
        self.on_progress = on_progress
        self.started = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "on_progress": None}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.on_progress is None:
            return
        records = [record for each in trials if MEMBERS_KEY in each.config for record in member_records(
            each.status, each.config, [each.last_result] if MEMBER_SCORES_KEY in each.last_result else [],
            unfinished="running")]
        self.on_progress(progress_of(records, self.target, self.maximize, time.monotonic() - self.started))
