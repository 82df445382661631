"""Parameter importance per family: a known answer, and families it cannot explain."""

from __future__ import annotations

import math
import random

import pytest

from autolr.study.records import StudyRecord, TrialRecord
from autolr.backends.optuna.importance import MIN_TRIALS, importance_by_family
from report_records import spec


def cosine_record(values: list[float], seed: int = 0) -> StudyRecord:
    """Complete cosine trials with random ``lr`` and ``min_factor`` and the given scores."""
    rng = random.Random(seed)
    trials = [
        TrialRecord(number, "complete", spec("cosine", 10 ** rng.uniform(-3, 0), min_factor=rng.uniform(0, 0.2)),
                    [value], value, 1)
        for number, value in enumerate(values)
    ]
    return StudyRecord(name="importance", config={"direction": "maximize"}, trials=trials)


def test_the_parameter_that_decides_the_score_gets_most_of_the_importance():
    record = cosine_record([0.0] * 40)
    for trial in record.trials:  # the score depends on the LR alone, peaking at 0.05
        trial.value = 0.98 - 0.2 * abs(math.log10(trial.spec["lr"]) - math.log10(0.05))
    scores = importance_by_family(record)["cosine"]
    assert sum(scores.values()) == pytest.approx(1.0)
    assert scores["lr"] > 0.8 > scores["params.min_factor"]


def test_a_family_whose_trials_all_scored_the_same_gets_no_importance_instead_of_an_error():
    record = cosine_record([0.1] * (MIN_TRIALS + 3))  # fANOVA's forest would have zero variance
    assert importance_by_family(record) == {}
    record.trials[0].value = 0.9
    assert set(importance_by_family(record)) == {"cosine"}


def test_a_report_without_an_importance_chart_says_why_and_one_with_it_does_not(tmp_path):
    from report_records import small_record

    from autolr.report.write import write_report

    few = small_record()
    few.trials = [trial for trial in few.trials if trial.number not in (8, 9)]  # 3 complete searched cosine + 1
    page = write_report(few, tmp_path / "few").index_html.read_text()
    assert ('id="chart-note">No parameter-importance chart: it needs a family with at least 5 complete searched '
            "trials and two parameters that vary, and this study completed 4 searched trials in all.") in page
    assert 'data-chart="importance"' not in page
    many = cosine_record([0.9 + 0.001 * number for number in range(MIN_TRIALS + 3)])
    many.config = small_record().config
    page = write_report(many, tmp_path / "many").index_html.read_text()
    assert 'data-chart="importance"' in page and 'id="chart-note"' not in page
