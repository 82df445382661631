"""The report's "At your training length" check: the short-run ranking against the verdict's."""

from __future__ import annotations

import pytest

from autolr.report.horizon import horizon_check
from autolr.schedule.spec import ScheduleSpec
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord


def record(short: list[float], long: list[float]) -> StudyRecord:
    """Searched trials scoring ``short`` at 3 epochs, re-scored at 9 epochs to the means ``long``."""
    trials = [TrialRecord(n, "complete", ScheduleSpec("cosine", 0.1 * (n + 1)).to_dict(), [value], value, 3, 1.0)
              for n, value in enumerate(short)]
    rescored = [RescoreRecord(n, trial.spec, [0, 1], [value - 0.001, value + 0.001], [], epochs=9)
                for n, (trial, value) in enumerate(zip(trials, long))]
    return StudyRecord("s", {"epochs": 3}, trials, rescored=rescored)


@pytest.mark.parametrize("long, held, rho", [
    ([0.96, 0.95, 0.94], True, "1.00"),  # the same order
    ([0.94, 0.95, 0.96], False, "-1.00"),  # reversed: the best short run ranks 3 of 3
    ([0.95, 0.96, 0.94], False, "0.50"),  # the top two swap
])
def test_the_ranking_at_the_target_length_and_its_spearman_rho(long, held, rho):
    check = horizon_check(record([0.93, 0.92, 0.91], long))
    assert check is not None
    assert check.sentence.startswith("The short-run ranking held" if held else "The short-run ranking did not hold")
    assert f"(Spearman ρ = {rho} over 3 configurations)" in check.sentence
    assert [row["long_rank"] for row in check.rows] == [1, 2, 3]


def test_two_configurations_are_ranked_without_a_correlation():
    check = horizon_check(record([0.93, 0.92], [0.94, 0.95]))
    assert check is not None and "Spearman" not in check.sentence
    assert check.sentence.startswith("The short-run ranking did not hold at 9 epochs")
    assert "ranks 2 of 2" in check.sentence
