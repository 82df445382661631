"""A built-in study run four times in one process: more trials trains only the new ones; a rerun of a
finished study trains nothing, redoes no range test and, with its population left out, keeps the size it ran with."""

from __future__ import annotations

import pytest
import torch

import autolr.training.population
import autolr.jobs.builtin
import autolr.pipeline.steps
from autolr.study.config import StudyConfig
from autolr.pipeline.run import run_study

CONFIG = StudyConfig(name="thrice", dataset="digits", epochs=2, trials=5, population=3, device="cpu",
                     families=("constant", "cosine", "step", "onecycle"), rescore_top=1, rescore_seeds=2,
                     baseline_lrs=1, schedule_free=False)


def refuse(*args, **kwargs):
    raise AssertionError("called although the study already holds its result")


@pytest.mark.slow
def test_resumed_study_trains_only_what_is_missing(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    range_tests: list[str] = []
    builtin_range_test = autolr.pipeline.steps.builtin_range_test

    def counting_range_test(*args, **kwargs):
        range_tests.append(kwargs["device"])
        return builtin_range_test(*args, **kwargs)

    monkeypatch.setattr(autolr.pipeline.steps, "builtin_range_test", counting_range_test)
    first = run_study(CONFIG, out=tmp_path)
    assert range_tests == ["cpu"]  # the study's range test goes through the patched function
    assert len(first.record.trials) == 5 and first.record.range_test is not None
    assert {r.baseline for r in first.record.rescored} - {None} == {"constant", "cosine", "onecycle", "linear"}

    trained: list[int] = []
    train_population = autolr.training.population.train_population

    def counting(specs, *args, **kwargs):
        trained.append(len(specs))
        return train_population(specs, *args, **kwargs)

    monkeypatch.setattr(autolr.training.population, "train_population", counting)  # the re-scoring's
    monkeypatch.setattr(autolr.jobs.builtin, "train_population", counting)  # the search's
    second = run_study(CONFIG.replace(trials=7), out=tmp_path)
    assert second.record.trials[:5] == first.record.trials and len(second.record.trials) == 7
    assert trained[0] == 2  # the two new trials; then re-scoring: candidates x seeds (test scored at the end of each run)
    assert sum(trained[1:]) == 2 * len(second.record.rescored)
    assert second.record.range_test == first.record.range_test

    monkeypatch.setattr(autolr.training.population, "train_population", refuse)
    monkeypatch.setattr(autolr.jobs.builtin, "train_population", refuse)
    third = run_study(CONFIG.replace(trials=7), out=tmp_path)
    assert third.record.trials == second.record.trials and third.record.rescored == second.record.rescored
    assert third.record.meta["wall_time_s"] > second.record.meta["wall_time_s"]  # wall time adds up over runs
    assert range_tests == ["cpu"]  # neither rerun did a range test again
    assert torch.get_num_threads() == threads  # the run's one CPU thread was given back
    assert (tmp_path / "thrice" / "best_schedule.json").is_file()

    monkeypatch.setattr(autolr.pipeline.steps, "choose_population_size", refuse)  # no timing probe on a resume ...
    fourth = run_study(CONFIG.replace(trials=7, population=None), out=tmp_path)
    assert fourth.record.meta["population"] == 3  # ... the size the study ran with, stored with it
