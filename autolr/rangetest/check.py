"""The population check: short constant-LR runs at and below the sweep's loss minimum, to catch a cliff.

A sweep reads its loss minimum while the LR is still climbing, so for a model whose
training collapses just above its best LR (a small CNN trained for long) the minimum / 4
can sit on that cliff. The check trains ``CHECK_LRS`` copies of the model at once, at
constant LRs from the loss minimum down to ``1 / CHECK_SPAN`` of it, for ``CHECK_STEPS``
steps, and scores each on held-out training rows. The suggestion becomes the check's best
LR when that is lower; the check never raises it. The check's best LR is refined by a
parabola in log LR but never placed above the best LR it trained, and when the next LR up
diverged or more than doubled the loss, it is halved: the best run then sits at the edge
of a cliff, and a short run cannot tell how close (on least squares, GD at 1.005x its
stable limit 2/L still looks fine after 100 steps and has blown up by 1000).
``autolr bench rangetest`` measures the rule (``reports/reference/bench-rangetest.md``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from autolr.rangetest.analysis import refined_minimum, search_interval

if TYPE_CHECKING:
    from autolr.rangetest.range_test import RangeTestResult

CHECK_LRS = 7  # constant LRs in the check
CHECK_SPAN = 64.0  # from the loss minimum's LR down to this factor below it (2x apart)
CHECK_STEPS = 100  # training steps of each copy
EDGE_LOSS_FACTOR = 2.0  # the next LR up losing more than this factor means the best run is at an edge


def check_bounds(loss_min: float) -> tuple[float, float]:
    """The (lowest, highest) LR of the check around the sweep's loss-minimum LR ``loss_min``."""
    return loss_min / CHECK_SPAN, loss_min


def check_best(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The check's best LR (``lrs`` ascending): the lowest held-out loss (NaN: diverged), refined in log LR,
    not above the best LR run, and half of that when the next LR up diverged or lost more than 2x."""
    best_run = min((i for i, loss in enumerate(losses) if math.isfinite(loss)), key=lambda i: losses[i])
    best = min(refined_minimum(lrs, losses), lrs[best_run])
    above = losses[best_run + 1] if best_run + 1 < len(losses) else None
    if above is not None and not above <= EDGE_LOSS_FACTOR * losses[best_run]:  # NaN counts as diverged
        best = min(best, lrs[best_run] / 2)
    return best


def checked_suggestion(sweep_suggestion: float, lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The sweep's suggestion, lowered to the check's best LR when that is lower."""
    return min(sweep_suggestion, check_best(lrs, losses))


def with_check(result: "RangeTestResult", lrs: Sequence[float], losses: Sequence[float],
               num_steps: int) -> "RangeTestResult":
    """``result`` (a sweep) with the check's losses at ``lrs`` applied: suggestion, interval and spread.

    The rule ``check`` is the check's best LR. When the check kept the sweep's suggestion, the
    spread is the sweep's capped at the check's LR; when it lowered it, there is none (the
    check's runs are not resampled). The check's curve is kept in ``settings["check"]``.
    """
    best = check_best(lrs, losses)
    suggestion = min(result.suggestion, best)
    spread = result.suggestion_spread
    if spread is not None:  # min(sweep's suggestion, a fixed LR): its noise capped there; none from the check's runs
        spread = None if suggestion < result.suggestion else (min(spread[0], best), min(spread[1], best))
    stored = {"lrs": list(lrs), "losses": [loss if math.isfinite(loss) else None for loss in losses],
              "num_steps": num_steps, "lowered": suggestion < result.suggestion}
    return replace(result, suggestion=suggestion, suggestions={**result.suggestions, "check": best},
                   interval=search_interval(suggestion, result.suggestions["loss_min"]), suggestion_spread=spread,
                   settings={**result.settings, "check": stored})
