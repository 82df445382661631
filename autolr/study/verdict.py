"""The verdict: does the best searched schedule beat the best LR-tuned baseline, and what is exported.

Pure functions over re-scored runs (``RescoreRecord``: scores per fresh seed, paired by
seed: the same initial weights and batch order for every configuration of one seed). A
finalist the re-scoring stopped early (``study.reach``) ran only the first seeds: each
side's best is chosen among those that ran the most seeds, and pairs are formed over the
seeds both ran.

- A seed whose run failed (diverged: NaN) counts, at ``failure_score``: accuracy 0, or
  for a loss the worst loss any run of that split reached. A configuration next to a cliff
  is not rescued by averaging only the seeds that trained.
- The winner is chosen on validation; test is reported beside it, never used to choose.
- Occam's export: the searched schedule is exported only when it beats the best tuned
  baseline on validation with a paired 95% t interval above zero; otherwise the best tuned
  baseline (the simpler schedule that is not worse) is exported, and the sentence says so.
- No gain is claimed from a spread the scores cannot show. Accuracy on a validation split of
  n rows moves in steps of 1 / n, so two schedules that differ by exactly one image on every
  seed have a paired spread of 0 and a t interval of zero width: a "clear" gain from nothing.
  The spread of the differences is therefore floored at the score's resolution (1 / n for
  accuracy, ``definition.score_resolution``; the records carry it): a spread below one step is not
  measured but rounded away. A spread that is still 0 (a continuous score, or a resolution
  not known, with every seed giving the same difference) gives no interval at all. The
  other remedy, a sign or Wilcoxon test on the paired seeds besides the t interval, was
  rejected: with fewer than 6 seeds neither can reach 95% (the smallest two-sided p of a
  sign test over 5 seeds is 2 / 2**5 = 0.0625), so the default 5 seeds could never claim a
  gain, however large.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from autolr.space.baselines import KIND_LABELS
from autolr.study.records import RescoreRecord

CONFIDENCE = 0.95  # level of the paired interval on the gain


@dataclass(frozen=True)
class PairedGain:
    """``mean`` of the per-seed differences (better minus worse is positive) and its CONFIDENCE
    t interval (``low``/``high`` None with fewer than two seeds, or a spread of exactly 0).
    ``floor``: the score's resolution when it raised the spread (the seeds agreed more closely
    than a score can show), else None."""

    mean: float
    low: float | None
    high: float | None
    seeds: int
    floor: float | None = None

    @property
    def clear(self) -> bool:
        """Whether the interval lies above zero: a gain that can be claimed."""
        return self.low is not None and self.low > 0

    def text(self) -> str:
        """``+0.0006, 95% CI -0.0020 to +0.0030`` (``+0.0006, one seed: no interval``, ``+0.0069,
        the same on all 5 seeds: no interval``, or the CI followed by ``, spread floored at the
        score's step 0.0069``)."""
        if self.low is None or self.high is None:
            if self.seeds < 2:
                return f"{self.mean:+.4f}, one seed: no interval"
            return f"{self.mean:+.4f}, the same on all {self.seeds} seeds: no interval"
        floored = "" if self.floor is None else f", spread floored at the score's step {self.floor:.4f}"
        return f"{self.mean:+.4f}, {CONFIDENCE:.0%} CI {self.low:+.4f} to {self.high:+.4f}{floored}"


@dataclass(frozen=True)
class Verdict:
    """What the re-scoring decided. Indices point into the re-scored list.

    ``outcome``: ``gain`` (the searched schedule is exported), ``no gain`` (the best baseline
    is), ``no baselines`` or ``no searched`` (only one side was re-scored). ``val_gain`` and
    ``test_gain``: best searched minus best baseline, paired by seed (None unless both sides
    exist). ``sentence``: the answer in plain words, with the numbers.
    """

    outcome: str
    exported: int
    best_searched: int | None
    best_baseline: int | None
    val_gain: PairedGain | None
    test_gain: PairedGain | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-safe data, as the study stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Verdict":
        """The verdict a study stored (``to_dict``)."""
        gains = {key: None if data.get(key) is None else PairedGain(**data[key]) for key in ("val_gain", "test_gain")}
        return cls(**{**data, **gains})


def failure_score(scores: Sequence[Sequence[float]], maximize: bool) -> float:
    """The score a failed seed counts at: 0 for a maximized score (accuracy), else the worst
    finite score in ``scores`` (all runs of one split)."""
    if maximize:
        return 0.0
    finite = [value for row in scores for value in row if math.isfinite(value)]
    return max(finite) if finite else math.inf


def counted(scores: Sequence[float], failed_at: float) -> list[float]:
    """``scores`` with each failed seed (NaN or infinite) replaced by ``failed_at``."""
    return [value if math.isfinite(value) else failed_at for value in scores]


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean (NaN for no values)."""
    return sum(values) / len(values) if values else math.nan


def std(values: Sequence[float]) -> float:
    """The sample standard deviation (n - 1 in the denominator); NaN for fewer than two values."""
    if len(values) < 2:
        return math.nan
    average = mean(values)
    return math.sqrt(sum((value - average) ** 2 for value in values) / (len(values) - 1))


def floored_std(values: Sequence[float], resolution: float) -> float:
    """``std(values)``, at least ``resolution`` (a score's step: a spread below it is rounded away)."""
    return max(std(values), resolution) if len(values) > 1 else math.nan


def paired_gain(ours: Sequence[float], theirs: Sequence[float], maximize: bool, resolution: float = 0.0) -> PairedGain:
    """The per-seed difference ``ours - theirs`` (sign-flipped for a minimized score) and its t interval,
    its spread floored at ``resolution`` (the score's step, in score units; see the module's docstring)."""
    sign = 1.0 if maximize else -1.0
    differences = [sign * (a - b) for a, b in zip(ours, theirs)]
    average = mean(differences)
    spread = floored_std(differences, resolution)
    if len(differences) < 2 or spread == 0:
        return PairedGain(average, None, None, len(differences))
    half = t_quantile(len(differences) - 1) * spread / math.sqrt(len(differences))
    floor = resolution if std(differences) < resolution else None
    return PairedGain(average, average - half, average + half, len(differences), floor)


def on_shared_seeds(ours: RescoreRecord, theirs: RescoreRecord, split: str = "val") -> tuple[list[float], list[float]]:
    """Both records' ``split`` scores (``val`` or ``test``) at the seeds both ran, in ``ours``' seed order: a
    finalist the re-scoring stopped early ran only the first seeds."""
    their_scores = dict(zip(theirs.seeds, getattr(theirs, f"{split}_scores")))
    pairs = [(score, their_scores[seed]) for seed, score in zip(ours.seeds, getattr(ours, f"{split}_scores"))
             if seed in their_scores]
    return [a for a, _ in pairs], [b for _, b in pairs]


def describe(record: RescoreRecord) -> str:
    """A configuration in a few words: ``cosine to zero at LR 0.09`` or ``searched wsd at LR 0.04``."""
    lr = f"LR {record.spec.get('lr', math.nan):.3g}"
    if record.baseline:
        return f"{KIND_LABELS.get(record.baseline, record.baseline)} at {lr}"
    return f"the searched {record.spec.get('family')} at {lr}"


def decide(rescored: Sequence[RescoreRecord], maximize: bool, metric: str = "score") -> Verdict | None:
    """The verdict over ``rescored`` (None when nothing was re-scored); each pair's intervals are
    floored at the larger of the two records' ``val_resolution`` (``test_resolution`` on test)."""
    if not rescored:
        return None
    val_failed = failure_score([r.val_scores for r in rescored], maximize)
    test_failed = failure_score([r.test_scores for r in rescored], maximize)
    sign = 1.0 if maximize else -1.0

    def best_of(indices: list[int]) -> int | None:  # among those that ran the most seeds: the others were stopped
        scored = [(len(rescored[i].val_scores), sign * mean(counted(rescored[i].val_scores, val_failed)), -i)
                  for i in indices]
        return -max(scored)[2] if scored else None

    searched = best_of([i for i, r in enumerate(rescored) if not r.baseline])
    baseline = best_of([i for i, r in enumerate(rescored) if r.baseline])
    if searched is None or baseline is None:
        exported = searched if baseline is None else baseline
        assert exported is not None, "rescored is not empty"  # and each record is searched or a baseline
        outcome = "no baselines" if baseline is None else "no searched"
        sentence = (f"Exported {describe(rescored[exported])}: no tuned baseline was re-scored to compare with."
                    if baseline is None else
                    f"Exported {describe(rescored[exported])}: no searched schedule completed to compare with.")
        return Verdict(outcome, exported, searched, baseline, None, None, sentence)
    ours, theirs = rescored[searched], rescored[baseline]
    val_ours, val_theirs = on_shared_seeds(ours, theirs)
    val_gain = paired_gain(counted(val_ours, val_failed), counted(val_theirs, val_failed), maximize,
                           max(ours.val_resolution, theirs.val_resolution))
    has_test = any(math.isfinite(value) for r in rescored for value in r.test_scores)  # an objective may have none
    test_ours, test_theirs = on_shared_seeds(ours, theirs, "test")
    test_gain = (paired_gain(counted(test_ours, test_failed), counted(test_theirs, test_failed), maximize,
                             max(ours.test_resolution, theirs.test_resolution))
                 if has_test else None)
    test_text = f"; test {test_gain.text()}" if test_gain is not None else ""
    failures = _failures_text(ours, theirs)
    if val_gain.clear:
        sentence = (f"{_capital(describe(ours))} beat the best LR-tuned baseline, {describe(theirs)}, on validation "
                    f"{metric} ({val_gain.text()}, paired over {val_gain.seeds} fresh seeds{test_text}){failures}; "
                    f"exported {ours.spec.get('family')}.")
        return Verdict("gain", searched, searched, baseline, val_gain, test_gain, sentence)
    sentence = (f"No searched schedule beat {describe(theirs)} (best searched: {describe(ours)}, "
                f"{val_gain.text()} on validation {metric}, paired over {val_gain.seeds} fresh seeds{test_text})"
                f"{failures}; exported {KIND_LABELS.get(theirs.baseline or '', theirs.baseline)}.")
    return Verdict("no gain", baseline, searched, baseline, val_gain, test_gain, sentence)


def _failures_text(*records: RescoreRecord) -> str:
    """``; 2 of 5 seeds of the searched wsd at LR 0.2 failed`` for each record with failed seeds."""
    parts = []
    for record in records:
        failed = sum(not math.isfinite(value) for value in record.val_scores)
        if failed:
            parts.append(f"{failed} of {len(record.val_scores)} seeds of {describe(record)} failed")
    return "".join(f"; {part}" for part in parts)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def t_quantile(degrees: int) -> float:
    """Student's t quantile of the two-sided CONFIDENCE interval with ``degrees`` degrees of freedom."""
    from scipy.special import stdtrit  # scipy.stats' t.ppf without importing scipy.stats (~0.9 s here)

    return float(stdtrit(degrees, (1 + CONFIDENCE) / 2))
