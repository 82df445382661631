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
user seeds). Measured on the stored check runs of 24 settings (``autolr bench rangetest
--seed-spread``): near the best the curves are flat (within 5-10% over 4-16x of LR), so the
lowest run is decided by noise of a few percent; and where a cliff decides, one seed's blow-up
moved the cliff by a whole 2x step of the grid. So, over the seeds (``CHECK_SEEDS``, each its own
held-out rows, batch order and, for a built-in model, initial weights):

- the *mean curve* is the geometric mean of the seeds' losses per LR (NaN where any seed
  diverged);
- a seed *fails* at an LR where it diverged or ended above ``EDGE_LOSS_FACTOR`` times its own best
  loss; its *cliff* is its lowest failing LR above one where it held; the check's *cliff* is the
  median seed's (``cliff_index``), so one seed's blow-up alone does not move it;
- the suggestion is the mean curve's *soft minimum* below the cliff: the centre, in log LR, of
  the runs weighted by ``exp(-(loss / best - 1) / SOFT_MIN_SCALE)``. A clear minimum keeps almost
  all the weight; runs tied within noise share it, so the answer moves smoothly with the losses
  instead of jumping between tied runs;
- above a batch of ``LARGE_BATCH`` rows it is raised by ``(batch / LARGE_BATCH) **
  LARGE_BATCH_POWER`` (``batch_factor``): at batches of 256-1024 trained for 15-40 epochs the
  held-out loss is lowest 3-7x below the LR a constant-LR grid trains most accurately (the
  lower LRs' less confident predictions score a lower cross-entropy while accuracy still rises;
  ``reports/reference/bench-rangetest.md``);
- and it is never above ``cliff / CLIFF_MARGIN``, nor above ``1 / SEED_FAILURE_MARGIN`` of the
  lowest LR where any seed failed, nor above the highest LR the check ran: a short or
  extrapolated run cannot tell how close to the cliff an LR just below it is (on least squares,
  GD at 1.005x its stable limit 2/L still looks fine after 100 steps and has blown up by 1000).

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
EDGE_LOSS_FACTOR = 2.0  # a seed whose loss at an LR ends above this factor of its own best loss has failed there
CLIFF_MARGIN = 3.0  # the suggestion stays at least this factor below the cliff (the median seed's lowest failing LR)
SEED_FAILURE_MARGIN = 2.5  # ... and at least this factor below the lowest LR where any seed failed
SOFT_MIN_SCALE = 0.3  # a run this fraction above the best loss weighs 1/e of the best run in the soft minimum
LARGE_BATCH = 128  # batch size (rows) above which the soft minimum is raised (the tuning settings' batch) ...
LARGE_BATCH_POWER = 0.5  # ... by (batch / LARGE_BATCH) ** this (the square-root rule)
CHECK_TIE = 0.05  # runs whose held-out loss is within this fraction of the best are not ranked apart
ALL_DIVERGED = ("every run of the check diverged, down to 1/64 of the sweep's loss minimum: the suggestion is "
                "half its lowest LR, a guess; check the model, the data and the loss")


@dataclass(frozen=True)
class CheckRuns:
    """The check's runs: ``lrs`` ascending; ``losses[s][i]`` seed ``seeds[s]``'s held-out loss at ``lrs[i]``
    judged at ``length`` steps (NaN: diverged), from runs of ``num_steps`` steps; ``batch_size``: the user's
    batch (rows; ``batch_factor``'s)."""

    lrs: list[float]
    seeds: list[int]
    losses: list[list[float]]
    num_steps: int
    length: int
    batch_size: int


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


def _seed_cliff(losses: Sequence[float]) -> int | None:
    """The index of the lowest LR where one seed's ``losses`` failed above one where they held; None if none.

    When they failed at every LR, the one above their best run (if any)."""
    failed = _failed(losses)
    first_ok = next((i for i, fail in enumerate(failed) if not fail), None)
    if first_ok is None:
        best = _best_run(losses)
        return None if best is None or best + 1 >= len(failed) else best + 1
    return next((i for i in range(first_ok + 1, len(failed)) if failed[i]), None)


def cliff_index(losses: Sequence[Sequence[float]]) -> int | None:
    """The median seed's cliff (``_seed_cliff``): a seed without one counts as above every LR, and of an even
    number of seeds the lower middle one is taken; None when that seed has none."""
    above = len(losses[0])
    middle = statistics.median_low([above if cliff is None else cliff for cliff in map(_seed_cliff, losses)])
    return None if middle == above else middle


