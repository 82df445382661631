"""The population check: short constant-LR runs at and below the sweep's loss minimum, which pick the suggestion.

A sweep reads its loss minimum while the LR is still climbing, so a fixed divisor of it
lands on a cliff for a model whose training collapses just above its best LR (a small CNN
trained for long) and far too low for one that tolerates large steps (large batches). The
check trains ``CHECK_LRS`` copies of the model at once, at constant LRs from the loss
minimum down to ``1 / CHECK_SPAN`` of it, for ``CHECK_STEPS`` steps, scores each on
held-out training rows, and its best LR is the suggestion: the sweep only places the
check's window. The best LR is refined by a parabola in log LR but never placed above the
best LR it trained, and when the next LR up diverged or more than doubled the loss, it is
halved: the best run then sits at the edge of a cliff, and a short run cannot tell how
close (on least squares, GD at 1.005x its stable limit 2/L still looks fine after 100
steps and has blown up by 1000). The spread is the range of LRs the check cannot rank: the
runs within ``CHECK_TIE`` of the best loss, next to the best run. When every run diverged,
the suggestion is half the lowest LR, by the same edge rule, with a warning.
``autolr bench rangetest`` measures the rule (``reports/reference/bench-rangetest.md``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from autolr.rangetest.analysis import refined_minimum, search_interval
from autolr.rangetest.confidence import NO_DESCENT, at_least_one_step, descended, start_loss

if TYPE_CHECKING:
    from autolr.rangetest.range_test import RangeTestResult

CHECK_LRS = 7  # constant LRs in the check
CHECK_SPAN = 64.0  # from the loss minimum's LR down to this factor below it (2x apart)
CHECK_STEPS = 100  # training steps of each copy
EDGE_LOSS_FACTOR = 2.0  # the next LR up losing more than this factor means the best run is at an edge
CHECK_TIE = 0.05  # runs whose held-out loss is within this fraction of the best are not ranked apart
ALL_DIVERGED = ("every run of the check diverged, down to 1/64 of the sweep's loss minimum: the suggestion is "
                "half its lowest LR, a guess; check the model, the data and the loss")


def check_bounds(loss_min: float) -> tuple[float, float]:
    """The (lowest, highest) LR of the check around the sweep's loss-minimum LR ``loss_min``."""
    return loss_min / CHECK_SPAN, loss_min


def _best_run(losses: Sequence[float]) -> int | None:
    """The index of the lowest finite loss (NaN: diverged); None when every run diverged."""
    return min((i for i, loss in enumerate(losses) if math.isfinite(loss)), key=lambda i: losses[i], default=None)


def check_best(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The check's best LR (``lrs`` ascending): the lowest held-out loss (NaN: diverged), refined in log LR,
    not above the best LR run, and half of that when the next LR up diverged or lost more than 2x; half the
    lowest LR when every run diverged."""
    best_run = _best_run(losses)
    if best_run is None:
        return lrs[0] / 2
    best = min(refined_minimum(lrs, losses), lrs[best_run])
    above = losses[best_run + 1] if best_run + 1 < len(losses) else None
    if above is not None and not above <= EDGE_LOSS_FACTOR * losses[best_run]:  # NaN counts as diverged
        best = min(best, lrs[best_run] / 2)
    return best


def check_spread(lrs: Sequence[float], losses: Sequence[float], best: float) -> tuple[float, float]:
    """The LRs the check cannot rank apart from its best run (``lrs`` ascending): the contiguous runs around
    the best one whose loss is within ``CHECK_TIE`` of it, widened to take in ``best`` (the check's best LR);
    ``best`` alone when every run diverged. Either is widened to at least one step of the grid
    (``confidence.at_least_one_step``): the LRs between two runs were not tried."""
    best_run = _best_run(losses)
    if best_run is None:
        return at_least_one_step(best, best, lrs)
    tied = [math.isfinite(loss) and loss <= (1 + CHECK_TIE) * losses[best_run] for loss in losses]
    low = high = best_run
    while low > 0 and tied[low - 1]:
        low -= 1
    while high + 1 < len(lrs) and tied[high + 1]:
        high += 1
    return at_least_one_step(min(lrs[low], best), max(lrs[high], best), lrs)


def with_check(result: "RangeTestResult", lrs: Sequence[float], losses: Sequence[float],
               num_steps: int) -> "RangeTestResult":
    """``result`` (a sweep) with the check's losses at ``lrs`` applied: suggestion, interval and spread.

    The suggestion is the check's best LR (rule ``check``), the spread ``check_spread``; when
    every run diverged, half the lowest LR and a warning. The sweep's "never clearly descended"
    warning is dropped when the check's best held-out loss is a clear descent from the sweep's
    start (a model that learns slowly while the LR climbs, as a small CNN in 100 steps). The
    check's curve and the sweep's own suggestion are kept in ``settings["check"]``.
    """
    best = check_best(lrs, losses)
    best_run = _best_run(losses)
    warnings = [*result.warnings, ALL_DIVERGED] if best_run is None else result.warnings
    if best_run is not None and descended(start_loss(result.smoothed_losses), losses[best_run]):
        warnings = [warning for warning in warnings if warning != NO_DESCENT]  # the check's runs learned
    stored = {"lrs": list(lrs), "losses": [loss if math.isfinite(loss) else None for loss in losses],
              "num_steps": num_steps, "sweep_suggestion": result.suggestion}
    return replace(result, suggestion=best, suggestions={**result.suggestions, "check": best},
                   interval=search_interval(best, result.suggestions["loss_min"]),
                   suggestion_spread=check_spread(lrs, losses, best), warnings=warnings,
                   settings={**result.settings, "check": stored})
