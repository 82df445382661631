"""One trial: train one model under one ScheduleSpec on device-resident data, epoch by epoch.

The pieces a population shares with a single trial (the result record, optimizer
settings, the seeded batch order, evaluation, the divergence rule) live here too, so
both trainers run the same data through the same rules.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from autolr.errors import UserError
from autolr.schedule.spec import ScheduleSpec
from autolr.training.models import ModelChoice, build_model

METRICS = ("accuracy", "loss")  # validation score: accuracy (fraction, higher is better) or mean loss
# A run has diverged when a training epoch's mean loss is not finite or exceeds this many
# times the loss of its first batch (for 10 classes that start near ln 10 = 2.3: above 11.5).
DIVERGENCE_FACTOR = 5.0
EVAL_ROWS = 1 << 16  # validation targets x members per evaluation chunk (bounds memory)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, targets) -> mean loss of the batch


class Splits(Protocol):
    """What the trainers read from a dataset, read-only (the frozen dataclass ``autolr.data.Splits`` has it).

    ``test_x`` and ``test_y`` are read only when a trainer is asked to score the test split.
    """

    @property
    def train_x(self) -> torch.Tensor: ...
    @property
    def train_y(self) -> torch.Tensor: ...
    @property
    def val_x(self) -> torch.Tensor: ...
    @property
    def val_y(self) -> torch.Tensor: ...
    @property
    def test_x(self) -> torch.Tensor: ...
    @property
    def test_y(self) -> torch.Tensor: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def input_shape(self) -> tuple[int, ...]: ...


@runtime_checkable
class SampledSplits(Protocol):
    """Splits whose training rows are drawn, not visited in turn (``autolr.data.TextSplits``).

    An epoch is ``epoch_steps`` batches of rows drawn with replacement (a language
    model's windows), so a run's length is counted in optimizer steps.
    """

    @property
    def epoch_steps(self) -> int: ...


@dataclass
class TrialResult:
    """How one trial ended and its validation curve (one entry per epoch run).

    ``status`` is "complete", "pruned" or "diverged"; ``final_score`` is the last
    validation score (None when the trial diverged); ``reason`` says why a trial
    stopped early; ``duration_s`` is wall-clock seconds (a population member gets
    its population's time up to when it stopped); ``test_score`` the score on the test
    split after the last epoch, when asked for (``score_test``) and the run completed.
    """

    status: str
    val_scores: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    final_score: float | None = None
    epochs_run: int = 0
    duration_s: float = 0.0
    reason: str | None = None
    test_score: float | None = None


MOMENTUM_OPTIMIZERS = ("sgd", "schedulefree_sgd")  # first moment: ``momentum`` (the others: ``betas[0]``)


@dataclass(frozen=True)
class OptimizerSettings:
    """Every setting of a spec's optimizer (any a spec may name; the stacked trainer's), defaults filled in.

    A spec without ``optimizer`` means SGD with momentum 0.9. Fields a kind lacks keep
    these neutral values (SGD has no betas; Adam has no momentum or Nesterov; only Prodigy
    has ``d_coef``, ``safeguard_warmup`` and ``use_bias_correction``, and its ``eps`` is the
    package's 1e-8).
    """

    name: str
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    d_coef: float = 1.0
    safeguard_warmup: bool = False
    use_bias_correction: bool = False

    @property
    def first_moment(self) -> float:
        """The momentum of an SGD kind, else beta1: what a cycled momentum schedule sets."""
        return self.momentum if self.name in MOMENTUM_OPTIMIZERS else self.betas[0]

    @classmethod
    def from_spec(cls, spec: ScheduleSpec) -> "OptimizerSettings":
        """The settings of ``spec.optimizer`` (validated by the spec)."""
        settings = spec.optimizer_settings()
        if "betas" in settings:
            settings["betas"] = tuple(settings["betas"])
        return cls(**settings)


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Batches per epoch; the last one may be smaller."""
    return math.ceil(num_train / batch_size)


def epoch_steps(splits: Splits, batch_size: int) -> int:
    """Optimizer steps per epoch: ``splits.epoch_steps`` for sampled splits, else one pass over the training rows."""
    if isinstance(splits, SampledSplits):
        return splits.epoch_steps
    return steps_per_epoch(splits.train_x.shape[0], batch_size)


def training_epochs(
    splits: Splits, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, data_seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each epoch's training rows of ``x, y`` (``splits``' rows on the training device), in order.

    Sampled splits: ``epoch_steps * batch_size`` rows drawn with replacement; others: a
    seeded permutation of every row (``shuffled_epochs``). Both draw from a CPU generator
    seeded with ``data_seed``.
    """
    if isinstance(splits, SampledSplits):
        return sampled_epochs(x, y, epochs, splits.epoch_steps * batch_size, data_seed)
    return shuffled_epochs(x, y, epochs, data_seed)


def sampled_epochs(
    x: torch.Tensor, y: torch.Tensor, epochs: int, rows: int, data_seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``rows`` rows of ``x, y`` drawn with replacement per epoch, from a CPU generator seeded with ``data_seed``."""
    generator = torch.Generator().manual_seed(data_seed)
    for _ in range(epochs):
        index = torch.randint(x.shape[0], (rows,), generator=generator).to(x.device)
        yield x.index_select(0, index), y.index_select(0, index)


def shuffled_epochs(
    x: torch.Tensor, y: torch.Tensor, epochs: int, data_seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training set reordered by a fresh seeded permutation for each epoch.

    The permutations come from a CPU generator seeded with ``data_seed``, so the order is
    the same on every device and for every trainer given the same ``data_seed``.
    """
    generator = torch.Generator().manual_seed(data_seed)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        yield x.index_select(0, order), y.index_select(0, order)


def check_run(epochs: int, batch_size: int, metric: str) -> None:
    """Raise UserError for a non-positive epoch count or batch size or an unknown metric."""
    if epochs < 1:
        raise UserError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    if metric not in METRICS:
        raise UserError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def check_targets(metric: str, splits: Splits) -> None:
    """Raise UserError when ``metric`` is accuracy but the targets are not class indices."""
    if metric == "accuracy" and splits.train_y.is_floating_point():
        raise UserError("metric 'accuracy' needs class-index targets; pass metric='loss' for float targets")


def training_device(device: str | torch.device | None, splits: Splits) -> torch.device:
    """The given device, or the device the training data is on."""
    return torch.device(device) if device is not None else splits.train_x.device


def autocast(device: torch.device, amp: bool | None) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp`` is True or None (auto); no autocast elsewhere."""
    if device.type == "cuda" and amp is not False:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def member_losses(outputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn = F.cross_entropy) -> torch.Tensor:
    """The mean loss of each member: ``outputs`` is ``members x batch x ...``, the targets are shared.

    Cross-entropy runs as one flat call over every member's rows (classes in dimension 1 of
    a row's outputs, as torch's: ``batch x classes`` or ``batch x classes x positions`` with
    targets ``batch x positions``); any other ``loss_fn`` (a batch's mean loss, as
    ``F.mse_loss``) is vmapped over the members.
    """
    outputs = outputs.float()
    if loss_fn is F.cross_entropy:
        members = outputs.shape[0]
        every_target = targets.expand(members, *targets.shape).flatten(0, 1)
        losses = F.cross_entropy(outputs.flatten(0, 1), every_target, reduction="none")
        return losses.view(members, -1).mean(1)
    return torch.func.vmap(loss_fn, in_dims=(0, None))(outputs, targets)


@torch.no_grad()
def evaluate(
    outputs_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, members: int | None = None,
    loss_fn: LossFn = F.cross_entropy,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss (``loss_fn``) and accuracy (fraction) on ``x, y``, one value per member.

    ``outputs_of`` maps a chunk of inputs to one model's outputs (``chunk x classes``;
    ``members`` None) or to ``members x chunk x classes`` (a sequence model's rows:
    ``classes x positions``, targets ``positions``). Accuracy compares the argmax with
    ``y`` (NaN when ``y`` holds no class indices; a sequence's: the fraction of positions).
    Returns two float64 tensors of length ``members`` (1 for one model) on the data's device.
    """
    stacked = members is not None
    members = members or 1
    loss_sum = torch.zeros(members, dtype=torch.float64, device=x.device)
    correct = torch.zeros(members, dtype=torch.float64, device=x.device)
    chunk = max(1, EVAL_ROWS // (members * y[0].numel()))
    classes = not y.is_floating_point()
    for start in range(0, x.shape[0], chunk):
        outputs = outputs_of(x[start:start + chunk])
        outputs = outputs if stacked else outputs.unsqueeze(0)
        labels = y[start:start + chunk]
        loss_sum += member_losses(outputs, labels, loss_fn).double() * labels.shape[0]
        if classes:
            correct += (outputs.argmax(2) == labels).flatten(1).sum(1, dtype=torch.float64)
    accuracy = correct / y.numel() if classes else torch.full_like(correct, math.nan)
    return loss_sum / x.shape[0], accuracy


def score_of(metric: str, loss: float, accuracy: float) -> float:
    """The validation score the search sees for ``metric``."""
    return accuracy if metric == "accuracy" else loss


def complete_score(result: TrialResult) -> float:
    """The final validation score of a complete run; NaN for a diverged or pruned one."""
    if result.status == "complete" and result.final_score is not None:
        return result.final_score
    return math.nan


def divergence_reason(epoch_loss: float, first_loss: float, val_loss: float) -> str | None:
    """Why a run counts as diverged after an epoch (see DIVERGENCE_FACTOR), or None."""
    if not math.isfinite(epoch_loss) or not math.isfinite(val_loss):
        return "loss became NaN or infinite"
    if epoch_loss > DIVERGENCE_FACTOR * first_loss:
        return (
            f"mean training loss {epoch_loss:.3g} exceeded {DIVERGENCE_FACTOR:g}x "
            f"the first batch's loss {first_loss:.3g}"
        )
    return None


def set_optimizer_mode(optimizer: torch.optim.Optimizer, training: bool) -> None:
    """Put an optimizer that has ``train()``/``eval()`` methods in training or evaluation mode.

    Schedule-free optimizers (the schedulefree package) take their gradient steps at an
    interpolation y of two sequences, but the weights to evaluate are the average x:
    ``eval()`` writes x into the parameters and ``train()`` writes y back. They refuse to
    step in eval mode, and a model scored in train mode is scored at y, not at what it
    learned. Optimizers without these methods (torch's, Prodigy) have one set of weights.
    """
    switch = getattr(optimizer, "train" if training else "eval", None)
    if callable(switch):
        switch()


def train_trial(
    spec: ScheduleSpec,
    model: ModelChoice | nn.Module,
    splits: Splits,
    epochs: int,
    batch_size: int,
    seed: int,
    metric: str = "accuracy",
    on_epoch: Callable[[int, float], bool] | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    data_seed: int | None = None,
    loss_fn: LossFn = F.cross_entropy,
    score_test: bool = False,
    grad_clip: float | None = None,
) -> TrialResult:
    """Train one model under ``spec`` and return its per-epoch validation curve.

    ``model`` is a built-in name ("mlp", "cnn"; initialised from ``seed``) or a module
    (used as given). The data stays on ``device`` (default: the splits' device); each
    epoch visits the training set in an order drawn from ``data_seed`` (default ``seed``).
    The scheduler built by ``spec.build`` is stepped after every batch (``total_steps =
    epochs * steps_per_epoch``), except a schedule stepped on a metric (``spec.on_metric``),
    stepped once per epoch on the validation loss (``total_steps = epochs``; its patience
    counts epochs).
    ``on_epoch(epoch, score)`` is called after each epoch (epochs count from 0) and returns True to
    stop the trial (status "pruned").
    ``amp``: bf16 autocast, on CUDA only; None means on where available. ``loss_fn(outputs,
    targets)`` is the batch's mean loss, for training and the validation loss. A schedule-free
    optimizer is switched to training before each epoch's steps and to evaluation before
    each evaluation (``set_optimizer_mode``), so a given module ends with its evaluation weights.
    ``score_test``: a complete run is also scored on ``splits.test_x/test_y`` (``test_score``).
    ``grad_clip``: before each step the gradients' total norm is clipped to it
    (``torch.nn.utils.clip_grad_norm_``); None: not clipped.
    """
    check_run(epochs, batch_size, metric)
    check_targets(metric, splits)
    started = time.perf_counter()
    device = training_device(device, splits)
    if not isinstance(model, nn.Module):
        model = build_model(model, splits.input_shape, splits.num_classes, seed)
    model = model.to(device)
    train_x, train_y = splits.train_x.to(device), splits.train_y.to(device)
    val_x, val_y = splits.val_x.to(device), splits.val_y.to(device)
    total_steps = epochs * epoch_steps(splits, batch_size)
    optimizer = spec.build_optimizer(model.parameters())
    per_epoch_scheduler = spec.on_metric
    scheduler = spec.build(optimizer, epochs if per_epoch_scheduler else total_steps)
    result = TrialResult(status="complete")
    first_loss: torch.Tensor | None = None
    epoch_data = training_epochs(splits, train_x, train_y, epochs, batch_size, seed if data_seed is None else data_seed)
    for epoch, (epoch_x, epoch_y) in enumerate(epoch_data):
        model.train()
        set_optimizer_mode(optimizer, training=True)
        loss_sum = torch.zeros((), device=device)
        for start in range(0, epoch_x.shape[0], batch_size):
            with autocast(device, amp):
                loss = loss_fn(model(epoch_x[start:start + batch_size]), epoch_y[start:start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if not per_epoch_scheduler:
                scheduler.step()
            loss_sum += loss.detach().float()
            if first_loss is None:
                first_loss = loss.detach().float()
        model.eval()
        set_optimizer_mode(optimizer, training=False)  # and so the model is returned with its evaluation weights
        with autocast(device, amp):
            val_loss, val_accuracy = (float(v) for v in evaluate(model, val_x, val_y, loss_fn=loss_fn))
        result.epochs_run = epoch + 1
        epoch_loss = float(loss_sum) / epoch_steps(splits, batch_size)
        assert first_loss is not None, "an epoch ran no batch"  # unreachable: an empty split divides by 0 above
        reason = divergence_reason(epoch_loss, float(first_loss), val_loss)
        if reason is not None:
            result.status, result.reason, result.final_score = "diverged", reason, None
            break
        if per_epoch_scheduler:
            scheduler.step(val_loss)
        score = score_of(metric, val_loss, val_accuracy)
        result.val_scores.append(score)
        result.val_losses.append(val_loss)
        result.final_score = score
        if on_epoch is not None and on_epoch(epoch, score) and epoch + 1 < epochs:
            result.status, result.reason = "pruned", f"stopped by the pruner after epoch {epoch}"
            break
    if score_test and result.status == "complete":
        with autocast(device, amp):
            test_loss, test_accuracy = (float(v) for v in evaluate(
                model, splits.test_x.to(device), splits.test_y.to(device), loss_fn=loss_fn))
        result.test_score = score_of(metric, test_loss, test_accuracy)
    result.duration_s = time.perf_counter() - started
    return result
