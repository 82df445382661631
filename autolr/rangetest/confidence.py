"""How sure a range test is: the spread of its suggestion over the curve's noise, and warnings about the curve.

Pure Python on lists of floats, like ``rangetest.analysis``.

The spread is a block bootstrap over the smoothing: the raw losses (their logarithms when
all are positive, as the noise of a loss scales with it and a diverging loss grows
exponentially) are split into a trend
(a centred moving average of ``TREND_WINDOW`` steps, which does not lag as the EMA does)
and residuals around it; each resample adds the residuals, redrawn in blocks of
``BLOCK`` consecutive steps (noise from step to step is correlated) from at most
``NEIGHBOURHOOD`` steps away (a local block bootstrap: the noise grows as the loss
diverges, so a block keeps its place on the curve), back onto the trend, smooths it with
the same EMA and re-applies the rule. The spread is the 5th to 95th percentile of the
resampled suggestions, at least one step of the LR grid wide (``at_least_one_step``).

A grid places a suggestion no more finely than the ratio of its neighbouring LRs: on a clean
curve every resample picks the same grid point, and a spread of zero width would claim a
certainty the test does not have. So every spread (the sweep's here, the check's in
``rangetest.check``) is widened, about its geometric middle, to at least one grid step.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence

from autolr.rangetest.analysis import ema

TREND_WINDOW = 7  # steps in the centred moving average the residuals are taken around (shrinks at the ends)
BLOCK = 5  # consecutive residuals drawn together
NEIGHBOURHOOD = 10  # steps a block may move from where it was drawn
RESAMPLES = 200
SPREAD_PERCENTILES = (0.05, 0.95)
DESCENT_FRACTION = 0.1  # a clear descent: the smoothed minimum at least this fraction below the start
SKIP_START = 0.1  # the warnings read a curve after this fraction of its steps, as the rules do
ROSE_FRACTION = 0.1  # the loss rose: its end at least this fraction of the descent above the minimum

NO_DESCENT = "the loss never clearly descended: the suggestion is a guess, so widen the LR range or check the model"
NEVER_ROSE = "the loss never rose: the test stopped before divergence, so the suggestion may be too low"


def centred_average(values: Sequence[float], window: int = TREND_WINDOW) -> list[float]:
    """The mean of the ``window`` values centred on each index (fewer at the ends)."""
    half = window // 2
    windows = (values[max(0, i - half):i + half + 1] for i in range(len(values)))
    return [sum(window_values) / len(window_values) for window_values in windows]


def grid_step(lrs: Sequence[float], lr: float) -> float:
    """The ratio of the neighbouring LRs of the ascending grid ``lrs`` (two or more) around ``lr``
    (the end pair's, outside the grid)."""
    index = min(max(bisect.bisect_right(lrs, lr), 1), len(lrs) - 1)
    return lrs[index] / lrs[index - 1]


def at_least_one_step(low: float, high: float, lrs: Sequence[float]) -> tuple[float, float]:
    """``(low, high)``, an LR spread, widened about its geometric middle to at least one step of the LR
    grid ``lrs`` there (``grid_step``): the grid cannot place a suggestion more finely."""
    middle = math.sqrt(low * high)
    step = grid_step(lrs, middle)
    if len(lrs) < 2 or high / low >= step:
        return low, high
    return middle / math.sqrt(step), middle * math.sqrt(step)


def suggestion_spread(
    lrs: Sequence[float],
    losses: Sequence[float],
    smooth: float,
    rule: Callable[[Sequence[float], Sequence[float]], float],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """The (low, high) LR range of ``rule(lrs, ema(losses))`` over resampled noise of the finite raw ``losses``,
    at least one step of the grid ``lrs`` wide.

    ``smooth`` is the EMA weight of the newest loss; ``seed`` makes the resampling
    deterministic. The result is in the units of the rule's output (an LR).
    """
    in_log = all(loss > 0 for loss in losses)
    values = [math.log(loss) for loss in losses] if in_log else list(losses)
    trend = centred_average(values)
    residuals = [value - level for value, level in zip(values, trend)]
    last_start = max(0, len(residuals) - BLOCK)
    generator = random.Random(seed)
    picks = []
    for _ in range(resamples):
        noise: list[float] = []
        while len(noise) < len(residuals):
            here = len(noise)
            start = generator.randint(max(0, here - NEIGHBOURHOOD), min(last_start, here + NEIGHBOURHOOD))
            noise.extend(residuals[start:start + BLOCK])
        resampled = [level + shift for level, shift in zip(trend, noise)]
        resampled = [math.exp(value) for value in resampled] if in_log else resampled
        picks.append(rule(lrs, ema(resampled, smooth)))
    picks.sort()
    low, high = (picks[min(len(picks) - 1, int(q * len(picks)))] for q in SPREAD_PERCENTILES)
    return at_least_one_step(low, high, lrs)


def descended(start: float, lowest: float) -> bool:
    """A clear descent from the loss ``start`` to ``lowest``: at least ``DESCENT_FRACTION`` of the start's size."""
    return start - lowest >= DESCENT_FRACTION * abs(start)


def start_loss(curve: Sequence[float], skip_start: float = SKIP_START) -> float:
    """Where a smoothed ``curve`` starts as the rules read it: its first finite value after the first
    ``skip_start`` fraction."""
    return next(value for value in curve[int(len(curve) * skip_start):] if math.isfinite(value))


def curve_warnings(curve: Sequence[float], stop_reason: str, skip_start: float = SKIP_START) -> list[str]:
    """Short sentences on a smoothed curve a user should not trust blindly (empty when it looks sound).

    ``curve`` is read after its first ``skip_start`` fraction (as the rules read it); a
    non-finite value means the loss diverged there. No clear descent: the minimum is less
    than ``DESCENT_FRACTION`` of the start's size below the start. Never rose: the test
    completed (``stop_reason``), nothing diverged, and the end is less than
    ``ROSE_FRACTION`` of the descent above the minimum.
    """
    read = list(curve[int(len(curve) * skip_start):])
    start, lowest = start_loss(curve, skip_start), min(value for value in read if math.isfinite(value))
    warnings = []
    if not descended(start, lowest):
        warnings.append(NO_DESCENT)
    if stop_reason == "completed" and math.isfinite(read[-1]) and read[-1] - lowest < ROSE_FRACTION * (start - lowest):
        warnings.append(NEVER_ROSE)
    return warnings
