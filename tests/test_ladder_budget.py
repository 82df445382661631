"""Adaptive baseline ladders (a coarse ladder, then golden-section rungs around its best) and a study's budget
in minutes (the search, refined rungs and re-scoring sized from the first trials' measured time)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from autolr.backends.optuna.engine import read_study_record
from autolr.errors import StudyError
from autolr.pipeline.budget import budget_note, budget_seconds, grid_seconds, plan_budget
from autolr.search import search
from autolr.space.baselines import GOLDEN_STEP, ladder_rungs, lr_ladder, refined_lrs
from autolr.space.search_space import SearchSpace
from autolr.study.config import StudyConfig, packaged_study
from autolr.study.definition import Direction, SearchDefinition

EPOCHS = 4
SPACE = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine"), warmup=False)
KINDS = ("constant", "cosine", "onecycle", "linear")  # schedule_free=False


def peaked_training(schedule, trial) -> float:
    """A score that peaks at a peak LR of 0.1 (log scale), whatever the schedule."""
    score = -abs(math.log10(schedule.lr) + 1.0)
    for epoch in range(EPOCHS):
        trial.report(score, epoch)
    return score


def test_the_ladder_splits_into_coarse_and_refined_rungs():
    assert ladder_rungs(7) == (5, 2) and ladder_rungs(5) == (3, 2)
    assert ladder_rungs(4) == (4, 0) and ladder_rungs(1) == (1, 0)  # fewer than 3 coarse rungs: no refinement


def test_refined_rungs_are_a_golden_section_step_around_the_best_coarse_rung():
    ladder = lr_ladder(0.01, 1.0, 5)  # a log step of 10 ** 0.5
    step = 0.5 * GOLDEN_STEP
    assert GOLDEN_STEP == pytest.approx(0.381966, abs=1e-6)
    assert refined_lrs(0.01, 1.0, 5, 2) == pytest.approx([ladder[2] * 10 ** -step, ladder[2] * 10 ** step])
    assert refined_lrs(0.01, 1.0, 5, 0) == pytest.approx([0.01 * 10 ** step, 0.01 * 10 ** (0.5 - step)])
    assert refined_lrs(0.01, 1.0, 5, 4) == pytest.approx([10 ** -(0.5 - step), 10 ** -step])  # never past the end


def test_a_study_refines_each_ladder_after_its_coarse_rungs_and_a_rerun_queues_nothing_again(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    settings = dict(space=SPACE, n_trials=24, storage=storage, epochs=EPOCHS, pruner="none", baseline_lrs=5,
                    schedule_free=False, rescore_seeds=0)
    search(peaked_training, **settings)
    trials = read_study_record(storage).trials
    # without a budget every kind's coarse ladder runs first, in the recipe's order (the whole study is unchanged)
    assert [t.baseline for t in trials[:12]] == [f"{kind}#{rung}" for kind in KINDS for rung in (1, 2, 3)]
    refined = {t.baseline: t.spec["lr"] for t in trials if t.baseline and int(t.baseline.split("#")[1]) > 3}
    assert len(refined) == 2 * len(KINDS) and all(t.baseline in refined for t in trials[12:20])  # then refinement
    for kind in KINDS:
        low, high = SPACE.lr_interval(kind)
        rungs = lr_ladder(low, high, 3)
        best = min(range(3), key=lambda index: abs(math.log10(rungs[index]) + 1.0))
        assert [refined[f"{kind}#4"], refined[f"{kind}#5"]] == pytest.approx(refined_lrs(low, high, 3, best))
    search(peaked_training, **settings)  # resumed: nothing is queued or trained again
    again = read_study_record(storage).trials
    assert len(again) == len(trials) == 24 and [t.baseline for t in again] == [t.baseline for t in trials]


def definition(**changes) -> SearchDefinition:
    return SearchDefinition("s", Direction.MAXIMIZE, trials=64, epochs=3, rescore_top=3, rescore_seeds=5, **changes)


PRIORITY = ("cosine", "constant", "onecycle", "linear", "schedule_free")  # by_priority: the plain grid's kind first


def plan(budget_s: float, run_s: float = 1.0, target_epochs: int | None = None, **changes):
    """The plan after the cosine ladder (5 coarse rungs) and 3 search trials filled one population of 8."""
    return plan_budget(definition(target_epochs=target_epochs, **changes), budget_s=budget_s, run_s=run_s,
                       population=8, kinds=PRIORITY, coarse=5, search=29, refined=2, done=8)


def test_a_budget_cuts_the_search_then_refinement_re_scoring_and_the_kinds_tuned_last_in_priority():
    # the rest: 29 searched + 5 kinds x 7 rungs - 8 done = 56 trials (7 populations), then 5 seeds x 8 finalists
    # (40 runs, 5 populations' worth): 12 s
    fits = plan(12.0)
    assert (fits.search, fits.refined, fits.rescore_top, fits.rescore_seeds, fits.ladder_kinds, fits.cuts) == (
        29, 2, 3, 5, 5, [])
    assert fits.estimate_s == pytest.approx(12.0)
    tight = plan(10.0)  # 29 -> 21 -> 13 searched: 40 trials left, 5 populations
    assert (tight.search, tight.refined, tight.estimate_s, tight.cuts) == (13, 2, 10.0, ["search trials 29 -> 13"])
    # no refinement, the search at one coarse ladder (5), 1 + 1 finalists on 5 seeds: 10 runs; 3 kinds tuned,
    # 5 + 3 x 5 - 8 = 12 trials left, 2 populations
    three = plan(3.25)
    assert (three.search, three.refined, three.rescore_top, three.rescore_kinds, three.ladder_kinds,
            three.rescore_seeds, three.estimate_s) == (5, 0, 1, 1, 3, 5, 3.25)
    assert three.cuts == ["search trials 29 -> 5", "refined baseline rungs 10 -> 0",
                          "re-scored searched configurations 3 -> 1",
                          "tuned baseline kinds 5 -> 3 (cosine to zero, constant, one-cycle)",
                          "re-scored baseline kinds (the best kept) 5 -> 1"]
    short = plan(1.0)  # the smallest: cosine alone, 5 searched, 2 finalists on 3 seeds: 1 population + 6 runs
    assert (short.search, short.ladder_kinds, short.rescore_kinds, short.rescore_seeds, short.estimate_s) == (
        5, 1, 1, 3, 1.75)
    assert "tuned baseline kinds 5 -> 1 (cosine to zero, the schedule of the plain grid)" in short.cuts
    assert not any(cut.startswith("re-scored baseline kinds") for cut in short.cuts)  # the tuned kind is re-scored
    assert short.cuts[-1] == "even so it needs about 0.029 minutes more than the 0.017 left in the budget"


def test_the_search_keeps_at_least_one_kinds_ladder_and_the_trials_already_run():
    smallest = plan(0.0)
    assert smallest.search == 5  # the coarse ladder's 5 rungs (refinement cut)
    filled = plan_budget(definition(), budget_s=0.0, run_s=1.0, population=16, kinds=PRIORITY, coarse=5, search=29,
                         refined=2, done=16)  # 11 search trials filled the first population of 16
    assert filled.search == 11


def test_a_study_sizes_itself_to_its_budget_and_says_what_it_cut(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = search(peaked_training, space=SPACE, n_trials=40, storage=storage, epochs=EPOCHS, pruner="none",
                    baseline_lrs=5, schedule_free=False, rescore_seeds=5, budget=1e-4)
    trials = result.record.trials  # cosine's coarse ladder first, then as many searched (populations of one)
    assert [t.baseline for t in trials] == ["cosine#1", "cosine#2", "cosine#3", None, None, None]
    note = result.record.meta["budget"]
    assert note.startswith("To fit its 0.0001-minute budget the study cut search trials 20 -> 3; refined baseline "
                           "rungs 8 -> 0; re-scored searched configurations 3 -> 1; tuned baseline kinds 4 -> 1 "
                           "(cosine to zero, the schedule of the plain grid); fresh seeds at most 5 -> 3")
    assert note in result.record.meta["notes"]
    assert max(len(r.seeds) for r in result.record.rescored) <= 3 and len(result.record.rescored) == 1 + 1
    again = search(peaked_training, space=SPACE, n_trials=40, storage=storage, epochs=EPOCHS, pruner="none",
                   baseline_lrs=5, schedule_free=False, rescore_seeds=5, budget=1e-4)  # resumed: the stored plan
    assert [t.number for t in again.record.trials] == [t.number for t in result.record.trials]
    assert again.record.meta["budget"] == note and again.record.rescored == result.record.rescored
    roomy = search(peaked_training, space=SPACE, n_trials=24, epochs=EPOCHS, pruner="none", baseline_lrs=5,
                   schedule_free=False, rescore_seeds=2, budget=600)
    assert roomy.record.meta["budget"] == "The whole study fits its 600-minute budget."
    assert len(roomy.record.trials) == 24


def test_a_budget_in_grids_is_the_plain_grid_at_the_verdict_length_from_the_measured_population():
    # a population of 8 trials at 3 epochs took 2 s: one run 0.25 s, 0.75 s at 9 epochs, the 12-LR grid 9 s
    assert grid_seconds(2.0, 8, definition(target_epochs=9)) == pytest.approx(12 * 2.0 / 8 * 3)
    assert budget_seconds(definition(target_epochs=9, budget_grids=2.0), 2.0, 8) == pytest.approx(18.0)
    assert budget_seconds(definition(budget=1.5, budget_grids=2.0), 2.0, 8) == 90.0  # minutes take its place


def test_a_grid_budget_cuts_kinds_then_seeds_and_leaves_the_lr_check_two_seeds():
    # at 9 epochs (run_s 2 s, populations of 8) the smallest plan: 1 population of trials, then 1 + 1 finalists on
    # 3 seeds (6 runs) and the LR check on 2 seeds (2 own + 4 other LRs: 12 runs), 18 runs x 3 / 8: 2 x 7.75 = 15.5 s
    tight = plan(10.0, run_s=2.0, target_epochs=9, budget_grids=2.0)
    assert (tight.search, tight.refined, tight.rescore_top, tight.rescore_kinds, tight.ladder_kinds,
            tight.rescore_seeds, tight.lr_check_seeds, tight.estimate_s) == (5, 0, 1, 1, 1, 3, 2, 15.5)
    assert "LR-check seeds" not in " ".join(tight.cuts)  # one seed moved no LR where two did
    three = plan(10.0, run_s=2.0, target_epochs=9, budget_grids=2.0, lr_check_seeds=3)
    assert three.lr_check_seeds == 2 and "LR-check seeds 3 -> 2" in three.cuts
    roomier = plan(17.0, run_s=2.0, target_epochs=9)  # 4 seeds: 20 runs, 2 x (1 + 7.5) = 17 s
    assert (roomier.rescore_kinds, roomier.rescore_seeds, roomier.lr_check_seeds) == (1, 4, 2)
    same = plan(5.0)
    assert same.lr_check_seeds is None and "LR-check seeds" not in " ".join(same.cuts)  # no LR check at 3 epochs
    note = budget_note(definition(target_epochs=9, budget_grids=2.0), dataclasses.replace(tight, budget_s=18.0))
    assert note.startswith("To fit its budget of 2 plain grids (about 18 s: 12 LRs of one schedule at 9 epochs, "
                           "estimated from its first trials; --full runs the whole study) the study cut search "
                           "trials 29 -> 5;")


def test_the_shipped_image_studies_fit_two_grids_and_whole_drops_the_budget():
    mnist = packaged_study("mnist")
    assert mnist.budget_grids == 2 and mnist.definition().budgeted
    assert packaged_study("fashion-mnist").budget_grids == 2
    whole = mnist.whole()
    assert (whole.budget, whole.budget_grids, whole.definition().budgeted) == (None, None, False)


@pytest.mark.parametrize("changes, message", [
    ({"budget": 0}, "budget must be a positive number of minutes"),
    ({"budget_grids": -2}, "budget_grids must be a positive number of plain-grid multiples"),
    ({"budget": "5"}, "budget must be a positive number of minutes"),
    ({"budget": 5, "backend": "ray"}, "budget needs the optuna backend"),
])
def test_a_bad_budget_is_one_sentence(changes, message):
    with pytest.raises(StudyError, match=message):
        StudyConfig(name="x", dataset="digits", **changes)


def test_a_study_in_grids_sizes_itself_and_says_so(tmp_path: Path):
    from autolr.pipeline.run import run_study

    config = StudyConfig(name="grids", dataset="digits", epochs=2, trials=12, baseline_lrs=1, schedule_free=False,
                         families=("constant", "cosine"), population=4, device="cpu", rescore_top=2,
                         rescore_seeds=4, budget_grids=0.01)
    run = run_study(config, out=tmp_path)
    note = run.record.meta["budget"]
    assert note.startswith("To fit its budget of 0.01 plain grids (about ")
    assert ("the study cut search trials 8 -> 3; re-scored searched configurations 2 -> 1; tuned baseline kinds 4 -> 1 "
            "(cosine to zero, the schedule of the plain grid); fresh seeds at most 4 -> 3; even so it needs about") in note
    assert [t.baseline for t in run.record.trials] == ["cosine#1", None, None, None]  # one population: cosine's rung
    assert [r.baseline is None for r in run.record.rescored] == [True, False]
    assert max(len(r.seeds) for r in run.record.rescored) <= 3


def test_the_whole_study_tunes_every_kind_first_and_runs_every_trial(tmp_path: Path):
    from autolr.pipeline.run import run_study

    config = StudyConfig(name="whole", dataset="digits", epochs=2, trials=12, baseline_lrs=1, schedule_free=False,
                         families=("constant", "cosine"), population=4, device="cpu", rescore_top=2,
                         rescore_seeds=2, budget_grids=0.01).whole()  # --full: the grid budget dropped
    run = run_study(config, out=tmp_path)
    assert [t.baseline for t in run.record.trials] == [f"{kind}#1" for kind in KINDS] + [None] * 8
    assert run.record.meta["budget"] is None and len(run.record.rescored) == 2 + len(KINDS)