def lowest_failure(losses: Sequence[Sequence[float]]) -> int | None:
    """The lowest of the seeds' cliffs (``_seed_cliff``); None when no seed has one."""
    return min((cliff for cliff in map(_seed_cliff, losses) if cliff is not None), default=None)


def soft_minimum(lrs: Sequence[float], curve: Sequence[float]) -> float:
    """The LR at the centre, in log LR, of ``curve``'s finite runs weighted by ``exp(-(loss / best - 1) /
    SOFT_MIN_SCALE)`` (``best``: its lowest loss); at least one run must be finite."""
    best = min(loss for loss in curve if math.isfinite(loss))
    weights = [math.exp(-(loss / best - 1) / SOFT_MIN_SCALE) if math.isfinite(loss) else 0.0 for loss in curve]
    return math.exp(sum(w * math.log(lr) for w, lr in zip(weights, lrs)) / sum(weights))


def batch_factor(batch_size: int) -> float:
    """How much the soft minimum is raised at ``batch_size`` rows: ``(batch_size / LARGE_BATCH) **
    LARGE_BATCH_POWER`` above ``LARGE_BATCH``, else 1."""
    return max(1.0, batch_size / LARGE_BATCH) ** LARGE_BATCH_POWER


def check_best(lrs: Sequence[float], losses: Sequence[Sequence[float]], batch_size: int) -> float:
    """The check's best LR (``lrs`` ascending, ``losses[seed][i]``, the user's ``batch_size``): the mean curve's
    soft minimum below the cliff times ``batch_factor``, not above ``cliff / CLIFF_MARGIN``, the lowest failing
    LR of any seed over ``SEED_FAILURE_MARGIN`` or the highest LR; half the lowest LR when there is no usable
    run."""
    cliff, lowest = cliff_index(losses), lowest_failure(losses)
    curve = mean_curve(losses)[:cliff]
    if _best_run(curve) is None:
        return lrs[0] / 2
    caps = [lrs[-1], *([lrs[cliff] / CLIFF_MARGIN] if cliff is not None else []),
            *([lrs[lowest] / SEED_FAILURE_MARGIN] if lowest is not None else [])]
    return min(soft_minimum(lrs[:len(curve)], curve) * batch_factor(batch_size), *caps)


def seed_suggestions(lrs: Sequence[float], losses: Sequence[Sequence[float]], batch_size: int) -> list[float]:
    """``check_best`` of each seed alone, in the seeds' order."""
    return [check_best(lrs, [seed], batch_size) for seed in losses]


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
    same = (lower.seeds, lower.batch_size) == (runs.seeds, runs.batch_size)
    assert math.isclose(lower.lrs[-1] * step, runs.lrs[0]) and same, "a pass just below"
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
    check's losses, the length they are judged at, the batch and the sweep's own suggestion are kept in
    ``settings["check"]``.
    """
    lrs, losses = runs.lrs, runs.losses
    best = check_best(lrs, losses, runs.batch_size)
    curve = mean_curve(losses)
    best_run = _best_run(curve)
    diverged = all(not math.isfinite(loss) for seed in losses for loss in seed)
    warnings = [*result.warnings, ALL_DIVERGED] if diverged else result.warnings
    if best_run is not None and descended(start_loss(result.smoothed_losses), curve[best_run]):
        warnings = [warning for warning in warnings if warning != NO_DESCENT]  # the check's runs learned
    stored = {"lrs": list(lrs), "seeds": list(runs.seeds),
              "losses": [[loss if math.isfinite(loss) else None for loss in seed] for seed in losses],
              "num_steps": runs.num_steps, "length": runs.length, "batch_size": runs.batch_size,
              "sweep_suggestion": result.suggestion,
              "sweep_seed_suggestions": list(result.seed_suggestions)}
    anchor = min(result.suggestions["loss_min"], ANCHOR_FACTOR * best)
    return replace(result, suggestion=best, suggestions={**result.suggestions, "check": best, "anchor": anchor},
                   interval=search_interval(best, result.suggestions["loss_min"]),
                   suggestion_spread=check_spread(lrs, curve, best),
                   seed_suggestions=seed_suggestions(lrs, losses, runs.batch_size),
                   warnings=warnings, settings={**result.settings, "check": stored})
