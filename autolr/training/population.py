"""K trials at once: one stacked model, one forward/backward per batch, per-member LR and optimizer state.

Every member sees the same batches in the same order (drawn from ``data_seed``), so a
member trains exactly as ``train_trial`` would with the same seed, spec and data seed.
Each member's LR for every step is precomputed from ``spec.lr_at`` as one
``total_steps x K`` table on the device, and its momentum (SGD) or beta1 (Adam) from
``spec.momentum_at`` where the family cycles it; members whose schedule is stepped on a
metric (``spec.on_metric``) instead follow the scheduler ``spec.build`` makes, stepped on
their own validation loss once per epoch, as ``train_trial`` does. The optimizer update
(SGD with momentum/Nesterov, Adam, AdamW; schedule-free SGD and AdamW,
``autolr.training.stacked_schedule_free``; Prodigy, ``autolr.training.stacked_prodigy``) is
written on the stacked tensors, one set of per-member hyper-parameters per member.
Members that stop (pruned, diverged) are dropped from the stacked tensors at the end of
the epoch and cost nothing after. ``train_stacked`` is this loop for any ``StackedModel``:
the built-in models here, a user's own module in ``autolr.training.module_population``. Members of
other optimizer kinds form their own stacked population (``autolr.training.population_groups``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F

from autolr.errors import UserError
from autolr.schedule.spec import ScheduleSpec
from autolr.training.models import ModelChoice, build_population
from autolr.training.population_groups import stacked_kind, train_in_groups
from autolr.training.stacked import StackedModel
from autolr.training.stacked_prodigy import StackedProdigy
from autolr.training.stacked_schedule_free import StackedScheduleFreeAdamW, StackedScheduleFreeSGD
from autolr.training.stacked_update import PackageUpdate
from autolr.training.train import (
    LossFn,
    OptimizerSettings,
    Splits,
    TrialResult,
    autocast,
    check_run,
    check_targets,
    divergence_reason,
    epoch_steps,
    evaluate,
    member_losses,
    score_of,
    training_device,
    training_epochs,
)

# The package optimizers written on stacked tensors, by spec name (torch's three are StackedOptimizer's own).
PACKAGE_UPDATES: dict[str, Callable[[Sequence[OptimizerSettings], torch.device], PackageUpdate]] = {
    "schedulefree_sgd": StackedScheduleFreeSGD,
    "schedulefree_adamw": StackedScheduleFreeAdamW,
    "prodigy": StackedProdigy,
}


def train_population(
    specs: Sequence[ScheduleSpec],
    model: ModelChoice,
    splits: Splits,
    epochs: int,
    batch_size: int,
    seeds: Sequence[int],
    data_seed: int = 0,
    metric: str = "accuracy",
    on_epoch: Callable[[int, int, float], bool] | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    score_test: bool = False,
    grad_clip: float | None = None,
) -> list[TrialResult]:
    """Train one member per (spec, seed) pair; return one TrialResult per member, in input order.

    Member k is initialised as ``build_model(model, ..., seeds[k])`` and trained under
    ``specs[k]``; all members see the batches drawn from ``data_seed``. After each epoch
    (counted from 0) ``on_epoch(k, epoch, score)`` is called for every member still
    running and returns True to stop member k (status "pruned"). ``device`` and ``amp``
    as in ``train_trial``: the splits' device by default, bf16 autocast on CUDA.
    ``score_test``: each member that completes is also scored on the test split (``test_score``).
    ``grad_clip``: each member's gradient norm is clipped to it before every step, as
    ``train_trial`` clips a single run's (None: not clipped).

    Members train at once, one stacked population per optimizer kind (name, and for SGD
    the Nesterov setting; see ``autolr.training.population_groups``), one after another;
    schedule-free and Prodigy members too, their packages' updates written on stacked
    tensors.
    """
    check_members(specs, seeds)
    grouped = train_in_groups(
        specs, on_epoch,
        lambda members, callback: train_population(
            [specs[m] for m in members], model, splits, epochs, batch_size, [seeds[m] for m in members], data_seed,
            metric, callback, device, amp, score_test, grad_clip),
    )
    if grouped is not None:
        return grouped
    population = build_population(model, splits.input_shape, splits.num_classes, seeds)
    return train_stacked(population, specs, splits, epochs, batch_size, data_seed, metric, on_epoch, device, amp,
                         score_test=score_test, grad_clip=grad_clip)


def check_members(specs: Sequence[ScheduleSpec], seeds: Sequence[int]) -> None:
    """Raise UserError unless there is one seed per spec and at least one of each."""
    if len(specs) != len(seeds) or not specs:
        raise UserError(f"a population needs one seed per spec, got {len(specs)} specs and {len(seeds)} seeds")


def train_stacked(
    population: StackedModel,
    specs: Sequence[ScheduleSpec],
    splits: Splits,
    epochs: int,
    batch_size: int,
    data_seed: int = 0,
    metric: str = "accuracy",
    on_epoch: Callable[[int, int, float], bool] | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    loss_fn: LossFn = F.cross_entropy,
    score_test: bool = False,
    grad_clip: float | None = None,
) -> list[TrialResult]:
    """Train the members of ``population`` at once, member k under ``specs[k]``; as ``train_population``.

    ``loss_fn(outputs, targets)`` is one member's mean loss of a batch (training and the
    validation loss).
    """
    check_run(epochs, batch_size, metric)
    check_targets(metric, splits)
    started = time.perf_counter()
    device = training_device(device, splits)
    train_x, train_y = splits.train_x.to(device), splits.train_y.to(device)
    val_x, val_y = splits.val_x.to(device), splits.val_y.to(device)
    steps = epoch_steps(splits, batch_size)
    total_steps = epochs * steps
    population = population.to(device)
    optimizer = StackedOptimizer(specs, total_steps, epochs, device, grad_clip)
    results = [TrialResult(status="complete") for _ in specs]
    active = list(range(len(specs)))  # original member index of each stacked row
    first_loss: torch.Tensor | None = None
    step = 0
    for epoch, (epoch_x, epoch_y) in enumerate(training_epochs(splits, train_x, train_y, epochs, batch_size,
                                                               data_seed)):
        loss_sum = torch.zeros(len(active), device=device)
        population.train()
        optimizer.train(population.params)
        for start in range(0, epoch_x.shape[0], batch_size):
            batch = epoch_x[start:start + batch_size], epoch_y[start:start + batch_size]
            losses = _train_step(population, optimizer, batch, step, autocast(device, amp), loss_fn)
            loss_sum += losses
            if first_loss is None:
                first_loss = losses.detach()
            step += 1
        population.eval()
        optimizer.eval(population.params)  # schedule-free members are scored at their evaluation weights
        with autocast(device, amp):
            val_losses, val_accuracies = evaluate(population, val_x, val_y, members=len(active), loss_fn=loss_fn)
        assert first_loss is not None, "an epoch ran no batch"  # splits hold at least one training row
        stopped = _end_epoch(
            epoch, epochs, active, results, metric, on_epoch,
            epoch_losses=(loss_sum / steps).tolist(), first_losses=first_loss.tolist(),
            val_losses=val_losses.tolist(), val_accuracies=val_accuracies.tolist(),
        )
        optimizer.end_epoch([row for row in range(len(active)) if row not in stopped], val_losses.tolist(), step)
        elapsed = time.perf_counter() - started
        for row in stopped:
            results[active[row]].duration_s = elapsed
        if stopped:
            keep = [row for row in range(len(active)) if row not in stopped]
            if not keep:
                active = []
                break
            rows = torch.tensor(keep, device=device)
            population.keep(rows)
            optimizer.keep(rows)
            first_loss = first_loss.index_select(0, rows)
            active = [active[row] for row in keep]
    if score_test and active:
        with autocast(device, amp):
            test_losses, test_accuracies = evaluate(population, splits.test_x.to(device), splits.test_y.to(device),
                                                    members=len(active), loss_fn=loss_fn)
        for row, member in enumerate(active):
            results[member].test_score = score_of(metric, float(test_losses[row]), float(test_accuracies[row]))
    elapsed = time.perf_counter() - started
    for member in active:
        results[member].duration_s = elapsed
    return results


def _train_step(
    population: StackedModel,
    optimizer: "StackedOptimizer",
    batch: tuple[torch.Tensor, torch.Tensor],
    step: int,
    precision: contextlib.AbstractContextManager,
    loss_fn: LossFn = F.cross_entropy,
) -> torch.Tensor:
    """One forward/backward of every member on ``batch`` and the update of step ``step``; the K losses."""
    x, y = batch
    with precision:
        outputs = population(x)
    losses = member_losses(outputs, y, loss_fn)
    population.zero_grad(set_to_none=True)
    losses.sum().backward()
    optimizer.step(population.params, step)
    return losses.detach()


@torch.no_grad()
def clip_members(stacked_params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Clip each member's gradient to total norm ``max_norm``, as ``torch.nn.utils.clip_grad_norm_`` clips
    one model's: every gradient of member k times ``min(1, max_norm / (norm_k + 1e-6))``, where norm_k is
    the 2-norm of all of member k's gradients (row k of each stacked ``.grad``)."""
    grads = [param.grad for param in stacked_params if param.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(grad.flatten(1), dim=1) for grad in grads])  # params x K
    factor = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)
    for grad in grads:
        grad.mul_(factor.view((-1,) + (1,) * (grad.dim() - 1)).to(grad.dtype))


