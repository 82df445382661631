"""The verdict with known numbers: a clear gain exports the searched schedule; a loss, a tie within
noise or failed seeds export the best tuned baseline, and the sentence says so with the numbers."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats

from autolr.study.records import RescoreRecord
from autolr.study.definition import score_resolution
from autolr.study.verdict import decide, failure_score, paired_gain

SEEDS = [1000, 1001, 1002, 1003, 1004]


def searched(val, test=None, family="wsd", lr=0.04):
    return RescoreRecord(7, {"family": family, "lr": lr}, SEEDS, list(val), list(test or val))


def baseline(kind, val, test=None, lr=0.09):
    family = {"schedule_free": "constant"}.get(kind, kind)
    return RescoreRecord(3, {"family": family, "lr": lr}, SEEDS, list(val), list(test or val), baseline=kind)


COSINE = [0.880, 0.882, 0.879, 0.884, 0.881]


def t_interval(differences):
    mean = statistics.mean(differences)
    half = stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half


def test_paired_gain_is_the_t_interval_of_per_seed_differences():
    ours, theirs = [0.90, 0.91, 0.905, 0.92, 0.899], COSINE
    gain = paired_gain(ours, theirs, maximize=True)
    assert (gain.mean, gain.low, gain.high) == pytest.approx(t_interval([a - b for a, b in zip(ours, theirs)]))
    assert gain.clear and gain.seeds == 5
    losses = paired_gain([0.30, 0.31], [0.35, 0.33], maximize=False)  # lower loss is better: positive gain
    assert losses.mean == pytest.approx(0.035) and losses.low is not None


def test_a_clear_gain_exports_the_searched_schedule():
    wins = searched([value + 0.01 + 0.001 * index for index, value in enumerate(COSINE)])
    verdict = decide([wins, baseline("cosine", COSINE), baseline("constant", [0.86] * 5)], maximize=True,
                     metric="accuracy")
    assert verdict.outcome == "gain" and verdict.exported == 0 and verdict.best_baseline == 1
    assert verdict.val_gain.mean == pytest.approx(0.012) and verdict.val_gain.low > 0
    assert verdict.sentence.startswith("The searched wsd at LR 0.04 beat the best LR-tuned baseline, cosine to zero")
    assert "+0.0120" in verdict.sentence and verdict.sentence.endswith("exported wsd.")


def test_when_the_search_loses_the_best_baseline_is_exported():
    loses = searched([value - 0.004 for value in COSINE])
    verdict = decide([loses, baseline("constant", [0.86] * 5), baseline("cosine", COSINE)], maximize=True,
                     metric="accuracy")
    assert verdict.outcome == "no gain" and verdict.exported == 2 and verdict.best_searched == 0
    assert verdict.val_gain.mean == pytest.approx(-0.004) and not verdict.val_gain.clear
    assert verdict.sentence.startswith("No searched schedule beat cosine to zero at LR 0.09")
    assert "-0.0040" in verdict.sentence and verdict.sentence.endswith("exported cosine to zero.")


def test_a_higher_mean_within_noise_is_not_a_gain():
    noisy = searched([0.890, 0.870, 0.885, 0.878, 0.889])  # mean 0.8824 > cosine's 0.8812, CI spans zero
    verdict = decide([noisy, baseline("cosine", COSINE)], maximize=True)
    mean, low, high = t_interval([a - b for a, b in zip(noisy.val_scores, COSINE)])
    assert verdict.val_gain.mean == pytest.approx(mean) and mean > 0 and low < 0 < high
    assert verdict.outcome == "no gain" and verdict.exported == 1
    assert f"{low:+.4f} to {high:+.4f}" in verdict.sentence


def test_a_failed_seed_counts_against_its_schedule():
    cliff = searched([0.90, 0.90, math.nan, 0.90, 0.90])  # better on the 4 seeds that trained
    verdict = decide([cliff, baseline("cosine", COSINE)], maximize=True)
    assert verdict.outcome == "no gain"
    assert verdict.val_gain.mean == pytest.approx(statistics.mean([0.90 - c for c in COSINE[:2] + COSINE[3:]] + [-COSINE[2]]))
    assert "1 of 5 seeds of the searched wsd at LR 0.04 failed" in verdict.sentence


def test_minimized_loss_prefers_the_lower_score_and_fails_at_the_worst_loss():
    assert failure_score([[0.3, math.nan], [0.5, 0.4]], maximize=False) == 0.5
    lower = searched([0.30, 0.31, 0.29, 0.30, 0.305])
    verdict = decide([lower, baseline("cosine", [0.35, 0.36, 0.34, 0.36, 0.35])], maximize=False, metric="loss")
    assert verdict.outcome == "gain" and verdict.val_gain.mean == pytest.approx(0.051)


def test_the_best_baseline_is_chosen_on_validation_not_test():
    better_val = baseline("onecycle", [v + 0.002 for v in COSINE], test=[0.80] * 5)
    verdict = decide([searched([v - 0.01 for v in COSINE]), baseline("cosine", COSINE), better_val], maximize=True)
    assert verdict.exported == 2 and "one-cycle" in verdict.sentence


def test_one_side_missing():
    only_search = decide([searched(COSINE)], maximize=True)
    assert only_search.outcome == "no baselines" and only_search.exported == 0
    only_baselines = decide([baseline("schedule_free", COSINE)], maximize=True)
    assert only_baselines.outcome == "no searched" and "schedule-free" in only_baselines.sentence
    assert decide([], maximize=True) is None


ROWS = 145  # validation rows of the smoke study's digits split: accuracy moves in steps of 1 / 145 (0.0069)
STEP = score_resolution("accuracy", ROWS)


def quantized(correct):
    """Accuracies of runs that got ``correct`` of ROWS validation images right."""
    return [count / ROWS for count in correct]


def test_the_resolution_is_one_row_for_accuracy_and_none_for_a_loss():
    assert STEP == pytest.approx(1 / 145) and f"{STEP:.4f}" == "0.0069"
    assert score_resolution("loss", ROWS) == 0.0


def test_one_image_better_on_both_seeds_is_not_a_gain():
    """The smoke study's case: +1 image on each of 2 seeds, a paired spread of 0. Without the floor the t
    interval had zero width and claimed +0.0069 (CI +0.0069 to +0.0069); floored at one image it spans zero."""
    ours, theirs = quantized([131, 128]), quantized([130, 127])
    floored = paired_gain(ours, theirs, maximize=True, resolution=STEP)
    half = stats.t.ppf(0.975, 1) * STEP / math.sqrt(2)  # 12.71 * 0.0069 / 1.41 = 0.0620
    assert (floored.mean, floored.low, floored.high) == pytest.approx((STEP, STEP - half, STEP + half))
    assert floored.low == pytest.approx(-0.0551, abs=1e-4) and not floored.clear and floored.floor == STEP
    assert floored.text() == "+0.0069, 95% CI -0.0551 to +0.0689, spread floored at the score's step 0.0069"
    unknown = paired_gain(ours, theirs, maximize=True)  # no resolution known: a zero spread gives no interval
    assert unknown.low is None and not unknown.clear
    assert unknown.text() == "+0.0069, the same on all 2 seeds: no interval"
    smoke = decide([RescoreRecord(7, {"family": "wsd", "lr": 0.04}, [1000, 1001], ours, ours, val_resolution=STEP),
                    RescoreRecord(3, {"family": "cosine", "lr": 0.09}, [1000, 1001], theirs, theirs, baseline="cosine",
                                  val_resolution=STEP)], maximize=True, metric="accuracy")
    assert smoke.outcome == "no gain" and smoke.exported == 1 and "-0.0551 to +0.0689" in smoke.sentence


def test_a_spread_below_one_image_is_floored_but_a_real_gain_still_shows():
    close = paired_gain(quantized([131, 131, 131, 131, 132]), quantized([130] * 5), maximize=True)
    assert close.clear  # +1, +1, +1, +1, +2 images: the raw t interval claims a gain...
    floored = paired_gain(quantized([131, 131, 131, 131, 132]), quantized([130] * 5), maximize=True, resolution=STEP)
    assert floored.low == pytest.approx(1.2 * STEP - stats.t.ppf(0.975, 4) * STEP / math.sqrt(5))
    assert floored.low < 0 and not floored.clear  # ...that a spread of one image, the score's step, does not
    real = paired_gain(quantized([133, 134, 133, 135, 134]), quantized([130] * 5), maximize=True, resolution=STEP)
    assert statistics.stdev([3, 4, 3, 5, 4]) < 1 and real.floor == STEP
    assert real.low == pytest.approx(3.8 * STEP - stats.t.ppf(0.975, 4) * STEP / math.sqrt(5)) and real.clear
    wide = paired_gain(quantized([133, 137, 131, 135, 134]), quantized([130] * 5), maximize=True, resolution=STEP)
    assert wide.floor is None and (wide.mean, wide.low, wide.high) == pytest.approx(
        t_interval([a / ROWS for a in (3, 7, 1, 5, 4)]))  # a spread above the step is the plain t interval
