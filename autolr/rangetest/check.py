"""The population check: short constant-LR runs on several seeds at and below the sweep's loss minimum, which pick
the suggestion.

A sweep reads its loss minimum while the LR is still climbing, so a fixed divisor of it
lands on a cliff for a model whose training collapses just above its best LR (a small CNN
trained for long) and far too low for one that tolerates large steps (large batches). The
check trains ``CHECK_LRS`` copies of the model per seed, at constant LRs from the loss
minimum down to ``1 / CHECK_SPAN`` of it, for the user's training length up to
``horizon.CHECK_MAX_STEPS`` steps (``CHECK_STEPS`` when no length is given), scores each on
held-out training rows, and grows a run's loss to the user's length where it is growing
(``rangetest.horizon``: longer lengths are extrapolated from the loss's growth, not run).

The rule is built to give the same answer under another seed (issue #26: within 2x across 3
user seeds). Measured on the stored check runs of 12 settings (``autolr bench rangetest
--seed-spread``), the previous rule (the argmin of the seeds' mean curve, refined by a parabola,
below the lowest LR where *any* seed lost 2x) varied by up to 5.5x across user seeds: near the
best the curves are flat (within 5-10% over 4-16x of LR), so which run is lowest is decided by
noise of a few percent and jumps by whole grid steps; and a single seed's spike could move the
cliff. So, over the seeds (``CHECK_SEEDS``, each its own held-out rows, batch order and, for a
built-in model, initial weights):

- the seeds are pooled first: the *mean curve* is the geometric mean of their losses per LR (NaN
  where any seed diverged, so one diverged seed still marks the LR);
- an LR *fails* when the mean curve diverged there or ended above ``EDGE_LOSS_FACTOR`` times its
  best; the *cliff* is the lowest failing LR above one that held;
- the suggestion is the mean curve's *soft minimum* below the cliff: the centre, in log LR, of
  the runs weighted by ``exp(-(loss / best - 1) / SOFT_MIN_SCALE)``. A clear minimum keeps almost
  all the weight; runs tied within noise share it, so the answer moves smoothly with the losses
  instead of jumping between tied runs; and it is never above ``cliff / CLIFF_MARGIN``: a short
  or extrapolated run cannot tell how close to the cliff an LR just below it is (on least
  squares, GD at 1.005x its stable limit 2/L still looks fine after 100 steps and has blown up
  by 1000).

Each seed alone, by the same rule, gives the per-seed suggestions whose range is the spread
across seeds. The ``suggestion_spread`` is the range of LRs the check cannot rank: the runs
within ``CHECK_TIE`` of the best mean loss, next to the best run. When every run diverged, the
suggestion is half the lowest LR, with a warning. ``autolr bench rangetest`` measures the rule
(``reports/reference/bench-rangetest.md``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from autolr.rangetest.analysis import search_interval
from autolr.rangetest.confidence import NO_DESCENT, at_least_one_step, descended, start_loss

if TYPE_CHECKING:
    from autolr.rangetest.range_test import RangeTestResult

CHECK_LRS = 7  # constant LRs in the check
CHECK_EXTENSIONS = 2  # passes one span lower the check may add while its best run is its lowest LR
ANCHOR_FACTOR = 4.0  # the search's anchor is at most this times the check's best (the sweep suggests loss_min / 4)
CHECK_SPAN = 64.0  # from the loss minimum's LR down to this factor below it (2x apart)
CHECK_STEPS = 100  # training steps of each copy when the user's length is not given
CHECK_SEEDS = 3  # seeds the sweep and the check run on
EDGE_LOSS_FACTOR = 2.0  # an LR whose mean loss ends above this factor of the best mean loss has failed
CLIFF_MARGIN = 3.0  # the suggestion stays at least this factor below the cliff (the lowest failing LR)
SOFT_MIN_SCALE = 0.2  # a run this fraction above the best loss weighs 1/e of the best run in the soft minimum
CHECK_TIE = 0.05  # runs whose held-out loss is within this fraction of the best are not ranked apart
ALL_DIVERGED = ("every run of the check diverged, down to 1/64 of the sweep's loss minimum: the suggestion is "
                "half its lowest LR, a guess; check the model, the data and the loss")


@dataclass(frozen=True)
class CheckRuns:
    """The check's runs: ``lrs`` ascending; ``losses[s][i]`` seed ``seeds[s]``'s held-out loss at ``lrs[i]``
    judged at ``length`` steps (NaN: diverged), from runs of ``num_steps`` steps."""

    lrs: list[float]
    seeds: list[int]
    losses: list[list[float]]
    num_steps: int
    length: int


def check_bounds(loss_min: float) -> tuple[float, float]:
    """The (lowest, highest) LR of the check around the sweep's loss-minimum LR ``loss_min``."""
    return loss_min / CHECK_SPAN, loss_min


def mean_curve(losses: Sequence[Sequence[float]]) -> list[float]:
    """Per LR, the geometric mean of the seeds' losses (NaN where any seed diverged or a loss is not positive)."""
    return [math.exp(statistics.fmean(math.log(loss) for loss in column))
            if all(math.isfinite(loss) and loss > 0 for loss in column) else math.nan
            for column in zip(*losses)]


def _best_run(losses: Sequence[float]) -> int | None:
    """The index of the lowest finite loss (NaN: diverged); None when every run diverged."""
    return min((i for i, loss in enumerate(losses) if math.isfinite(loss)), key=lambda i: losses[i], default=None)


def _failed(curve: Sequence[float]) -> list[bool]:
    """Per LR of a curve: diverged, or more than ``EDGE_LOSS_FACTOR`` times the curve's best loss."""
    best = min((loss for loss in curve if math.isfinite(loss)), default=math.nan)
    return [not loss <= EDGE_LOSS_FACTOR * best for loss in curve]  # NaN compares False: failed