def _end_epoch(
    epoch: int,
    epochs: int,
    active: list[int],
    results: list[TrialResult],
    metric: str,
    on_epoch: Callable[[int, int, float], bool] | None,
    epoch_losses: list[float],
    first_losses: list[float],
    val_losses: list[float],
    val_accuracies: list[float],
) -> set[int]:
    """Record one epoch for every active member; return the stacked rows that stop now."""
    stopped: set[int] = set()
    for row, member in enumerate(active):
        result = results[member]
        result.epochs_run = epoch + 1
        reason = divergence_reason(epoch_losses[row], first_losses[row], val_losses[row])
        if reason is not None:
            result.status, result.reason, result.final_score = "diverged", reason, None
            stopped.add(row)
            continue
        score = score_of(metric, val_losses[row], val_accuracies[row])
        result.val_scores.append(score)
        result.val_losses.append(val_losses[row])
        result.final_score = score
        if on_epoch is not None and on_epoch(member, epoch, score) and epoch + 1 < epochs:
            result.status, result.reason = "pruned", f"stopped by the pruner after epoch {epoch}"
            stopped.add(row)
    return stopped


class _MetricMember:
    """The LR of a member stepped on its metric once per epoch (``spec.on_metric``): the scheduler
    ``spec.build`` makes, on a one-parameter optimizer."""

    def __init__(self, row: int, spec: ScheduleSpec, epochs: int) -> None:
        self.row = row
        self.optimizer = spec.build_optimizer([torch.nn.Parameter(torch.zeros(1))])
        self.scheduler = spec.build(self.optimizer, epochs)

    @property
    def lr(self) -> float:
        """The LR of the coming epoch."""
        return self.optimizer.param_groups[0]["lr"]


