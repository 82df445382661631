"""Reading a range-test loss curve: smoothing, the suggestion rules, and the search interval.

Pure Python on lists of floats, so the same rules apply to a live test, a stored one, and
the benchmark's saved curves.
"""

from __future__ import annotations

import math
from typing import Sequence

INTERVAL_BELOW = 10.0  # the search interval starts this factor below the suggestion
INTERVAL_ABOVE = 10.0  # ... and ends at most this factor above it


def ema(values: Sequence[float], smooth: float) -> list[float]:
    """Exponential moving average with bias correction (``smooth``: weight of the newest value).

    ``out[i] = avg_i / (1 - (1 - smooth) ** (i + 1))`` with ``avg_i = (1 - smooth) * avg_{i-1}
    + smooth * values[i]``, so early values are not pulled towards zero.
    """
    average, out = 0.0, []
    for i, value in enumerate(values):
        average = (1 - smooth) * average + smooth * value
        out.append(average / (1 - (1 - smooth) ** (i + 1)))
    return out


def steepest_index(losses: Sequence[float], lrs: Sequence[float]) -> int:
    """Index of the most negative slope d(loss)/d(log lr), up to the loss minimum."""
    end = min(range(len(losses)), key=losses.__getitem__)
    if end < 2:
        return end
    slopes = [(losses[i + 1] - losses[i - 1]) / math.log(lrs[i + 1] / lrs[i - 1]) for i in range(1, end)]
    return 1 + min(range(len(slopes)), key=slopes.__getitem__)


def valley_index(losses: Sequence[float]) -> int:
    """fastai's ``valley``: the point halfway along the longest decreasing stretch.

    Finds the longest (not necessarily contiguous) decreasing subsequence of the curve and
    returns the index half way between its start and end, as fastai's ``lr_find`` does.
    """
    n = len(losses)
    lengths = [1] * n
    best_start, best_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
            if lengths[best_end] < lengths[i]:
                best_end = i
                best_start = best_end - lengths[best_end]
    sections = (best_end - best_start) / 3
    return best_start + int(sections) + int(sections / 2)


def suggestions(lrs: Sequence[float], smoothed: Sequence[float], skip_start: float = 0.1) -> dict[str, float]:
    """The LR each rule reads from a smoothed sweep curve (the bias-corrected EMA).

    Rules: ``steepest`` (steepest descent of the loss against log LR, torch-lr-finder's),
    ``valley`` (fastai's), ``min_loss`` (the LR of the lowest loss divided by 10, fastai's
    ``minimum``) and ``loss_min`` (the LR of the lowest loss itself). The first
    ``skip_start`` fraction of the steps is ignored, as fastai and torch-lr-finder do.
    """
    start = int(len(lrs) * skip_start)
    lowest = loss_min_lr(lrs, smoothed, skip_start)
    lrs, smoothed = list(lrs[start:]), list(smoothed[start:])
    return {
        "steepest": lrs[steepest_index(smoothed, lrs)],
        "valley": lrs[valley_index(smoothed)],
        "min_loss": lowest / 10,
        "loss_min": lowest,
    }


def loss_min_lr(lrs: Sequence[float], smoothed: Sequence[float], skip_start: float = 0.1) -> float:
    """The LR of the lowest smoothed loss, the first ``skip_start`` fraction of the steps ignored."""
    start = int(len(lrs) * skip_start)
    return lrs[min(range(start, len(smoothed)), key=smoothed.__getitem__)]


def refined_minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The LR of the lowest loss on a log grid, refined by a parabola in log LR through its neighbours.

    NaN losses (diverged) are ignored; at the grid's edge, or when the parabola opens
    downwards, the grid point itself is returned.
    """
    finite = [i for i, loss in enumerate(losses) if math.isfinite(loss)]
    best = min(finite, key=lambda i: losses[i])
    if best - 1 not in finite or best + 1 not in finite:
        return lrs[best]
    x0, x1, x2 = (math.log(lrs[i]) for i in (best - 1, best, best + 1))
    y0, y1, y2 = (losses[i] for i in (best - 1, best, best + 1))
    denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denominator
    if a <= 0:
        return lrs[best]
    return math.exp(min(max(-b / (2 * a), x0), x2))


def search_interval(suggestion: float, highest_useful_lr: float) -> tuple[float, float]:
    """The LR interval for the search around ``suggestion``.

    From ``suggestion / INTERVAL_BELOW`` to ``suggestion * INTERVAL_ABOVE``, but not past
    ``highest_useful_lr`` (where the loss stopped falling) unless that is closer than 3x.
    """
    high = min(suggestion * INTERVAL_ABOVE, max(highest_useful_lr, 3 * suggestion))
    return suggestion / INTERVAL_BELOW, high