def cliff_index(losses: Sequence[Sequence[float]]) -> int | None:
    """The index of the lowest LR where the mean curve failed above one where it held; None if none.

    When it failed at every LR, the one above its best run (if any)."""
    curve = mean_curve(losses)
    failed = _failed(curve)
    first_ok = next((i for i, fail in enumerate(failed) if not fail), None)
    if first_ok is None:
        best = _best_run(curve)
        return None if best is None or best + 1 >= len(failed) else best + 1
    return next((i for i in range(first_ok + 1, len(failed)) if failed[i]), None)


def soft_minimum(lrs: Sequence[float], curve: Sequence[float]) -> float:
    """The LR at the centre, in log LR, of ``curve``'s finite runs weighted by ``exp(-(loss / best - 1) /
    SOFT_MIN_SCALE)`` (``best``: its lowest loss); at least one run must be finite."""
    best = min(loss for loss in curve if math.isfinite(loss))
    weights = [math.exp(-(loss / best - 1) / SOFT_MIN_SCALE) if math.isfinite(loss) else 0.0 for loss in curve]
    return math.exp(sum(w * math.log(lr) for w, lr in zip(weights, lrs)) / sum(weights))


def check_best(lrs: Sequence[float], losses: Sequence[Sequence[float]]) -> float:
    """The check's best LR (``lrs`` ascending, ``losses[seed][i]``): the mean curve's soft minimum below the cliff,
    not above ``cliff / CLIFF_MARGIN``; half the lowest LR when there is no usable run."""
    cliff = cliff_index(losses)
    curve = mean_curve(losses)[:cliff]
    if _best_run(curve) is None:
        return lrs[0] / 2
    best = soft_minimum(lrs[:len(curve)], curve)
    return best if cliff is None else min(best, lrs[cliff] / CLIFF_MARGIN)


def seed_suggestions(lrs: Sequence[float], losses: Sequence[Sequence[float]]) -> list[float]:
    """``check_best`` of each seed alone, in the seeds' order."""
    return [check_best(lrs, [seed]) for seed in losses]


def check_spread(lrs: Sequence[float], losses: Sequence[float], best: float) -> tuple[float, float]:
    """The LRs the check cannot rank apart from its best run (``lrs`` ascending, ``losses`` the mean curve): the
    contiguous runs around the best one whose loss is within ``CHECK_TIE`` of it, widened to take in ``best``
    (the check's best LR); ``best`` alone when every run diverged. Either is widened to at least one step of
    the grid (``confidence.at_least_one_step``): the LRs between two runs were not tried."""
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


def best_at_lowest(runs: CheckRuns) -> bool:
    """Whether the mean curve's best run is the check's lowest LR: the best LR may lie below what it tried."""
    return _best_run(mean_curve(runs.losses)) == 0


def extended(lower: CheckRuns, runs: CheckRuns) -> CheckRuns:
    """``runs`` with a pass ``lower`` one grid step below ``runs``' lowest LR, on the same grid (it leaves out the
    LR ``runs`` ran: ``population_check(highest=False)``)."""
    step = runs.lrs[1] / runs.lrs[0]
    assert math.isclose(lower.lrs[-1] * step, runs.lrs[0]) and lower.seeds == runs.seeds, "a pass just below"
    return replace(runs, lrs=[*lower.lrs, *runs.lrs],
                   losses=[[*low, *high] for low, high in zip(lower.losses, runs.losses)])


def with_check(result: "RangeTestResult", runs: CheckRuns) -> "RangeTestResult":
    """``result`` (a sweep, on the same seeds) with the check's ``runs`` applied: suggestion, interval and spreads.

    The suggestion is ``check_best`` (rule ``check``), and the search's ``anchor`` (rule ``anchor``, which a
    study's intervals are factors of) is the sweep's loss minimum but at most ``ANCHOR_FACTOR`` times the
    check's best;
    ``suggestion_spread`` is ``check_spread``
    of the mean curve and ``seed_suggestions`` each seed's own ``check_best``; when every run
    diverged, half the lowest LR and a warning. The sweep's "never clearly descended" warning
    is dropped when the mean curve's best held-out loss is a clear descent from the sweep's
    start (a model that learns slowly while the LR climbs, as a small CNN in 100 steps). The
    check's losses, the length they are judged at and the sweep's own suggestion are kept in
    ``settings["check"]``.
    """
    lrs, losses = runs.lrs, runs.losses
    best = check_best(lrs, losses)
    curve = mean_curve(losses)
    best_run = _best_run(curve)
    diverged = all(not math.isfinite(loss) for seed in losses for loss in seed)
    warnings = [*result.warnings, ALL_DIVERGED] if diverged else result.warnings
    if best_run is not None and descended(start_loss(result.smoothed_losses), curve[best_run]):
        warnings = [warning for warning in warnings if warning != NO_DESCENT]  # the check's runs learned
    stored = {"lrs": list(lrs), "seeds": list(runs.seeds),
              "losses": [[loss if math.isfinite(loss) else None for loss in seed] for seed in losses],
              "num_steps": runs.num_steps, "length": runs.length, "sweep_suggestion": result.suggestion,
              "sweep_seed_suggestions": list(result.seed_suggestions)}
    anchor = min(result.suggestions["loss_min"], ANCHOR_FACTOR * best)
    return replace(result, suggestion=best, suggestions={**result.suggestions, "check": best, "anchor": anchor},
                   interval=search_interval(best, result.suggestions["loss_min"]),
                   suggestion_spread=check_spread(lrs, curve, best), seed_suggestions=seed_suggestions(lrs, losses),
                   warnings=warnings, settings={**result.settings, "check": stored})
