"""Tables of a study (pandas): trials, the ranking by the stated rule, families, gain over baselines."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from autolr.schedule.spec import flatten_spec
from autolr.space.baselines import KIND_LABELS
from autolr.study.definition import ScoreUnit
from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord, maximizes, zero_counts
from autolr.study.verdict import (
    CONFIDENCE,
    Verdict,
    counted,
    decide,
    failure_score,
    floored_std,
    mean,
    on_shared_seeds,
    paired_gain,
)


def metric_name(record: StudyRecord) -> str:
    """The study's score in words with its unit: ``accuracy``, ``loss``, ``loss (bits/byte)`` or, unnamed, ``score``."""
    return score_unit(record).name_of(str(record.config.get("metric", "score")))


def score_unit(record: StudyRecord) -> ScoreUnit:
    """The unit the report shows the study's scores in (``StudyConfig.score_unit``, stored with the study)."""
    return ScoreUnit.parse(record.config.get("score_unit"))


def in_score_unit(record: StudyRecord) -> StudyRecord:
    """``record`` with every score (trials' curves and values, re-scored seeds, LR checks) in its
    ``score_unit``: what the report ranks, draws and prints. The stored record keeps nats."""
    unit = score_unit(record)
    if unit is ScoreUnit.AS_STORED:
        return record

    def scaled(values: list[float]) -> list[float]:
        return [unit.scale(value) for value in values]

    trials = [replace(trial, val_curve=scaled(trial.val_curve),
                      value=None if trial.value is None else unit.scale(trial.value)) for trial in record.trials]
    rescored = [replace(item, val_scores=scaled(item.val_scores), test_scores=scaled(item.test_scores),
                        lr_check=[{**check, "val_scores": scaled(check["val_scores"])} for check in item.lr_check])
                for item in record.rescored]
    return replace(record, trials=trials, rescored=rescored)


def describe_spec(spec: dict[str, Any], fixed: frozenset[str] = frozenset()) -> str:
    """The schedule's parameters in one short line, e.g. ``min_factor=0.01, warmup 5% from 0.1``.

    Parameters named in ``fixed`` (the same in every trial of the family) are left out.
    """
    parts = [f"{key}={_short(value)}" for key, value in sorted((spec.get("params") or {}).items()) if key not in fixed]
    warmup = spec.get("warmup") or {}
    if warmup.get("fraction"):
        parts.append(f"warmup {warmup['fraction']:.0%} from {_short(warmup.get('start_factor', 0.0))}")
    return ", ".join(parts) or "no parameters"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    return str(value)


def fixed_params(record: StudyRecord) -> dict[str | None, frozenset[str]]:
    """Per family (None for a spec without one), the parameters that took one value in all of its
    (two or more) trials: not searched."""
    values: dict[str | None, dict[str, set[str]]] = {}
    counts: dict[str | None, int] = {}
    for trial in record.trials:
        family = trial.spec.get("family")
        counts[family] = counts.get(family, 0) + 1
        for key, value in (trial.spec.get("params") or {}).items():
            values.setdefault(family, {}).setdefault(key, set()).add(json.dumps(value))
    return {
        family: frozenset(key for key, seen in params.items() if len(seen) == 1) if counts[family] > 1 else frozenset()
        for family, params in values.items()
    }


def trials_table(record: StudyRecord) -> pd.DataFrame:
    """One row per trial: number, state, baseline, every spec field, epochs, scores, duration.

    Per-epoch validation scores are the columns ``val_epoch_1`` .. ``val_epoch_N`` (N the
    longest run; empty where a trial stopped earlier); ``value`` is the final score.
    """
    longest = max((len(trial.val_curve) for trial in record.trials), default=0)
    rows = []
    for trial in sorted(record.trials, key=lambda trial: trial.number):
        row: dict[str, Any] = {"number": trial.number, "state": trial.state, "baseline": trial.baseline}
        row.update(flatten_spec(trial.spec))
        row.update(epochs_run=trial.epochs_run, value=trial.value, duration_s=trial.duration_s, error=trial.error)
        row.update({f"val_epoch_{epoch + 1}": score for epoch, score in enumerate(trial.val_curve)})
        rows.append(row)
    fixed = ["number", "state", "baseline", "family", "lr"]
    tail = ["epochs_run", "value", "duration_s", "error"] + [f"val_epoch_{epoch + 1}" for epoch in range(longest)]
    spec_columns = sorted({key for row in rows for key in row} - set(fixed) - set(tail))
    return pd.DataFrame(rows, columns=fixed + spec_columns + tail)


