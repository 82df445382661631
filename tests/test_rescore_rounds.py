"""Sequential re-scoring with scripted scores: seeds in rounds, finalists dropped once they cannot win, the
verdict decided early only when it says "no gain", the LR check only where it can change a rank, and a
stopped re-scoring resumed without training anything twice.

``ScriptedJob`` is a real ``trials.Job``: its final score for a schedule and a seed is read from a table
(by the schedule's peak LR), so every number below is known in advance.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable, Sequence

import pytest

from autolr.pipeline.rescore import LR_CHECK_FACTORS, LR_CHECK_SEED_OFFSET, rescore, rescore_seeds
from autolr.schedule.spec import ScheduleSpec
from autolr.study.definition import LR_CHECK_SEEDS, Direction, SearchDefinition
from autolr.study.reach import FIRST_ROUND
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord
from autolr.study.verdict import decide
from autolr.trials import Evaluate, Scores

SEEDS = 5
Script = dict[float, Callable[[int], float]]  # peak LR -> (seed index -> validation score)


class ScriptedJob:
    """A Job whose runs score what ``script`` says; it counts every run it is asked for."""

    device = "cpu"

    def __init__(self, script: Script, stop_after_calls: int | None = None) -> None:
        self.script = script
        self.runs: list[tuple[float, int]] = []  # (peak LR, seed) of every run trained
        self.calls = 0
        self.stop_after_calls = stop_after_calls

    def evaluator(self, definition: SearchDefinition) -> Evaluate:
        def evaluate(trials: Sequence[object]) -> list:
            raise AssertionError("the re-scoring trains no search trials")
        return evaluate

    def final_scores(self, specs: Sequence[ScheduleSpec], seeds: Sequence[int], epochs: int | None,
                     population: int, score_test: bool = False) -> Scores:
        if self.stop_after_calls is not None and self.calls >= self.stop_after_calls:
            raise KeyboardInterrupt
        self.calls += 1
        val = [[self.score(spec.lr, seed) for seed in seeds] for spec in specs]
        self.runs += [(round(spec.lr, 9), seed) for spec in specs for seed in seeds]
        return val, [[value - 0.01 for value in row] for row in val] if score_test else []

    def score(self, lr: float, seed: int) -> float:
        offset = LR_CHECK_SEED_OFFSET if seed >= LR_CHECK_SEED_OFFSET else 1000
        return self.script[round(lr, 9)](seed - offset)

    def resolution(self) -> tuple[float, float]:
        return 0.0, 0.0  # scripted scores are continuous

    def optimizer_baselines(self) -> str | None:
        return None


def spec(lr: float, family: str = "cosine") -> dict:
    return ScheduleSpec(family, lr).to_dict()


def study(searched: Sequence[float], baselines: dict[str, float]) -> StudyRecord:
    """Searched trials at the peak LRs ``searched`` (best search score first), then one rung per baseline kind."""
    trials = [TrialRecord(n, "complete", spec(lr, "wsd"), [0.9 - n / 100], 0.9 - n / 100, 3, 1.0)
              for n, lr in enumerate(searched)]
    trials += [TrialRecord(len(trials) + n, "complete", spec(lr, kind), [0.5], 0.5, 3, 1.0, baseline=f"{kind}#1")
               for n, (kind, lr) in enumerate(baselines.items())]
    return StudyRecord("s", {}, trials)


def definition(top: int, epochs: int = 3, target: int | None = None) -> SearchDefinition:
    return SearchDefinition("s", Direction.MAXIMIZE, trials=64, epochs=epochs, rescore_top=top,
                            rescore_seeds=SEEDS, target_epochs=target)


def steady(*values: float) -> Callable[[int], float]:
    return lambda index: values[index % len(values)]


def by_lr(records: list[RescoreRecord]) -> dict[float, RescoreRecord]:
    return {round(r.spec["lr"], 9): r for r in records}


def test_a_finalist_clearly_behind_its_side_leader_stops_after_the_first_round():
    script = {
        0.1: steady(0.950, 0.952, 0.949, 0.951, 0.953),  # the searched leader
        0.2: steady(0.900, 0.901, 0.899, 0.902, 0.900),  # 0.05 behind it on both first seeds: dropped
        0.3: steady(0.951, 0.950, 0.950, 0.952, 0.951),  # within noise of the leader: kept
        0.05: steady(0.949, 0.953, 0.950, 0.950, 0.952),  # constant, the baseline leader
        0.06: steady(0.950, 0.951, 0.951, 0.949, 0.952),  # cosine, within noise
    }
    job = ScriptedJob(script)
    records = rescore(study([0.1, 0.2, 0.3], {"constant": 0.05, "cosine": 0.06}), definition(top=3), job, 8)
    seeds = {lr: len(r.val_scores) for lr, r in by_lr(records).items()}
    assert seeds == {0.1: 5, 0.2: FIRST_ROUND, 0.3: 5, 0.05: 5, 0.06: 5}
    assert len(job.runs) == 4 * 5 + 2 == 22  # instead of 5 x 5
    dropped = by_lr(records)[0.2]
    assert dropped.seeds == rescore_seeds(definition(3))[:2] and dropped.val_scores == [0.900, 0.901]
    assert dropped.test_scores == pytest.approx([0.890, 0.891])
    verdict = decide(records, maximize=True)
    assert verdict.outcome == "no gain" and verdict.val_gain.seeds == 5  # a tie is never decided early


def test_a_verdict_that_can_only_say_no_gain_stops_after_the_first_round():
    script = {0.1: steady(0.900, 0.9015), 0.2: steady(0.890, 0.892), 0.05: steady(0.950, 0.951),
              0.06: steady(0.80, 0.81)}
    job = ScriptedJob(script)
    records = rescore(study([0.1, 0.2], {"constant": 0.05, "cosine": 0.06}), definition(top=2), job, 8)
    assert [len(r.val_scores) for r in records] == [2, 2, 2, 2] and len(job.runs) == 8
    verdict = decide(records, maximize=True)
    assert verdict.outcome == "no gain" and verdict.val_gain.seeds == 2 and verdict.val_gain.high < 0
    assert records[verdict.exported].baseline == "constant"


def test_a_gain_is_claimed_only_over_every_seed():
    script = {0.1: steady(0.960, 0.962, 0.961, 0.963, 0.960), 0.05: steady(0.950, 0.951, 0.950, 0.952, 0.949),
              0.06: steady(0.80, 0.82, 0.81, 0.80, 0.81)}
    job = ScriptedJob(script)
    records = rescore(study([0.1], {"constant": 0.05, "cosine": 0.06}), definition(top=1), job, 8)
    assert [len(r.val_scores) for r in records] == [5, 5, 2]  # cosine dropped behind constant
    verdict = decide(records, maximize=True)
    assert verdict.outcome == "gain" and verdict.val_gain.seeds == 5 and verdict.val_gain.low > 0


def test_a_stopped_re_scoring_trains_only_what_it_had_not_finished():
    script = {0.1: steady(0.950, 0.952, 0.949, 0.951, 0.953), 0.2: steady(0.900, 0.901),
              0.05: steady(0.949, 0.953, 0.950, 0.950, 0.952)}
    record, whole = study([0.1, 0.2], {"constant": 0.05}), ScriptedJob(script)
    expected = rescore(record, definition(top=2), whole, 8)
    saved: list[dict] = []
    stopped = ScriptedJob(script, stop_after_calls=3)
    with pytest.raises(KeyboardInterrupt):
        rescore(record, definition(top=2), stopped, 8, save=lambda progress: saved.append(progress))
    resumed = ScriptedJob(script)
    again = rescore(record, definition(top=2), resumed, 8, progress=saved[-1])
    assert again == expected
    assert len(stopped.runs) + len(resumed.runs) == len(whole.runs) == 3 * 2 + 2 * 3


def test_the_lr_check_tries_other_lrs_only_where_they_can_change_a_rank():
    factors = {factor: index for index, factor in enumerate(LR_CHECK_FACTORS)}  # own LR, half, double

    def lrs(base: float, scores: Sequence[float]) -> Script:  # one score per factor, the same for every seed
        return {round(base * factor, 9): steady(scores[factors[factor]]) for factor in LR_CHECK_FACTORS}

    script = {**lrs(0.1, (0.950, 0.955, 0.900)),  # searched: half its LR gains 0.005
              **lrs(0.5, (0.930, 0.990, 0.900)),  # far behind at its own LR (a gain of 0.06 would go unseen)
              **lrs(0.3, (0.952, 0.954, 0.940)),  # the searched leader at its own LR: checked first
              **lrs(0.07, (0.940, 0.930, 0.945)),  # the baseline leader: double its LR gains 0.005
              **lrs(0.09, (0.800, 0.800, 0.800))}  # far behind
    job = ScriptedJob(script)
    records = rescore(study([0.1, 0.5, 0.3], {"constant": 0.07, "cosine": 0.09}), definition(3, 3, 9), job, 8)
    rows = {round(r.lr_check[0]["lr"], 9): r for r in records}
    # first the two leaders at their own LR (0.3, 0.07); the largest gain an LR change brought is 0.005, which
    # brings 0.1 (0.950 + 0.005 >= 0.954) within reach of 0.3 but neither 0.5 nor 0.09
    assert {lr: len(r.lr_check) for lr, r in rows.items()} == {0.1: 3, 0.5: 1, 0.3: 3, 0.07: 3, 0.09: 1}
    check_runs = [run for run in job.runs if run[1] >= LR_CHECK_SEED_OFFSET]
    assert len(check_runs) == (5 + 3 * 2) * LR_CHECK_SEEDS == 22  # instead of 5 x 3 x 2 = 30
    assert rows[0.1].spec["lr"] == pytest.approx(0.05) and rows[0.07].spec["lr"] == pytest.approx(0.14)
    assert rows[0.5].spec["lr"] == pytest.approx(0.5)  # never checked: keeps its own LR
    assert all(len(r.val_scores) >= 2 and r.epochs == 9 for r in records)


def lr_check_script() -> Script:
    """Finalists whose LR check favours half their LR (0.1, 0.3), double it (0.07) or is never due (0.5, 0.09)."""
    factors = {factor: index for index, factor in enumerate(LR_CHECK_FACTORS)}  # own LR, half, double

    def lrs(base: float, scores: Sequence[float]) -> Script:  # one score per factor, the same for every seed
        return {round(base * factor, 9): steady(scores[factors[factor]]) for factor in LR_CHECK_FACTORS}

    return {**lrs(0.1, (0.950, 0.955, 0.900)), **lrs(0.5, (0.930, 0.990, 0.900)), **lrs(0.3, (0.952, 0.954, 0.940)),
            **lrs(0.07, (0.940, 0.930, 0.945)), **lrs(0.09, (0.800, 0.800, 0.800))}


@pytest.mark.parametrize("stop_after_calls", [None, 2, 3])
def test_a_budgeted_lr_check_tries_double_the_lr_only_where_half_did_not_win(stop_after_calls):
    record = study([0.1, 0.5, 0.3], {"constant": 0.07, "cosine": 0.09})
    budgeted = dataclasses.replace(definition(3, 3, 9), budget_grids=2.0)
    script = lr_check_script()
    saved: list[dict] = []
    jobs = [ScriptedJob(script, stop_after_calls)]
    try:
        records = rescore(record, budgeted, jobs[0], 8, save=saved.append)
    except KeyboardInterrupt:  # stopped after the lower LRs (2) or the first higher one (3): resumed
        jobs.append(ScriptedJob(script))
        records = rescore(record, budgeted, jobs[1], 8, progress=saved[-1])
    rows = {round(r.lr_check[0]["lr"], 9): r for r in records}
    # the leaders (0.3, 0.07) try half their LR; only 0.07 loses there and tries double; the gain seen (0.005)
    # brings 0.1 within reach, whose half wins: 9 runs per seed where the whole study's check takes 11
    assert {lr: len(r.lr_check) for lr, r in rows.items()} == {0.1: 2, 0.5: 1, 0.3: 2, 0.07: 3, 0.09: 1}
    check_runs = [run for job in jobs for run in job.runs if run[1] >= LR_CHECK_SEED_OFFSET]
    assert len(check_runs) == (5 + 2 + 1 + 1) * LR_CHECK_SEEDS
    assert [rows[lr].spec["lr"] for lr in (0.1, 0.3, 0.07, 0.5)] == pytest.approx([0.05, 0.15, 0.14, 0.5])
    whole = rescore(record, definition(3, 3, 9), ScriptedJob(script), 8)
    assert {round(r.lr_check[0]["lr"], 9): len(r.lr_check) for r in whole} == {0.1: 3, 0.5: 1, 0.3: 3, 0.07: 3,
                                                                               0.09: 1}


def random_case(rng: random.Random) -> Script:
    """Five finalists (three searched, two baselines) with means a few seed spreads apart and a shared seed effect."""
    means = [0.95 + rng.choice((-0.02, -0.01, -0.005, -0.002, 0.0, 0.002, 0.005)) for _ in range(5)]
    seed_effect = [rng.gauss(0, 0.003) for _ in range(SEEDS)]
    noise = [[rng.gauss(0, rng.choice((0.001, 0.003))) for _ in range(SEEDS)] for _ in range(5)]
    return {lr: (lambda index, m=m, n=n: m + seed_effect[index] + n[index])
            for lr, m, n in zip((0.1, 0.2, 0.3, 0.05, 0.06), means, noise)}


def test_sequential_re_scoring_never_claims_a_gain_the_full_seed_count_would_not():
    rng = random.Random(27)
    gains = drops = 0
    for _ in range(300):
        script = random_case(rng)
        record = study([0.1, 0.2, 0.3], {"constant": 0.05, "cosine": 0.06})
        job = ScriptedJob(script)
        sequential = decide(rescore(record, definition(top=3), job, 8), maximize=True)
        full = [RescoreRecord(r.trial_number, r.spec, list(range(SEEDS)), [script[round(r.spec["lr"], 9)](i)
                                                                            for i in range(SEEDS)], [], r.baseline)
                for r in rescore(record, definition(top=3), ScriptedJob(script), 8)]
        full_verdict = decide(full, maximize=True)
        if sequential.outcome == "gain":
            gains += 1
            assert full_verdict.outcome == "gain"
            assert sequential.val_gain.seeds == SEEDS
        drops += len(job.runs) < 5 * SEEDS
    assert gains >= 20 and drops >= 100  # the cases exercise both claims and early stops
