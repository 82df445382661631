"""Did the short-run ranking hold at the user's training length? The search's order of the
re-scored configurations (one run each, at the search's epochs) against the verdict's (mean over
fresh seeds at the target length, failed seeds counted), and the LR check's numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autolr.study.records import StudyRecord, TrialRecord, maximizes
from autolr.study.verdict import counted, describe, failure_score, mean


@dataclass(frozen=True)
class HorizonCheck:
    """``sentence`` in plain words; ``rows``: one dict of display text per re-scored configuration."""

    sentence: str
    rows: list[dict[str, Any]]


def horizon_check(record: StudyRecord) -> HorizonCheck | None:
    """The comparison, or None before re-scoring (or when a configuration lacks its search score)."""
    trials: dict[int | None, TrialRecord] = {trial.number: trial for trial in record.trials}  # get(None) is None
    rescored = record.rescored
    searched = [trials.get(r.trial_number) for r in rescored]
    short = [float(trial.value) for trial in searched if trial is not None and trial.value is not None]
    if not rescored or len(short) < len(rescored):
        return None
    sign = 1.0 if maximizes(record) else -1.0
    failed_at = failure_score([r.val_scores for r in rescored], maximizes(record))
    long = [mean(counted(r.val_scores, failed_at)) for r in rescored]
    short_rank = _ranks([sign * value for value in short])
    long_rank = _ranks([sign * value for value in long])
    search_epochs = record.config.get("epochs")
    epochs = rescored[0].epochs or search_epochs
    rows: list[dict[str, Any]] = [{
        "configuration": describe(r), "short": f"{short[i]:.4f}", "short_rank": short_rank[i],
        "long": f"{long[i]:.4f}", "long_rank": long_rank[i],
        "lr_check": ", ".join(f"LR {check['lr']:.3g}: {mean(counted(check['val_scores'], failed_at)):.4f}"
                              for check in r.lr_check) or "–",
    } for i, r in enumerate(rescored)]
    rows.sort(key=lambda row: row["long_rank"])
    top = short_rank.index(1)
    correlation = _spearman(short, long) if len(rescored) > 2 else math.nan
    rho = "" if math.isnan(correlation) else f" (Spearman ρ = {correlation:.2f} over {len(rescored)} configurations)"
    where = f"at {epochs} epochs" if epochs != search_epochs else f"on fresh seeds at the search's {epochs} epochs"
    if long_rank[top] == 1:
        sentence = (f"The short-run ranking held {where}: the best short run, {describe(rescored[top])}, "
                    f"is best there too{rho}.")
    else:
        sentence = (f"The short-run ranking did not hold {where}: the best short run, {describe(rescored[top])}, "
                    f"ranks {long_rank[top]} of {len(rescored)} there{rho}.")
    return HorizonCheck(sentence, rows)


def _ranks(keys: list[float]) -> list[int]:
    """1 for the highest key; ties go to the earlier position."""
    order = sorted(range(len(keys)), key=lambda index: (-keys[index], index))
    ranks = [0] * len(keys)
    for rank, index in enumerate(order, start=1):
        ranks[index] = rank
    return ranks


def _spearman(short: list[float], long: list[float]) -> float:
    """Spearman's rank correlation; scipy.stats (~0.9 s to import) is loaded only when there are 3 or more
    configurations to rank, which a budgeted study's 2 finalists are not."""
    from scipy import stats

    return float(stats.spearmanr(short, long).statistic)