class StackedOptimizer:
    """The optimizer state of K members as stacked tensors, updated in one batched step.

    Per-member hyper-parameters (LR per step, momentum or beta1 per step, weight decay,
    beta2, eps) are tensors with one entry per member; ``keep`` drops stopped members.
    ``grad_clip``: every step first clips each member's gradient norm to it (``clip_members``).
    The schedule-free and Prodigy updates are their ``PackageUpdate`` (``PACKAGE_UPDATES``);
    ``train()`` and ``eval()`` switch a schedule-free population's weights (a no-op for the others).
    """

    def __init__(self, specs: Sequence[ScheduleSpec], total_steps: int, epochs: int, device: torch.device,
                 grad_clip: float | None = None) -> None:
        stacked = {stacked_kind(spec) for spec in specs}
        if len(stacked) > 1:
            raise UserError(f"one stacked population trains one optimizer kind, got {sorted(stacked)}")
        (self.name, self.nesterov), = stacked
        settings = [OptimizerSettings.from_spec(spec) for spec in specs]
        self.package = PACKAGE_UPDATES[self.name](settings, device) if self.name in PACKAGE_UPDATES else None
        first_moment = torch.tensor([s.first_moment for s in settings])
        lr_table, momentum_table = _schedule_tables(specs, first_moment, total_steps)
        self.on_metric: list[_MetricMember] = []
        for row, spec in enumerate(specs):
            if spec.on_metric:
                member = _MetricMember(row, spec, epochs)
                self.on_metric.append(member)
                lr_table[:, row] = member.lr
        as_tensor = lambda values: torch.tensor(values, dtype=torch.float32, device=device)  # noqa: E731
        self.lr_table = lr_table.to(device)  # total_steps x K
        self.momentum_table = momentum_table.to(device)  # total_steps x K
        self.weight_decay = as_tensor([s.weight_decay for s in settings])
        self.decays = bool(self.weight_decay.any())  # any member with weight decay (checked once, no sync per step)
        self.beta2 = as_tensor([s.betas[1] for s in settings])
        self.eps = as_tensor([s.eps for s in settings])
        self.state: list[list[torch.Tensor]] | None = None  # per parameter: [momentum] or [exp_avg, exp_avg_sq]
        self.grad_clip = grad_clip

    def step(self, stacked_params: Iterable[torch.Tensor], step: int) -> None:
        """Apply the update of scheduler step ``step`` (counted from 0) to the stacked parameters
        (gradients in ``.grad``).

        Written as few passes over the stacked tensors as torch allows (each pass over K
        members' parameters costs memory bandwidth, which bounds a CPU); ``param.grad`` is
        used as scratch space, as the next backward writes it afresh.
        """
        params = list(stacked_params)
        if self.grad_clip is not None:
            clip_members(params, self.grad_clip)
        if self.package is not None:
            self.package.step(params, self.lr_table[step], self.momentum_table[step], step + 1)
            return
        if self.state is None:
            slots = 1 if self.name == "sgd" else 2
            self.state = [[torch.zeros_like(p) for _ in range(slots)] for p in params]
        lr, momentum = self.lr_table[step], self.momentum_table[step]
        with torch.no_grad():
            negative_lr = lr.neg()
            for param, state in zip(params, self.state):
                grad = param.grad
                assert grad is not None, "step() runs after backward(), which gives each stacked parameter a grad"
                shape = (-1,) + (1,) * (param.dim() - 1)
                if self.name == "sgd":
                    self._sgd(param, grad, state[0], negative_lr.view(shape), momentum.view(shape), shape)
                else:
                    self._adam(param, grad, state, step + 1, lr.view(shape), momentum.view(shape), shape)

    def _sgd(
        self, param: torch.Tensor, grad: torch.Tensor, buffer: torch.Tensor, negative_lr: torch.Tensor,
        momentum: torch.Tensor, shape: tuple[int, ...],
    ) -> None:
        """torch.optim.SGD (dampening 0): buf = m * buf + g; step along buf, or g + m * buf (Nesterov)."""
        if self.decays:
            grad.addcmul_(param, self.weight_decay.view(shape))
        torch.addcmul(grad, buffer, momentum, out=buffer)
        direction = grad.addcmul_(buffer, momentum) if self.nesterov else buffer
        param.addcmul_(direction, negative_lr)

    def _adam(
        self, param: torch.Tensor, grad: torch.Tensor, state: list[torch.Tensor], count: int, lr: torch.Tensor,
        beta1: torch.Tensor, shape: tuple[int, ...],
    ) -> None:
        """torch.optim.Adam / AdamW (no amsgrad) after ``count`` steps.

        torch's ``m / (sqrt(v) / sqrt(c2) + eps) * lr / c1`` is computed as
        ``m / (sqrt(v) + eps * sqrt(c2)) * lr * sqrt(c2) / c1`` (c1, c2: bias corrections).
        """
        exp_avg, exp_avg_sq = state
        weight_decay, beta2 = self.weight_decay.view(shape), self.beta2.view(shape)
        if self.decays and self.name == "adamw":
            param.mul_(1 - lr * weight_decay)
        elif self.decays:
            grad.addcmul_(param, weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.lerp_(grad.square_(), 1 - beta2)
        correction2_sqrt = (1 - beta2 ** count).sqrt()
        denom = exp_avg_sq.sqrt().add_(self.eps.view(shape) * correction2_sqrt)
        param.addcmul_(torch.div(exp_avg, denom, out=denom), -lr * correction2_sqrt / (1 - beta1 ** count))

    def train(self, stacked_params: Iterable[torch.Tensor]) -> None:
        """Before training steps: a schedule-free population's parameters take their training weights."""
        if self.package is not None:
            self.package.train(list(stacked_params))

    def eval(self, stacked_params: Iterable[torch.Tensor]) -> None:
        """Before evaluating: a schedule-free population's parameters take their evaluation weights."""
        if self.package is not None:
            self.package.eval(list(stacked_params))

    def end_epoch(self, running_rows: list[int], val_losses: list[float], step: int) -> None:
        """Step the members stepped on a metric that still run, on their validation loss; their new LR
        applies from ``step``."""
        for member in self.on_metric:
            if member.row in running_rows:
                member.scheduler.step(val_losses[member.row])
                self.lr_table[step:, member.row] = member.lr

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members at stacked rows ``rows``."""
        self.lr_table = self.lr_table.index_select(1, rows)
        self.momentum_table = self.momentum_table.index_select(1, rows)
        self.weight_decay, self.beta2, self.eps = (t.index_select(0, rows)
                                                   for t in (self.weight_decay, self.beta2, self.eps))
        self.decays = bool(self.weight_decay.any())
        if self.state is not None:
            self.state = [[slot.index_select(0, rows) for slot in slots] for slots in self.state]
        if self.package is not None:
            self.package.keep(rows)
        new_row = {old: new for new, old in enumerate(rows.tolist())}
        self.on_metric = [member for member in self.on_metric if member.row in new_row]
        for member in self.on_metric:
            member.row = new_row[member.row]


def _schedule_tables(
    specs: Sequence[ScheduleSpec], first_moment: torch.Tensor, total_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LR and momentum of every member at every step, two float32 ``total_steps x K`` tables.

    Every family's LR is its ``lr`` times a curve that does not depend on ``lr``, so the
    curve (``lr_at`` and ``momentum_at`` of the spec with lr 1) is computed once per
    distinct schedule shape and scaled per member. Members whose family does not cycle
    momentum keep ``first_moment`` (the optimizer's momentum or beta1) throughout.
    """
    curves: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    lr_columns, momentum_columns = [], []
    for spec, moment in zip(specs, first_moment):
        unit = replace(spec, lr=1.0, provenance=None)
        shape = json.dumps(unit.to_dict(), sort_keys=True)
        if shape not in curves:
            cycled = unit.momentum_at(0, total_steps) is not None
            curves[shape] = (
                torch.tensor([unit.lr_at(step, total_steps) for step in range(total_steps)], dtype=torch.float64),
                torch.tensor([unit.momentum_at(step, total_steps) for step in range(total_steps)]) if cycled else None,
            )
        unit_lrs, momentum = curves[shape]
        lr_columns.append(unit_lrs * spec.lr)
        momentum_columns.append(momentum if momentum is not None else moment.expand(total_steps))
    return (
        torch.stack(lr_columns, 1).float().contiguous(),
        torch.stack(momentum_columns, 1).float().contiguous(),
    )


CPU_LARGEST_POPULATION = 16  # a CPU gains little beyond this many members per population
GPU_LARGEST_POPULATION = 4096
SMALLEST_POPULATION = {"cpu": 4, "cuda": 16}
DOUBLING_GAIN = 0.10  # keep doubling K while member-steps per second grow by more than this fraction
GPU_MEMORY_FRACTION = 0.5  # share of the GPU's free memory a population may take
PROBE_STEPS = 6  # timed training steps per probed size (after one untimed warm-up step)

# A population size -> (member-steps per second, peak bytes per member on a GPU; 0 on a CPU).
Probe = Callable[[int], tuple[float, float]]


def choose_population_size(
    model: ModelChoice,
    splits: Splits,
    device: str | torch.device | None = None,
    batch_size: int = 128,
    largest: int | None = None,
    probe: Probe | None = None,
) -> int:
    """How many members to train at once on ``device``: measured, not guessed.

    Starting from 4 members on a CPU (16 on a GPU), K is doubled while a short probe
    (``timing_probe``: ``PROBE_STEPS`` training steps on real batches; ``probe`` replaces
    it) shows member-steps per second growing by more than ``DOUBLING_GAIN``; the last K
    that still gained is returned. K never exceeds ``largest`` (default 16 on a CPU, 4096
    on a GPU) nor, on a GPU, the members that fit in ``GPU_MEMORY_FRACTION`` of the free
    memory at the peak memory per member the probe measured.
    """
    device = training_device(device, splits)
    measure = probe or timing_probe(model, splits, device, batch_size)
    kind = "cuda" if device.type == "cuda" else "cpu"
    limit = largest or (GPU_LARGEST_POPULATION if kind == "cuda" else CPU_LARGEST_POPULATION)
    size = min(SMALLEST_POPULATION[kind], limit)
    chosen, best_rate = size, 0.0
    while size <= limit:
        rate, bytes_per_member = measure(size)
        if kind == "cuda":
            free_bytes, _ = torch.cuda.mem_get_info(device)
            limit = min(limit, int(free_bytes * GPU_MEMORY_FRACTION / bytes_per_member))
        if rate <= best_rate * (1 + DOUBLING_GAIN):
            break
        chosen, best_rate = size, rate
        size *= 2
    return max(1, min(chosen, limit))


def timing_probe(model: ModelChoice, splits: Splits, device: torch.device, batch_size: int) -> Probe:
    """The measured ``Probe``: ``PROBE_STEPS`` timed training steps of ``model`` on ``splits``'s first batch."""
    return functools.partial(_probe, model, splits, device, batch_size)


def _probe(model: ModelChoice, splits: Splits, device: torch.device, batch_size: int, size: int) -> tuple[float, float]:
    """Member-steps per second of a population of ``size`` and its peak memory per member (bytes, CUDA only)."""
    specs = [ScheduleSpec("constant", 0.01)] * size
    population = build_population(model, splits.input_shape, splits.num_classes, range(size)).to(device)
    optimizer = StackedOptimizer(specs, PROBE_STEPS + 1, 1, device)
    batch = splits.train_x[:batch_size].to(device), splits.train_y[:batch_size].to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _train_step(population, optimizer, batch, 0, autocast(device, None))
    _synchronize(device)
    started = time.perf_counter()
    for step in range(1, PROBE_STEPS + 1):
        _train_step(population, optimizer, batch, step, autocast(device, None))
    _synchronize(device)
    rate = size * PROBE_STEPS / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) / size if device.type == "cuda" else 0.0
    return rate, peak


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
