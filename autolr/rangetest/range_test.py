"""The LR range test (Smith 2017): train briefly while the LR grows, read off where learning is fastest.

Two ways to run it, both returning a ``RangeTestResult`` (the curve, the suggestion of
each rule, one recommended LR and an interval for the search):

- ``lr_range_test``: the classic sweep, one model whose LR grows every step, on a user's
  own model, optimizer and data; it leaves all of them exactly as they were (parameters,
  buffers, gradients, optimizer state and LRs, train/eval mode, torch RNG). The default
  for user models, and on CPU, where it costs one model's training steps per seed: it runs
  on ``CHECK_SEEDS`` seeds (``run_seeds``) and ``combine_sweeps`` keeps the median one, and the
  population check that may follow (``rangetest.check``) runs on the same seeds, at the
  user's training length (``rangetest.horizon``).
- ``population_range_test``: K copies of a model (built-in, or the user's own through
  ``lr_range_test(..., method="population")``), each at one constant LR of a log grid,
  trained at once by the population trainer; the curve is each LR's held-out loss after
  the run. Every point is a real constant-LR run instead of one step of a moving target,
  and the suggestion needs no calibrated divisor; on a GPU the K copies cost about one
  model's wall time, on CPU K times the steps. The default for built-in models on a GPU
  (``builtin_range_test`` picks).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autolr.data.splits import Splits
from autolr.errors import UserError
from autolr.rangetest.analysis import ema, loss_min_lr, refined_minimum, search_interval, suggestions
from autolr.rangetest.check import (
    CHECK_EXTENSIONS,
    CHECK_LRS,
    CHECK_SEEDS,
    CHECK_STEPS,
    CheckRuns,
    best_at_lowest,
    check_bounds,
    extended,
    with_check,
)
from autolr.rangetest.confidence import curve_warnings, suggestion_spread
from autolr.rangetest.horizon import CHECK_MAX_STEPS, CHECK_POINTS, loss_at_length, target_steps
from autolr.schedule.schedulers import optimizer_settings_of
from autolr.schedule.spec import MAX_LR, ScheduleSpec
from autolr.training.module_population import train_module_population
from autolr.training.population import train_population
from autolr.training.train import LossFn, SampledSplits, TrialResult, set_optimizer_mode
from autolr.training.train import epoch_steps as steps_between_evaluations

HELD_OUT_ROWS = 2000  # a population test scores on this many training rows (at most a fifth of them)


@dataclass(frozen=True)
class CheckCost:
    """What the check's runs cost: each trains at most ``max_steps`` steps and is scored on ``held_out`` rows, on the
    first ``seeds`` of the sweeps' seeds (None: all of them)."""

    max_steps: int = CHECK_MAX_STEPS
    held_out: int = HELD_OUT_ROWS
    seeds: int | None = None


# A language model's study check (the built-in transformer, AdamW): a training step costs about as much as scoring
# 55 windows, so 2000 windows scored 4 times cost 145 steps beside a run's 200; 512 cost 37. Two of the sweeps'
# three seeds (the fortunes study, seed 0: the three seeds' suggestions 0.00213 to 0.00219, two seeds' check 0.00213
# against three's 0.00215). Runs of 100 steps were tried and rejected: there they stopped the check before its
# extension (its best 8x higher).
LM_CHECK_COST = CheckCost(held_out=512, seeds=2)
LOSS_MIN_DIVISOR = 4.0  # the suggestion is the LR of the smoothed loss minimum divided by this


