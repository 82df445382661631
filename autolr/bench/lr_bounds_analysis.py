"""Reading a peak-LR grid: the best LR, the good band around it, and per-family LR bounds.

Pure Python on lists of floats (accuracies are fractions in [0, 1], LRs plain numbers), so
the same rules apply to a live run of ``autolr bench lr-bounds`` and to its saved JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

GOOD_BAND = 0.003  # a grid point is "good" when its mean accuracy is within 0.3 points of the best


@dataclass(frozen=True)
class GridBest:
    """Where a grid of peak LRs does best.

    ``mean_scores[i]`` is the mean over seeds at ``lrs[i]`` (a diverged run counts 0);
    ``best_lr`` the LR of the highest mean (the lowest such LR on a tie); ``good_lrs`` every
    LR whose mean is within ``GOOD_BAND`` of the best; ``edge`` is True when the best is the
    grid's first or last point, so the true best may lie beyond the grid.
    """

    mean_scores: list[float]
    best_lr: float
    best_index: int
    good_lrs: list[float]
    edge: bool


def grid_best(lrs: Sequence[float], scores: Sequence[Sequence[float | None]], band: float = GOOD_BAND) -> GridBest:
    """The best LR and good band of a grid; ``scores[i]`` holds one score per seed at ``lrs[i]`` (None: diverged)."""
    if not lrs or len(lrs) != len(scores):
        raise ValueError(f"need one row of scores per LR, got {len(lrs)} LRs and {len(scores)} rows")
    means = [sum(_score(s) for s in row) / len(row) for row in scores]
    best = max(range(len(means)), key=lambda i: (means[i], -i))
    good = [lr for lr, mean in zip(lrs, means) if mean >= means[best] - band]
    return GridBest(means, float(lrs[best]), best, good, edge=best in (0, len(lrs) - 1))


def _score(value: float | None) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class Bounds:
    """A family's peak-LR bounds as factors of the range test's loss minimum: [lo * loss_min, hi * loss_min]."""

    lo: float
    hi: float

    def contains(self, ratio: float) -> bool:
        """Whether a best LR of ``ratio`` x loss_min lies inside the bounds."""
        return self.lo <= ratio <= self.hi


def derive_bounds(ratios: Sequence[float], margin: float) -> Bounds:
    """The narrowest bounds holding every ratio best LR / loss_min, widened by ``margin`` (a factor > 1) each side.

    Factors are rounded outwards to two significant digits, so they read as constants.
    """
    if not ratios:
        raise ValueError("derive_bounds needs at least one ratio")
    if margin < 1:
        raise ValueError(f"margin must be a factor >= 1, got {margin}")
    return Bounds(_round_sig(min(ratios) / margin, math.floor), _round_sig(max(ratios) * margin, math.ceil))


def _round_sig(value: float, direction: Callable[[float], int]) -> float:
    """``value`` rounded to two significant digits with ``direction`` (math.floor or math.ceil)."""
    scale = 10.0 ** (math.floor(math.log10(value)) - 1)
    return round(direction(round(value / scale, 9)) * scale, 12)
