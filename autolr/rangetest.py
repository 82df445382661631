"""The LR range test (Smith 2017): train briefly while the LR grows, read off where learning is fastest.

``lr_range_test`` runs on a user's own model, optimizer and data and leaves all of them
exactly as they were (parameters, buffers, gradients, optimizer state and LRs, train/eval
mode, torch RNG). It returns a ``RangeTestResult`` with the curve, the suggestion of each
rule, one recommended LR and an interval for the search.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autolr.errors import UserError
from autolr.rangetest_analysis import ema, geometric_mean, suggestions, zero_lag_smooth

STOP_REASONS = ("completed", "diverged", "nonfinite")
RECOMMENDED_RULES = ("valley", "min_loss")  # the suggestion is their geometric mean
INTERVAL_BELOW = 10.0  # the search interval starts this factor below the suggestion
INTERVAL_ABOVE = 10.0  # ... and ends at most this factor above it


@dataclass
class RangeTestResult:
    """A range test's curve and what it recommends.

    ``lrs[i]`` is the LR of step ``i`` (sweep) or of grid member ``i`` (population);
    ``losses`` the raw training loss there, ``smoothed_losses`` the curve the rules read.
    ``stopped_at`` is the number of steps run and ``stop_reason`` one of
    ``completed | diverged | nonfinite``. ``suggestions`` maps rule -> LR, ``suggestion``
    is the recommended LR and ``interval`` the (low, high) LR range for the search.
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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RangeTestResult":
        """Rebuild a result stored with ``to_dict``."""
        def floats(values: list[float | None]) -> list[float]:
            return [math.nan if v is None else float(v) for v in values]

        return cls(
            lrs=[float(v) for v in data["lrs"]], losses=floats(data["losses"]),
            smoothed_losses=floats(data["smoothed_losses"]), stopped_at=int(data["stopped_at"]),
            stop_reason=data["stop_reason"], suggestions=dict(data["suggestions"]),
            suggestion=float(data["suggestion"]), interval=(float(data["interval"][0]), float(data["interval"][1])),
            method=data.get("method", "sweep"), settings=dict(data.get("settings", {})),
        )

    def plot(self, path: str | Path) -> Path:
        """Write the curve with the suggestion and interval marked as a PNG at ``path``."""
        from autolr.rangetest_plot import write_png

        return write_png(self, Path(path))

    def plot_html(self, include_plotlyjs: bool | str = False) -> str:
        """The curve as an HTML fragment (Plotly); by default without plotly.js, which the page embeds once."""
        from autolr.rangetest_plot import html_fragment

        return html_fragment(self, include_plotlyjs)


def recommend(rule_suggestions: dict[str, float], highest_useful_lr: float) -> tuple[float, tuple[float, float]]:
    """The recommended LR and search interval from the rules' suggestions.

    The suggestion is the geometric mean of ``RECOMMENDED_RULES``; the interval runs from
    ``suggestion / INTERVAL_BELOW`` to ``suggestion * INTERVAL_ABOVE``, but not past
    ``highest_useful_lr`` (where the loss stopped falling) unless that is closer than 3x.
    """
    suggestion = geometric_mean([rule_suggestions[rule] for rule in RECOMMENDED_RULES])
    high = min(suggestion * INTERVAL_ABOVE, max(highest_useful_lr, 3 * suggestion))
    return suggestion, (suggestion / INTERVAL_BELOW, high)


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smooth: float = 0.05,
    diverge_factor: float = 4.0,
    amp: bool = False,
    batch_size: int = 128,
    seed: int = 0,
) -> RangeTestResult:
    """Sweep the LR from ``start_lr`` to ``end_lr`` over ``num_steps`` training steps.

    ``data`` is a DataLoader (or any re-iterable of ``(inputs, targets)`` batches, cycled
    when exhausted) or a pair of tensors ``(x, y)`` drawn in shuffled batches of
    ``batch_size`` rows using ``seed``. ``mode`` is ``exp`` (geometric steps) or
    ``linear``. ``smooth`` is the EMA weight of the newest loss; the test stops early once
    the smoothed loss exceeds ``diverge_factor`` times its minimum or a loss is not finite.
    Every param group gets the same LR during the test. ``amp`` runs the forward pass in
    float16 on CUDA (with a gradient scaler) or bfloat16 on CPU. Model, optimizer and torch
    RNG are restored afterwards.
    """
    _check_arguments(start_lr, end_lr, num_steps, mode, smooth, diverge_factor)
    lrs = _lr_sweep(start_lr, end_lr, num_steps, mode)
    with _restored(model, optimizer, data):
        batches = _batches(data, batch_size, seed)
        losses, stop_reason = _sweep(model, optimizer, batches, loss_fn, lrs, smooth, diverge_factor, amp)
    lrs = lrs[: len(losses)]
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < 10:
        raise UserError(f"the loss diverged after {len(finite)} steps; lower start_lr (now {start_lr:g})")
    smoothed = zero_lag_smooth(finite, smooth)
    rule_suggestions = suggestions(lrs[: len(finite)], smoothed)
    highest_useful_lr = lrs[min(range(len(smoothed)), key=smoothed.__getitem__)]
    suggestion, interval = recommend(rule_suggestions, highest_useful_lr)
    return RangeTestResult(
        lrs=lrs, losses=losses, smoothed_losses=smoothed + [math.nan] * (len(losses) - len(finite)),
        stopped_at=len(losses), stop_reason=stop_reason, suggestions=rule_suggestions,
        suggestion=suggestion, interval=interval, method="sweep",
        settings={"start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps, "mode": mode,
                  "smooth": smooth, "diverge_factor": diverge_factor, "amp": amp, "seed": seed},
    )


def _check_arguments(start_lr: float, end_lr: float, num_steps: int, mode: str, smooth: float,
                     diverge_factor: float) -> None:
    if not 0 < start_lr < end_lr:
        raise UserError(f"end_lr must be greater than start_lr > 0, got start_lr={start_lr:g}, end_lr={end_lr:g}")
    if num_steps < 10:
        raise UserError(f"num_steps must be at least 10, got {num_steps}")
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
            raise UserError(f"data must be non-empty tensors with one target per input, got {len(x)} inputs and {len(y)} targets")
        return _tensor_batches(x, y, batch_size, seed)
    try:
        first = next(iter(data))
    except StopIteration:
        raise UserError("data yields no batches; pass a non-empty DataLoader or (x, y) tensors") from None
    except TypeError:
        raise UserError(f"data must be a DataLoader or an (x, y) pair of tensors, got {type(data).__name__}") from None
    return _loader_batches(data, first)


def _tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
           loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], lrs: list[float], smooth: float,
           diverge_factor: float, amp: bool) -> tuple[list[float], str]:
    """Train one step per LR; return the raw losses and why it stopped."""
    device = next(model.parameters()).device
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    model.train()
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
    loader_generator = getattr(data, "generator", None)
    generator_state = loader_generator.get_state() if isinstance(loader_generator, torch.Generator) else None
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
            if generator_state is not None:
                loader_generator.set_state(generator_state)