def state_counts(record: StudyRecord) -> dict[str, int]:
    """How many trials ended in each state (complete, pruned, diverged, failed, interrupted, running)."""
    counts = zero_counts()
    for trial in record.trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    return counts


@dataclass(frozen=True)
class Ranking:
    """Configurations best first by :attr:`rule`; ``table`` row 0 is the recommended one.

    ``table`` columns: rank, trial, family, baseline (name, or "" for a searched trial), lr, parameters, val_mean,
    val_std (over seeds, at least the score's step: a spread below it is rounded away), seeds, failed (seeds whose
    run failed, counted in the means), test_mean, test_std (as val_std), search_value,
    epochs_run, rescored, rescore_index (position in ``record.rescored``, -1 for a trial not re-scored), spec (dict).
    ``verdict``: what the re-scoring decided (None before re-scoring); it names the exported row.
    """

    table: pd.DataFrame
    rule: str
    rescored: bool
    verdict: Verdict | None = None

    @property
    def best(self) -> pd.Series | None:
        """The exported configuration's row (the verdict's, else the top row), or None when no trial has completed."""
        if self.table.empty:
            return None
        if self.verdict is not None:
            return self.table[self.table["rescore_index"] == self.verdict.exported].iloc[0]
        return self.table.iloc[0]


def rank(record: StudyRecord) -> Ranking:
    """Rank the study's configurations by the rule the report states.

    With re-scoring: configurations re-trained on fresh seeds come first, those that ran
    the most seeds first (the re-scoring stops a configuration once it cannot win), by their
    mean validation score over those seeds; the other complete trials follow by their final
    validation score in the search. Without: complete trials by final validation score.
    Ties go to the lower trial number.
    """
    trials: dict[int | None, TrialRecord] = {trial.number: trial for trial in record.trials}  # get(None) is None
    fixed = fixed_params(record)
    failed_at = (failure_score([r.val_scores for r in record.rescored], maximizes(record)),
                 failure_score([r.test_scores for r in record.rescored], maximizes(record)))
    rows = [_rescored_row(index, rescore, trials.get(rescore.trial_number), fixed, failed_at)
            for index, rescore in enumerate(record.rescored)]
    rescored_numbers = {rescore.trial_number for rescore in record.rescored}
    rows += [
        _search_row(trial, fixed)
        for trial in record.trials
        if trial.state == "complete" and trial.value is not None and trial.number not in rescored_numbers
    ]
    columns = ["rank", "trial", "family", "baseline", "lr", "parameters", "val_mean", "val_std", "seeds", "failed",
               "test_mean", "test_std", "search_value", "epochs_run", "rescored", "rescore_index", "spec"]
    table = pd.DataFrame(rows, columns=columns[1:])
    if not table.empty:
        sign = -1.0 if maximizes(record) else 1.0
        table = table.assign(_key=sign * table["val_mean"], _trial=table["trial"].fillna(math.inf))
        table = table.sort_values(["rescored", "seeds", "_key", "_trial"], ascending=[False, False, True, True],
                                  kind="stable")  # a finalist stopped early follows those that ran every seed
        table = table.drop(columns=["_key", "_trial"]).reset_index(drop=True)
        table["trial"] = pd.Series([None if pd.isna(number) else int(number) for number in table["trial"]],
                                   dtype=object)
    table.insert(0, "rank", range(1, len(table) + 1))
    rescored = bool(record.rescored)
    seeds = max((len(rescore.val_scores) for rescore in record.rescored), default=0)
    better, metric = ("highest" if maximizes(record) else "lowest"), metric_name(record)
    if rescored:
        epochs = record.rescored[0].epochs or record.config.get("epochs")
        stopped = ("" if all(len(r.val_scores) == seeds for r in record.rescored) else
                   " (those stopped once they could no longer win ran fewer, see the seeds column, and follow)")
        rule = (f"Ranked by mean validation {metric} ({better} first) over {seeds} fresh seeds{stopped}, a failed "
                f"seed counted "
                f"as {failed_at[0]:.4g}, at {epochs} epochs, among the best searched configurations and the best LR of "
                f"each tuned baseline, re-trained after the search; trials not re-trained follow by their final "
                f"validation {metric}. Exported: the best searched configuration only when its paired "
                f"{CONFIDENCE:.0%} interval over the best baseline lies above zero, else that baseline.")
    else:
        why = ("re-scoring is off (rescore_seeds = 0): the pick comes from single runs"
               if record.config.get("rescore_seeds") == 0 else "no re-scoring on fresh seeds yet")
        rule = f"Best = {better} final validation {metric} of a complete trial ({why})."
    return Ranking(table=table, rule=rule, rescored=rescored, verdict=stored_verdict(record))


