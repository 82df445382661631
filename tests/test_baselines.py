"""Tuned baselines: LR ladders over each family's interval, the kinds a study gets, the re-scoring
candidates, and a study whose verdict runs at the user's training length."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from autolr.space.baselines import baseline_kind, baseline_kinds, lr_ladder, tuned_baselines
from autolr.errors import StudyError
from autolr.rangetest.range_test import RangeTestResult
from autolr.schedule.spec import MAX_LR
from autolr.study.definition import LR_CHECK_SEEDS, Direction
from autolr.study.records import StudyRecord, TrialRecord
from autolr.pipeline.rescore import LR_CHECK_FACTORS, rescore_candidates
from autolr.space.search_space import FAMILY_LR_FACTORS, SearchSpace
from autolr.study.config import StudyConfig
from autolr.pipeline.run import run_study

SGD = {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}


def range_test(loss_min: float = 0.05) -> RangeTestResult:
    return RangeTestResult(lrs=[0.01, 0.1], losses=[2.0, 1.0], smoothed_losses=[2.0, 1.0], stopped_at=2,
                           stop_reason="diverged", suggestions={"loss_min": loss_min}, suggestion=loss_min / 4,
                           interval=(loss_min / 40, loss_min))


def test_ladder_is_log_spaced_and_includes_both_ends():
    ladder = lr_ladder(0.01, 1.0, 5)
    assert ladder == pytest.approx([0.01, 0.01 * 10**0.5, 0.1, 10**-0.5, 1.0])
    assert lr_ladder(0.01, 1.0, 1) == pytest.approx([0.1])


def test_each_family_searches_its_own_interval_around_the_loss_minimum():
    space = SearchSpace.from_range_test(range_test(0.05), families=("constant", "cosine"), optimizer=SGD)
    for family in ("constant", "cosine", "onecycle", "linear", "wsd"):
        low, high = FAMILY_LR_FACTORS[family]
        assert space.lr_interval(family) == pytest.approx((low * 0.05, high * 0.05))
    assert space.lr_low == pytest.approx(min(FAMILY_LR_FACTORS["constant"][0] * 0.05, 0.05 / 40))
    assert space.lr_high == pytest.approx(max(FAMILY_LR_FACTORS[f][1] for f in ("constant", "cosine")) * 0.05)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        spec = space.sample(study.ask())
        low, high = space.lr_interval(spec.family)
        assert low <= spec.lr <= high
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space


def test_family_intervals_stop_at_the_highest_lr_a_spec_may_hold():
    space = SearchSpace.from_range_test(range_test(900.0), families=("constant", "cosine"), optimizer=SGD)
    assert space.lr_interval("cosine") == pytest.approx((FAMILY_LR_FACTORS["cosine"][0] * 900.0, MAX_LR))
    assert space.lr_high == MAX_LR and FAMILY_LR_FACTORS["cosine"][1] * 900.0 > MAX_LR


def test_kinds_follow_the_optimizer_and_the_schedule_free_switch():
    assert baseline_kinds(SGD, schedule_free=True) == ("constant", "cosine", "onecycle", "linear", "schedule_free")
    assert baseline_kinds({"name": "adamw"}, schedule_free=True)[-2:] == ("schedule_free", "prodigy")
    assert baseline_kinds({"name": "adamw"}, schedule_free=False) == ("constant", "cosine", "onecycle", "linear")


def test_tuned_baselines_span_each_kind_interval_with_fixed_specs():
    space = SearchSpace.from_range_test(range_test(0.05), families=("wsd",), optimizer=SGD)
    baselines = tuned_baselines(space, points=4, schedule_free=True)
    assert len(baselines) == 5 * 4 and len({b.name for b in baselines}) == 20
    assert all(b.params is None for b in baselines)  # outside the search space
    by_kind = {}
    for item in baselines:
        by_kind.setdefault(baseline_kind(item.name), []).append(item.spec)
    cosine = by_kind["cosine"]
    assert [s.lr for s in cosine] == pytest.approx(lr_ladder(*space.lr_interval("cosine"), 4))
    assert all(s.params["min_factor"] == 0.0 and s.optimizer == SGD for s in cosine)
    linear = by_kind["linear"][0]
    assert linear.lr_at(0, 100) == pytest.approx(linear.lr) and linear.lr_at(100, 100) == pytest.approx(0.0)
    free = by_kind["schedule_free"]
    assert free[0].optimizer["name"] == "schedulefree_sgd" and free[0].optimizer["momentum"] == 0.9
    assert free[0].lr == pytest.approx(min(space.lr_interval(f)[0] for f in ("constant", "cosine", "onecycle", "linear")))
    assert tuned_baselines(space, points=0, schedule_free=True) == []


def trial(number, value, baseline=None, family="cosine", state="complete"):
    return TrialRecord(number, state, {"family": family, "lr": 0.1}, [value], value, 1, 1.0, baseline=baseline)


def test_candidates_are_the_top_searched_then_each_kind_best_rung():
    record = StudyRecord("s", {}, [
        trial(0, 0.90, "cosine#1"), trial(1, 0.95, "cosine#2"), trial(2, 0.97, "constant#1", "constant"),
        trial(3, 0.93), trial(4, 0.96), trial(5, 0.94), trial(6, 0.99, state="pruned"),
        trial(7, 0.50, "linear#1", "linear", state="diverged"),
    ])
    chosen = rescore_candidates(record, top=2, direction=Direction.MAXIMIZE)
    assert [t.number for t in chosen] == [4, 5, 2, 1]
    assert [t.number for t in rescore_candidates(record, top=2, direction=Direction.MINIMIZE)] == [3, 5, 0, 2]


@pytest.mark.parametrize("changes, message", [
    ({"target_epochs": 0}, "target_epochs must be a positive integer"),
    ({"baseline_lrs": 13}, "baseline_lrs must be an integer from 0 to 12"),
    ({"schedule_free": "yes"}, "schedule_free must be true or false"),
])
def test_bad_new_study_keys_are_refused(changes, message):
    with pytest.raises(StudyError, match=message):
        StudyConfig(name="x", dataset="digits", **changes)


@pytest.mark.slow
def test_verdict_runs_at_the_target_length_with_an_lr_check(tmp_path):
    config = StudyConfig(name="long", dataset="digits", epochs=2, target_epochs=4, trials=8, population=8,
                         device="cpu", families=("cosine", "wsd"), baseline_lrs=1, schedule_free=True,
                         rescore_top=1, rescore_seeds=2, pruner="none", batch_size=64)
    run = run_study(config, out=tmp_path)
    rescored = run.record.rescored
    assert {r.baseline for r in rescored} == {None, "constant", "cosine", "onecycle", "linear", "schedule_free"}
    searched_trials = {t.number: t for t in run.record.trials}
    for record in rescored:
        assert record.epochs == 4 and len(record.val_scores) == 2 and len(record.test_scores) == 2
        search_lr = searched_trials[record.trial_number].spec["lr"]
        tried = [check["lr"] for check in record.lr_check]  # the other LRs only where they can change a rank
        assert tried == pytest.approx([search_lr * factor for factor in LR_CHECK_FACTORS][:len(tried)])
        assert len(tried) in (1, len(LR_CHECK_FACTORS))
        assert all(len(check["val_scores"]) == LR_CHECK_SEEDS for check in record.lr_check)
        best = max(record.lr_check, key=lambda check: sum(v if math.isfinite(v) else 0.0 for v in check["val_scores"]))
        assert record.spec["lr"] == pytest.approx(best["lr"])  # the exported LR won at the target length
    checked = [r.baseline is not None for r in rescored if len(r.lr_check) == len(LR_CHECK_FACTORS)]
    assert checked.count(True) >= 1 and checked.count(False) >= 1  # each side's leader at least
    spec = json.loads(run.report_paths.best_schedule.read_text())
    assert spec["provenance"]["epochs"] == 4 and spec["provenance"]["search_epochs"] == 2
    assert spec["provenance"]["verdict"] in ("gain", "no gain")
    page = run.report_paths.index_html.read_text()
    assert spec["provenance"]["verdict_text"].split(" (")[0] in page


def test_a_budget_that_leaves_the_search_no_trial_is_refused():
    with pytest.raises(StudyError, match=r"trials = 35 leaves no trial to the search after the 35 tuned-baseline trials "
                                         r"\(7 LRs x 5 kinds"):
        StudyConfig(name="x", dataset="digits", trials=35)
    adam = {"name": "adamw"}  # Prodigy too: 6 kinds
    with pytest.raises(StudyError, match="after the 12 tuned-baseline trials"):
        StudyConfig(name="x", dataset="digits", trials=12, baseline_lrs=2, optimizer=adam)
    assert StudyConfig(name="x", dataset="digits", trials=13, baseline_lrs=2, optimizer=adam).trials == 13
    assert StudyConfig(name="x", dataset="digits", trials=2, baseline_lrs=0).trials == 2


def test_a_kind_whose_rungs_were_all_pruned_is_still_re_scored():
    pruned = [TrialRecord(0, "pruned", {"family": "cosine", "lr": 0.1}, [0.5, 0.8], None, 2, 1.0, baseline="cosine#1"),
              TrialRecord(1, "pruned", {"family": "cosine", "lr": 0.2}, [0.9], None, 1, 1.0, baseline="cosine#2"),
              TrialRecord(2, "pruned", {"family": "cosine", "lr": 0.3}, [0.4, 0.7], None, 2, 1.0, baseline="cosine#3"),
              trial(3, 0.93), trial(4, 0.91, "constant#1", "constant")]
    chosen = rescore_candidates(StudyRecord("s", {}, pruned), top=1, direction=Direction.MAXIMIZE)
    assert [t.number for t in chosen] == [3, 4, 0]  # complete rungs first; then the deepest, best last score