@dataclass
class RangeTestResult:
    """A range test's curve and what it recommends.

    ``lrs[i]`` is the LR of step ``i`` (sweep) or of grid member ``i`` (population);
    ``losses`` the raw training loss there, ``smoothed_losses`` the curve the rules read.
    ``stopped_at`` is the number of steps run and ``stop_reason`` one of
    ``completed | diverged | nonfinite``. ``suggestions`` maps rule -> LR, ``suggestion``
    is the recommended LR and ``interval`` the (low, high) LR range for the search.
    ``suggestion_spread`` is the (low, high) range of the suggestion over the curve's noise
    (sweep only: a block bootstrap, see ``rangetest.confidence``; after the population check,
    the LRs it cannot rank apart, see ``rangetest.check``; None for the population test and
    for results stored before it existed) and ``warnings`` short sentences on a
    curve not to trust blindly (no clear descent, never rose). ``seed_suggestions`` is the
    LR each seed alone suggests (``settings["seeds"]``; empty for the population test and
    results stored before seeds): its range is the spread across seeds (``seed_spread``).
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    stopped_at: int
    stop_reason: str
    suggestions: dict[str, float]
    suggestion: float
    interval: tuple[float, float]
    method: str = "sweep"
    settings: dict[str, Any] = field(default_factory=dict)
    suggestion_spread: tuple[float, float] | None = None
    warnings: list[str] = field(default_factory=list)
    seed_suggestions: list[float] = field(default_factory=list)

    @property
    def seed_spread(self) -> tuple[float, float] | None:
        """The (lowest, highest) of ``seed_suggestions``; None without them."""
        return (min(self.seed_suggestions), max(self.seed_suggestions)) if self.seed_suggestions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite losses become None); ``from_dict`` reads it back."""
        return {
            "lrs": list(self.lrs),
            "losses": [v if math.isfinite(v) else None for v in self.losses],
            "smoothed_losses": [v if math.isfinite(v) else None for v in self.smoothed_losses],
            "stopped_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "suggestions": dict(self.suggestions),
            "suggestion": self.suggestion,
            "interval": list(self.interval),
            "method": self.method,
            "settings": dict(self.settings),
            "suggestion_spread": None if self.suggestion_spread is None else list(self.suggestion_spread),
            "warnings": list(self.warnings),
            "seed_suggestions": list(self.seed_suggestions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RangeTestResult":
        """Rebuild a result stored with ``to_dict``."""
        def floats(values: list[float | None]) -> list[float]:
            return [math.nan if v is None else float(v) for v in values]

        spread = data.get("suggestion_spread")
        return cls(
            lrs=[float(v) for v in data["lrs"]], losses=floats(data["losses"]),
            smoothed_losses=floats(data["smoothed_losses"]), stopped_at=int(data["stopped_at"]),
            stop_reason=data["stop_reason"], suggestions=dict(data["suggestions"]),
            suggestion=float(data["suggestion"]), interval=(float(data["interval"][0]), float(data["interval"][1])),
            method=data.get("method", "sweep"), settings=dict(data.get("settings", {})),
            suggestion_spread=None if spread is None else (float(spread[0]), float(spread[1])),
            warnings=list(data.get("warnings", [])),
            seed_suggestions=[float(v) for v in data.get("seed_suggestions", [])],
        )

    def plot(self, path: str | Path) -> Path:
        """Write the curve with the suggestion and interval marked as a PNG at ``path``."""
        from autolr.rangetest.plot import write_png

        return write_png(self, Path(path))

    def plot_html(self, include_plotlyjs: bool | str = False) -> str:
        """The curve as an HTML fragment (Plotly); by default without plotly.js, which the page embeds once."""
        from autolr.rangetest.plot import html_fragment

        return html_fragment(self, include_plotlyjs)


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Any,
    loss_fn: LossFn,
    *,
    method: str = "sweep",
    start_lr: float | None = None,
    end_lr: float = 10.0,
    num_steps: int | None = None,
    num_lrs: int = 16,
    mode: str = "exp",
    smooth: float = 0.05,
    diverge_factor: float = 4.0,
    amp: bool = False,
    batch_size: int = 128,
    seed: int = 0,
    seeds: int = CHECK_SEEDS,
    check: bool = False,
    epochs: int | None = None,
    steps: int | None = None,
    grad_clip: float | None = None,
) -> RangeTestResult:
    """Sweep the LR from ``start_lr`` (default 1e-7) to ``end_lr`` over ``num_steps`` (default 100) training steps.

    ``method="population"`` instead trains ``num_lrs`` copies of ``model`` (its current
    weights) at once, each at one constant LR of a log grid from ``start_lr`` (default
    1e-4) to ``end_lr``, for ``num_steps`` (default 200) steps with ``optimizer``'s
    settings (SGD, Adam or AdamW), as ``population_range_test`` (one seed); ``data`` must then be
    ``(x, y)`` tensors (taken as they are, not normalized) and ``mode``, ``smooth`` and
    ``diverge_factor`` do not apply. ``data`` is a DataLoader (or any re-iterable of
    ``(inputs, targets)`` batches, cycled when exhausted) or a pair of tensors ``(x, y)`` drawn in shuffled batches of
    ``batch_size`` rows. ``mode`` is ``exp`` (geometric steps) or
    ``linear``. ``smooth`` is the EMA weight of the newest loss (bias-corrected; the rules
    read this smoothed curve); the test stops early (``stop_reason`` ``diverged``) once the
    smoothed loss exceeds ``diverge_factor`` times its minimum, or (``nonfinite``) when a
    loss is NaN or infinite; otherwise ``stop_reason`` is ``completed``.
    Every param group gets the same LR during the test. ``amp`` runs the forward pass in
    float16 on CUDA (with a gradient scaler) or bfloat16 on CPU. Model, optimizer and torch
    RNG are restored afterwards.

    The sweep runs ``seeds`` times from the same weights, on the batch orders of seeds
    ``run_seeds(seed, seeds)`` (a DataLoader: its next batches); the result is the sweep
    whose suggestion is the median, and ``seed_suggestions`` holds each one's.
    ``check=True`` (``data`` an ``(x, y)`` pair of tensors) then runs the population check on
    copies of ``model`` on the same seeds (``rangetest.check``), whose best constant-LR run at
    or below the sweep's loss minimum is the suggestion. ``epochs`` (passes over ``data``) or
    ``steps``: the length you will train for; the check judges its runs at that length
    (``rangetest.horizon``: run up to 200 steps, extrapolated beyond), so it needs
    ``check=True``. ``grad_clip``: each sweep step first clips the gradients' total norm to it, as a job that
    clips does (None: no clipping).
    """
    if check and not _is_tensor_pair(data):
        raise UserError(f"check=True needs data as an (x, y) pair of tensors, got {type(data).__name__}")
    if (epochs is not None or steps is not None) and not check:
        raise UserError("epochs and steps set the length the population check judges: pass check=True with (x, y) "
                        "tensors")
    _check_at_least("seeds", seeds, 1)
    if method == "population":
        return _user_population_range_test(model, optimizer, data, loss_fn, start_lr or 1e-4, end_lr,
                                           num_steps or 200, num_lrs, amp, batch_size, seed)
    if method != "sweep":
        raise UserError(f"method must be sweep or population, got {method!r}")
    start_lr, num_steps = start_lr or 1e-7, num_steps or 100
    _check_lr_range(start_lr, end_lr)
    _check_at_least("num_steps", num_steps, 10)
    _check_sweep_options(mode, smooth, diverge_factor)
    length = target_steps(epochs, steps, math.ceil(len(data[0]) / batch_size) if check else 1)
    lrs = _lr_sweep(start_lr, end_lr, num_steps, mode)
    settings = {"start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps, "mode": mode,
                "smooth": smooth, "diverge_factor": diverge_factor, "amp": amp, "grad_clip": grad_clip}
    results = []
    with _restored(model, optimizer, data):
        for run_seed in run_seeds(seed, seeds):
            with _restored(model, optimizer, None):
                batches = _batches(data, batch_size, run_seed)
                losses, stop_reason = _sweep(model, optimizer, batches, loss_fn, lrs, smooth, diverge_factor, amp,
                                             grad_clip)
            results.append(sweep_result(lrs[: len(losses)], losses, stop_reason, {**settings, "seed": run_seed}))
    result = combine_sweeps(results, length)
    if not check:
        return result
    return _checked(result, lambda: copy.deepcopy(model), tensor_splits(*data), batch_size=batch_size,
                    optimizer=optimizer_settings_of(optimizer), device=next(model.parameters()).device,
                    amp=amp, loss_fn=loss_fn)


def run_seeds(seed: int, count: int) -> list[int]:
    """The seeds a range test runs on: ``seed * count`` up to ``seed * count + count - 1``.

    Distinct ``seed`` values never share a run seed, so tests under different seeds are independent.
    """
    return [seed * count + i for i in range(count)]


def combine_sweeps(results: Sequence[RangeTestResult], length: int | None) -> RangeTestResult:
    """Per-seed sweeps (each with ``settings["seed"]``) as one: the sweep whose suggestion is the median (the lower
    of the middle two for an even count), with every seed's suggestion in ``seed_suggestions``, the seeds and
    their raw curves in ``settings`` (``seeds``, ``seed_curves``) and ``length`` (the user's training length in
    steps, None if not given) in ``settings["length"]``."""
    order = sorted(range(len(results)), key=lambda i: results[i].suggestion)
    middle = results[order[(len(results) - 1) // 2]]
    curves = [{"seed": r.settings["seed"], "lrs": list(r.lrs),
               "losses": [loss if math.isfinite(loss) else None for loss in r.losses]} for r in results]
    return replace(middle, seed_suggestions=[r.suggestion for r in results],
                   settings={**middle.settings, "seeds": [r.settings["seed"] for r in results],
                             "seed_curves": curves, "length": length})


def population_check(model: str | Callable[[], nn.Module], splits: Any, loss_min: float, *, batch_size: int,
                     optimizer: dict[str, Any] | None, seeds: Sequence[int], length: int | None,
                     device: str | torch.device | None = None, amp: bool | None = None,
                     loss_fn: LossFn = F.cross_entropy, max_steps: int = CHECK_MAX_STEPS,
                     grad_clip: float | None = None, highest: bool = True,
                     held_out: int = HELD_OUT_ROWS) -> CheckRuns:
    """The check's runs (``rangetest.check``): ``CHECK_LRS`` constant LRs from ``loss_min / CHECK_SPAN`` to
    ``loss_min`` on each of ``seeds`` (its own held-out training rows, batch order and, for a built-in
    ``model``, initial weights), for ``length`` steps but at most ``max_steps`` (``CHECK_STEPS`` when
    ``length`` is None), scored at least ``CHECK_POINTS`` times; each run's loss is judged at ``length``
    (``horizon.loss_at_length``) on ``held_out`` rows (windows of a text) held out of training. A full-batch
    ``batch_size`` trains on the rows left after holding out (the runs keep the user's ``batch_size``, which
    ``check.batch_factor`` reads). ``highest`` False leaves out ``loss_min`` itself (a pass below one that ran it:
    ``check.extended``)."""
    lrs = _lr_sweep(*check_bounds(loss_min), CHECK_LRS, "exp")[:None if highest else -1]
    run_steps = CHECK_STEPS if length is None else min(length, max_steps)
    rows = len(splits.train_y)
    trained = min(batch_size, rows - held_out_rows(rows, held_out))
    losses, steps_run = [], run_steps
    for seed in seeds:
        data, epochs = held_out_split(splits, run_steps, trained, held_out, seed, min_epochs=CHECK_POINTS)
        epoch_steps = steps_between_evaluations(data, trained)
        steps_run = epochs * epoch_steps
        members = constant_lr_runs(model, data, lrs, epochs=epochs, batch_size=trained, optimizer=optimizer,
                                   seed=seed, device=device, amp=amp, loss_fn=loss_fn, grad_clip=grad_clip)
        losses.append([loss_at_length([epoch_steps * (e + 1) for e in range(len(m.val_losses))], m.val_losses,
                                      length or steps_run) if m.status == "complete" else math.nan
                       for m in members])
    return CheckRuns(lrs=lrs, seeds=list(seeds), losses=losses, num_steps=steps_run, length=length or steps_run,
                     batch_size=batch_size)


def _checked(result: RangeTestResult, model: str | Callable[[], nn.Module], splits: Any, seeds: int | None = None,
             **options: Any) -> RangeTestResult:
    """``result`` (combined sweeps) after the population check of ``model`` on ``splits``, on the sweeps' seeds (the
    first ``seeds`` of them; None: all) and at their length (``population_check``'s other options). While the
    check's best run is its lowest LR (the best is below what it tried), it runs again one span lower, at most
    ``CHECK_EXTENSIONS`` times
    (``check.extended``): AdamW on a small transformer survives a sweep up to LRs ~200x above its best
    constant LR (``autolr bench rangetest-lm``), where an image model's best lies inside the first span."""
    def check(loss_min: float, highest: bool = True) -> CheckRuns:
        return population_check(model, splits, loss_min, seeds=result.settings["seeds"][:seeds],
                                length=result.settings["length"], highest=highest, **options)

    runs = check(result.suggestions["loss_min"])
    for _ in range(CHECK_EXTENSIONS):
        if not best_at_lowest(runs):
            break
        runs = extended(check(runs.lrs[0], highest=False), runs)
    return with_check(result, runs)


def sweep_result(lrs: list[float], losses: list[float], stop_reason: str, settings: dict[str, Any]) -> RangeTestResult:
    """Read a sweep's raw per-step losses (one per LR in ``lrs``) into a result, with the current rules.

    ``settings["smooth"]`` is the EMA weight. The recommended LR is the LR of the smoothed
    loss minimum divided by ``LOSS_MIN_DIVISOR`` (4, where fastai divides by 10): of the
    rules, the loss minimum moved least relative to the best constant LR across models,
    datasets and seeds in ``autolr bench rangetest``, and dividing by 4 centres it there.
    The search interval runs from a tenth of the suggestion up to the loss minimum. The
    suggestion's spread over the curve's noise is resampled with ``settings["seed"]`` (default 0).
    """
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < 10:
        raise UserError(f"the loss diverged after {len(finite)} steps; lower start_lr (now {lrs[0]:g})")
    smoothed = ema(finite, settings["smooth"])
    rule_suggestions = suggestions(lrs[: len(finite)], smoothed)
    suggestion = sweep_suggestion(lrs[: len(finite)], smoothed)
    smoothed_losses = smoothed + [math.nan] * (len(losses) - len(finite))
    return RangeTestResult(
        lrs=list(lrs), losses=list(losses), smoothed_losses=smoothed_losses,
        stopped_at=len(losses), stop_reason=stop_reason, suggestions=rule_suggestions,
        suggestion=suggestion, interval=search_interval(suggestion, rule_suggestions["loss_min"]), method="sweep",
        settings=settings,
        suggestion_spread=suggestion_spread(lrs[: len(finite)], finite, settings["smooth"], sweep_suggestion,
                                            seed=settings.get("seed", 0)),
        warnings=curve_warnings(smoothed_losses, stop_reason),
    )


def sweep_suggestion(lrs: Sequence[float], smoothed: Sequence[float]) -> float:
    """The sweep's recommended LR: the LR of the smoothed loss minimum divided by ``LOSS_MIN_DIVISOR``."""
    return loss_min_lr(lrs, smoothed) / LOSS_MIN_DIVISOR


def _user_population_range_test(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Any, loss_fn: LossFn, start_lr: float, end_lr: float,
    num_steps: int, num_lrs: int, amp: bool, batch_size: int, seed: int,
) -> RangeTestResult:
    """``lr_range_test``'s population method: copies of ``model`` on ``data``, an ``(x, y)`` pair of tensors."""
    if not _is_tensor_pair(data):
        raise UserError(f"method='population' needs data as an (x, y) pair of tensors, got {type(data).__name__}")
    return population_range_test(
        lambda: copy.deepcopy(model), tensor_splits(*data), start_lr=start_lr, end_lr=end_lr, num_lrs=num_lrs,
        num_steps=num_steps,
        batch_size=batch_size, optimizer=optimizer_settings_of(optimizer), seed=seed,
        device=next(model.parameters()).device, amp=amp, loss_fn=loss_fn,
    )


def population_range_test(
    model: str | Callable[[], nn.Module],
    splits: Any,
    *,
    start_lr: float = 1e-4,
    end_lr: float = 10.0,
    num_lrs: int = 16,
    num_steps: int = 200,
    batch_size: int = 128,
    optimizer: dict[str, Any] | None = None,
    held_out: int = HELD_OUT_ROWS,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    loss_fn: LossFn = F.cross_entropy,
    grad_clip: float | None = None,
) -> RangeTestResult:
    """Train ``num_lrs`` copies of ``model`` at once, each at one constant LR of a log grid.

    ``model`` is a built-in name or a factory of the user's ``nn.Module`` (trained by
    ``train_module_population`` with ``loss_fn``).

    Every copy starts from the same weights (``seed``) and sees the same ``num_steps``
    batches of ``batch_size`` rows of ``splits.train_x``; the curve is each LR's loss on
    ``held_out`` other training rows afterwards (the validation split stays untouched for
    the search). ``optimizer`` is a spec optimizer dict (default SGD, momentum 0.9). The
    rule ``best`` is the grid's lowest loss, refined by a parabola in log LR through its
    neighbours; it is the suggestion. Diverged copies have loss NaN. ``grad_clip``: each built-in copy's
    gradient norm limit (None: none).
    """
    _check_lr_range(start_lr, end_lr)
    _check_at_least("num_lrs", num_lrs, 3)
    _check_at_least("num_steps", num_steps, 10)
    data, epochs = held_out_split(splits, num_steps, batch_size, held_out, seed)
    lrs = _lr_sweep(start_lr, end_lr, num_lrs, "exp")
    members = constant_lr_runs(model, data, lrs, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                               device=device, amp=amp, loss_fn=loss_fn, grad_clip=grad_clip)
    losses = [member.val_losses[-1] if member.status == "complete" else math.nan for member in members]
    if all(math.isnan(loss) for loss in losses):
        raise UserError(f"every LR from {start_lr:g} to {end_lr:g} diverged; lower start_lr")
    best = refined_minimum(lrs, losses)
    highest_useful_lr = max(lr for lr, loss in zip(lrs, losses) if loss <= min(filter(math.isfinite, losses)) * 1.5)
    steps_run = epochs * steps_between_evaluations(data, batch_size)
    return RangeTestResult(
        lrs=lrs, losses=losses, smoothed_losses=list(losses), stopped_at=steps_run, stop_reason="completed",
        suggestions={"best": best}, suggestion=best, interval=search_interval(best, highest_useful_lr),
        method="population", warnings=curve_warnings(losses, "completed", skip_start=0.0),
        settings={"model": model if isinstance(model, str) else "your model", "start_lr": start_lr, "end_lr": end_lr,
                  "num_lrs": num_lrs,
                  "num_steps": steps_run, "batch_size": batch_size, "optimizer": optimizer,
                  "held_out": len(data.val_y), "seed": seed},
    )


def constant_lr_runs(model: str | Callable[[], nn.Module], data: Any, lrs: Sequence[float], *, epochs: int,
                     batch_size: int, optimizer: dict[str, Any] | None, seed: int,
                     device: str | torch.device | None, amp: bool | None, loss_fn: LossFn,
                     grad_clip: float | None = None) -> list[TrialResult]:
    """One copy of ``model`` per LR of ``lrs``, trained at once at that constant LR on ``data`` for ``epochs``
    (weights and batch order from ``seed``, scored by validation loss after each epoch; a built-in ``model``'s
    gradient norms clipped to ``grad_clip`` unless None)."""
    specs = [ScheduleSpec("constant", lr, optimizer=optimizer) for lr in lrs]
    if isinstance(model, str):
        return train_population(specs, model, data, epochs=epochs, batch_size=batch_size, seeds=[seed] * len(lrs),
                                data_seed=seed, metric="loss", device=device, amp=amp, grad_clip=grad_clip)
    return train_module_population(model, specs, data, epochs, batch_size, seeds=[seed] * len(lrs), loss_fn=loss_fn,
                                   data_seed=seed, metric="loss", device=device, amp=amp)


def _is_tensor_pair(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def tensor_splits(x: torch.Tensor, y: torch.Tensor) -> Splits:
    """``(x, y)`` as the training split of a ``Splits`` (taken as they are, not normalized)."""
    return Splits(name="range-test", train_x=x, train_y=y, val_x=x[:0], val_y=y[:0], test_x=x[:0], test_y=y[:0],
                  num_classes=0, input_shape=tuple(x.shape[1:]), source="tensors", root=None, mean=(0.0,), std=(1.0,))


def builtin_range_test(
    model: str,
    splits: Any,
    *,
    method: str = "auto",
    num_steps: int | None = None,
    batch_size: int = 128,
    optimizer: dict[str, Any] | None = None,
    seed: int = 0,
    seeds: int = CHECK_SEEDS,
    device: str | torch.device | None = None,
    check: bool = True,
    epochs: int | None = None,
    steps: int | None = None,
    grad_clip: float | None = None,
    check_cost: CheckCost = CheckCost(),
) -> RangeTestResult:
    """The range test of built-in ``model`` on ``splits``, by ``method``.

    ``auto`` picks ``population`` on a GPU (K copies cost about one model's time there) and
    ``sweep`` elsewhere (on CPU the population costs K times the steps). ``num_steps``
    defaults to 100 (sweep) or 200 (population); ``optimizer`` is a spec optimizer dict
    (default SGD, momentum 0.9). A sweep runs on ``seeds`` seeds (``run_seeds(seed, seeds)``:
    each its own initial weights and batch order; ``lr_range_test`` combines them), the
    population method on ``seed`` alone. ``check``: a sweep is followed by the population
    check on the same seeds (``rangetest.check``), judged at the training length ``epochs``
    (passes over ``splits.train_x`` in batches of ``batch_size``) or ``steps``; the population
    method needs none. The length is stored in ``settings["length"]`` (steps) either way; an epoch is
    ``train.epoch_steps`` (a text's ``epoch_steps``). ``grad_clip``: the sweep's and the population's gradient
    norm limit, as the job's (None: no clipping), the check's too. ``check_cost``: the check's runs' longest
    training, held-out rows and seeds (``population_check``'s ``max_steps`` and ``held_out``; the first
    ``seeds`` of the sweeps' seeds).
    """
    from autolr.training.models import build_model

    device = torch.device(device) if device is not None else splits.train_x.device
    if method not in ("auto", "sweep", "population"):
        raise UserError(f"method must be auto, sweep or population, got {method!r}")
    _check_at_least("seeds", seeds, 1)
    length = target_steps(epochs, steps, steps_between_evaluations(splits, batch_size))
    if method == "population" or (method == "auto" and device.type == "cuda"):
        result = population_range_test(model, splits, num_steps=num_steps or 200, batch_size=batch_size,
                                       optimizer=optimizer, seed=seed, device=device, grad_clip=grad_clip)
        return replace(result, settings={**result.settings, "length": length})
    x, y = splits.train_x.to(device), splits.train_y.to(device)
    sweeps = []
    for run_seed in run_seeds(seed, seeds):
        network = build_model(model, splits.input_shape, splits.num_classes, run_seed).to(device)
        torch_optimizer = ScheduleSpec("constant", 1.0, optimizer=optimizer).build_optimizer(network.parameters())
        sweeps.append(lr_range_test(network, torch_optimizer, (x, y), torch.nn.functional.cross_entropy,
                                    num_steps=num_steps or 100, batch_size=batch_size, seed=run_seed, seeds=1,
                                    grad_clip=grad_clip))
    result = combine_sweeps(sweeps, length)
    if not check:
        return result
    return _checked(result, model, splits, batch_size=batch_size, optimizer=optimizer, device=device,
                    grad_clip=grad_clip, max_steps=check_cost.max_steps, held_out=check_cost.held_out,
                    seeds=check_cost.seeds)


def held_out_split(splits: Any, num_steps: int, batch_size: int, held_out: int, seed: int,
                   min_epochs: int = 1) -> tuple[Any, int]:
    """The population test's data: about ``num_steps`` batches of training rows, and other rows to score on.

    ``held_out`` rows (at most a fifth of the training split) are drawn by a permutation
    seeded with ``seed``; the rest is trained on, cut so that ``epochs`` passes (at least
    ``min_epochs``, so that a run is scored that often) make about ``num_steps`` steps.
    Returns a copy of ``splits`` (a dataclass, as ``autolr.data.Splits``)
    whose train split is those rows and whose validation split is the held-out rows, and
    that number of epochs. A text (``SampledSplits``) is split by position instead: ``text_held_out_split``.
    """
    if isinstance(splits, SampledSplits):
        return text_held_out_split(splits, num_steps, held_out, seed, min_epochs)
    count = len(splits.train_y)
    held_out = held_out_rows(count, held_out)
    if count - held_out < batch_size or held_out < 1:
        raise UserError(f"the training split has {count} rows, too few for batches of {batch_size} and a held-out set")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).to(splits.train_x.device)
    train_rows, held_rows = order[held_out:], order[:held_out]
    epochs = max(min_epochs, math.ceil(num_steps * batch_size / len(train_rows)))
    train_rows = train_rows[: math.ceil(num_steps / epochs) * batch_size]
    data = replace(splits, train_x=splits.train_x[train_rows], train_y=splits.train_y[train_rows],
                   val_x=splits.train_x[held_rows], val_y=splits.train_y[held_rows])
    return data, epochs


def text_held_out_split(splits: Any, num_steps: int, held_out: int, seed: int, min_epochs: int = 1) -> tuple[Any, int]:
    """``held_out_split`` for a text, whose windows overlap: the training block's last fifth is held out (a
    window drawn there shares no byte with one trained on), ``held_out`` windows drawn from it with ``seed``
    are scored on, and the rest of the block is trained on for ``epochs`` (at least ``min_epochs``) evaluations
    about ``num_steps`` steps apart in all (the copy's ``epoch_steps``)."""
    tokens = splits.train_tokens
    cut = len(tokens) - len(tokens) // 5
    tail_windows = len(tokens) - cut - splits.context
    if tail_windows < 1 or cut <= splits.context:
        raise UserError(f"the training text has {len(tokens)} bytes, too few for windows of {splits.context} "
                        "and a held-out block")
    generator = torch.Generator().manual_seed(seed)
    starts = cut + torch.randint(tail_windows, (min(held_out, tail_windows),), generator=generator).to(tokens.device)
    offsets = torch.arange(splits.context, device=tokens.device)
    epochs = max(min_epochs, 1)
    data = replace(splits, train_tokens=tokens[:cut], val_x=tokens[starts[:, None] + offsets],
                   val_y=tokens[starts[:, None] + offsets + 1], epoch_steps=max(1, math.ceil(num_steps / epochs)))
    return data, epochs


def held_out_rows(count: int, held_out: int) -> int:
    """How many of ``count`` training rows a population test holds out: ``held_out``, at most a fifth of them."""
    return min(held_out, count // 5)


def _check_lr_range(start_lr: float, end_lr: float) -> None:
    if not 0 < start_lr < end_lr:
        raise UserError(f"end_lr must be greater than start_lr > 0, got start_lr={start_lr:g}, end_lr={end_lr:g}")
    if end_lr > MAX_LR:
        raise UserError(f"end_lr must be at most {MAX_LR:g} (an LR above it is a typo, not a schedule), got {end_lr:g}")


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise UserError(f"{name} must be at least {minimum}, got {value}")


def _check_sweep_options(mode: str, smooth: float, diverge_factor: float) -> None:
    if mode not in ("exp", "linear"):
        raise UserError(f"mode must be 'exp' or 'linear', got {mode!r}")
    if not 0 < smooth <= 1:
        raise UserError(f"smooth must be in (0, 1], got {smooth:g}")
    if diverge_factor <= 1:
        raise UserError(f"diverge_factor must be greater than 1, got {diverge_factor:g}")


def _lr_sweep(start_lr: float, end_lr: float, num_steps: int, mode: str) -> list[float]:
    """The LR of each step: geometric (``exp``) or evenly spaced (``linear``), both ends included."""
    fractions = [i / (num_steps - 1) for i in range(num_steps)]
    if mode == "exp":
        return [start_lr * (end_lr / start_lr) ** f for f in fractions]
    return [start_lr + (end_lr - start_lr) * f for f in fractions]


def _batches(data: Any, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless stream of ``(inputs, targets)`` batches from a loader or a tensor pair."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if len(x) == 0 or len(x) != len(y):
            raise UserError(f"data must be non-empty tensors with one target per input, "
                            f"got {len(x)} inputs and {len(y)} targets")
        return _tensor_batches(x, y, batch_size, seed)
    try:
        first = next(iter(data))
    except StopIteration:
        raise UserError("data yields no batches; pass a non-empty DataLoader or (x, y) tensors") from None
    except TypeError:
        raise UserError(f"data must be a DataLoader or an (x, y) pair of tensors, got {type(data).__name__}") from None
    return _loader_batches(data, first)


def _tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    while True:
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            yield x[rows], y[rows]


def _loader_batches(loader: Any, first: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    yield first[0], first[1]
    while True:
        for batch in loader:
            yield batch[0], batch[1]


def _sweep(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
           loss_fn: LossFn, lrs: list[float], smooth: float,
           diverge_factor: float, amp: bool, grad_clip: float | None) -> tuple[list[float], str]:
    """Train one step per LR (the gradients' norm clipped to ``grad_clip`` unless None); return the raw losses and
    why it stopped."""
    device = next(model.parameters()).device
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    model.train()
    set_optimizer_mode(optimizer, training=True)  # a schedule-free optimizer steps only in train mode
    losses: list[float] = []
    average, best = 0.0, math.inf
    for step, lr in enumerate(lrs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = next(batches)
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss = loss_fn(model(inputs), targets)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value):
            return losses, "nonfinite"
        average = (1 - smooth) * average + smooth * value
        smoothed = average / (1 - (1 - smooth) ** (step + 1))
        best = min(best, smoothed)
        if smoothed > diverge_factor * best:
            return losses, "diverged"
    return losses, "completed"


@contextlib.contextmanager
def _restored(model: nn.Module, optimizer: torch.optim.Optimizer, data: Any) -> Iterator[None]:
    """Put model, optimizer, gradients, module modes and RNG states back as they were on exit."""
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    parameters = list(model.parameters())
    grads = [None if p.grad is None else p.grad.detach().clone() for p in parameters]
    modes = [module.training for module in model.modules()]
    loader_generator = getattr(data, "generator", None)  # a DataLoader's own generator, if it has one
    generator = loader_generator if isinstance(loader_generator, torch.Generator) else None
    generator_state = None if generator is None else generator.get_state()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            yield
        finally:
            model.load_state_dict(model_state)
            optimizer.load_state_dict(optimizer_state)
            for parameter, grad in zip(parameters, grads):
                parameter.grad = grad
            for module, training in zip(model.modules(), modes):
                module.training = training
            if generator is not None and generator_state is not None:
                generator.set_state(generator_state)