def stored_verdict(record: StudyRecord) -> Verdict | None:
    """The verdict the study decided once after its re-scoring (``pipeline.run.decide_verdict``);
    for a study stored before verdicts were kept, the same decision over its stored re-scoring."""
    if record.verdict is not None:
        return Verdict.from_dict(record.verdict)
    if not record.rescored or record.meta.get("finished") is not True:
        return None
    return decide(record.rescored, maximizes(record), metric_name(record))


def _rescored_row(
    index: int, rescore: RescoreRecord, trial: TrialRecord | None, fixed: dict[str | None, frozenset[str]],
    failed_at: tuple[float, float],
) -> dict[str, Any]:
    val = pd.Series(counted(rescore.val_scores, failed_at[0]), dtype=float)
    test = pd.Series(counted(rescore.test_scores, failed_at[1]), dtype=float)
    return {
        "trial": rescore.trial_number, "family": rescore.spec.get("family"),
        "baseline": rescore.baseline or (trial.baseline if trial else None) or "", "lr": rescore.spec.get("lr"),
        "parameters": describe_spec(rescore.spec, fixed.get(rescore.spec.get("family"), frozenset())),
        "val_mean": val.mean(), "val_std": floored_std(list(val), rescore.val_resolution),
        "seeds": len(val), "failed": sum(not math.isfinite(value) for value in rescore.val_scores),
        "test_mean": test.mean(), "test_std": floored_std(list(test), rescore.test_resolution),
        "search_value": trial.value if trial else None, "epochs_run": trial.epochs_run if trial else None,
        "rescored": True, "rescore_index": index, "spec": rescore.spec,
    }


def _search_row(trial: TrialRecord, fixed: dict[str | None, frozenset[str]]) -> dict[str, Any]:
    return {
        "trial": trial.number, "family": trial.spec.get("family"), "baseline": trial.baseline or "",
        "lr": trial.spec.get("lr"),
        "parameters": describe_spec(trial.spec, fixed.get(trial.spec.get("family"), frozenset())),
        "val_mean": trial.value,
        "val_std": math.nan, "seeds": 1, "failed": 0, "test_mean": math.nan, "test_std": math.nan,
        "search_value": trial.value, "epochs_run": trial.epochs_run, "rescored": False, "rescore_index": -1,
        "spec": trial.spec,
    }


def family_scores(record: StudyRecord) -> pd.DataFrame:
    """Per family: trial counts and the spread of final validation scores of complete trials.

    Columns: family, trials, complete, pruned, best, q1, median, q3, worst, gap (best minus the
    overall best, in score units; 0 for the winning family). Rows best family first.
    """
    frame = pd.DataFrame(
        [{"family": trial.spec.get("family"), "state": trial.state, "value": trial.value} for trial in record.trials],
        columns=["family", "state", "value"],
    ).astype({"value": float})
    higher = maximizes(record)
    grouped = frame.groupby("family", sort=True)
    done = frame[frame["state"].eq("complete") & frame["value"].notna()].groupby("family")["value"]
    table = pd.DataFrame({
        "trials": grouped.size(),
        "complete": grouped["state"].agg(lambda states: int((states == "complete").sum())),
        "pruned": grouped["state"].agg(lambda states: int((states == "pruned").sum())),
        "best": done.max() if higher else done.min(),
        "q1": done.quantile(0.25), "median": done.median(), "q3": done.quantile(0.75),
        "worst": done.min() if higher else done.max(),
    }).reset_index()
    overall = table["best"].max() if higher else table["best"].min()
    table["gap"] = table["best"] - overall
    return table.sort_values("best", ascending=not higher, na_position="last", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Gain:
    """The best searched configuration's score minus a baseline's, with a confidence interval."""

    baseline: str
    baseline_score: float
    best_score: float
    gain: float
    low: float | None  # CONFIDENCE interval on the gain; None with fewer than 2 seeds a side
    high: float | None
    method: str  # how the interval was computed, in words
    split: str  # "validation" or "test"


def baseline_gains(record: StudyRecord, ranking: Ranking) -> list[Gain]:
    """Gain of the best searched configuration over each tuned baseline, on validation and test.

    After re-scoring: paired by seed (t interval on per-seed differences, a failed seed
    counted and the spread floored at the score's step as in the verdict); before it, the
    exported trial against each baseline trial's final search score, as single runs without
    an interval.
    """
    best = ranking.best
    if best is None:
        return []
    maximize = maximizes(record)
    verdict = ranking.verdict
    if verdict is not None:
        if verdict.best_searched is None:
            return []
        ours = record.rescored[verdict.best_searched]
        gains = []
        for split, key in (("validation", "val"), ("test", "test")):
            failed_at = failure_score([getattr(r, f"{key}_scores") for r in record.rescored], maximize)
            for theirs in record.rescored:
                if theirs.baseline:
                    paired = on_shared_seeds(ours, theirs, key)
                    step = max(getattr(ours, f"{key}_resolution"), getattr(theirs, f"{key}_resolution"))
                    gains.append(_gain(_baseline_label(theirs), counted(paired[0], failed_at),
                                       counted(paired[1], failed_at), maximize, split, step))
        return gains
    return [
        _gain(trial.baseline, [best["val_mean"]], [trial.value], maximize, "validation")
        for trial in record.trials
        if trial.baseline and trial.state == "complete" and trial.value is not None and trial.number != best["trial"]
    ]


def _baseline_label(rescore: RescoreRecord) -> str:
    """``cosine to zero, LR 0.09``."""
    return f"{KIND_LABELS.get(rescore.baseline or '', rescore.baseline)}, LR {rescore.spec.get('lr', math.nan):.3g}"


def _gain(name: str, ours: list[float], theirs: list[float], maximize: bool, split: str,
          resolution: float = 0.0) -> Gain:
    """Gain = mean(ours) - mean(theirs), sign-flipped for a minimized score: positive means ours is better;
    its interval's spread floored at ``resolution`` (the score's step), as the verdict's."""
    paired = paired_gain(ours, theirs, maximize, resolution) if len(ours) == len(theirs) else None
    sign = 1.0 if maximize else -1.0
    gain = sign * (mean(ours) - mean(theirs))
    low, high = (paired.low, paired.high) if paired else (None, None)
    method = f"paired over {len(ours)} fresh seeds" if low is not None else "single runs: no interval"
    return Gain(name, float(mean(theirs)), float(mean(ours)), float(gain), low, high, method,
                split)
