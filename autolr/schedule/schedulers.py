"""A ScheduleSpec as torch objects: its LRScheduler, optimizer, torch-native twin, Lightning dict.

``build(spec, optimizer, total_steps)`` returns a real ``torch.optim.lr_scheduler``
scheduler, stepped once per step after ``optimizer.step()``. It computes every LR from
the spec's closed form (``spec.lr_at``), so it holds no lambdas: it pickles, and its
``state_dict()`` is plain data that ``torch.load(..., weights_only=True)`` reads back.
Several parameter groups keep their LRs' ratios, as torch's schedulers do: each group's
``initial_lr`` (set from its ``lr`` when the first scheduler is built, never overwritten)
is scaled by the spec's curve, ``lr_at(step) / spec.lr``. ``spec.lr`` is thus the peak
(initial) LR of a group created with ``lr=spec.lr`` (``spec.build_optimizer`` creates every
group so); a group created with 10x less follows the same curve 10x lower, floors
(``min_factor``) included. Cyclic and onecycle with ``cycle_momentum`` also set each
group's ``momentum`` (or Adam's ``betas[0]``), as torch's CyclicLR and OneCycleLR do.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import sys
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from autolr import families
from autolr.errors import SpecError, UserError
from autolr.schedule.optimizers import OPTIMIZER_CLASSES

if TYPE_CHECKING:
    from autolr.schedule.spec import ScheduleSpec  # spec.build imports this module

# The families torch has its own scheduler class for (each family's ``torch_twin``).
TORCH_FAMILIES = tuple(name for name, family in families.FAMILIES.items() if family.torch_twin is not None)


class _SpecState:
    """state_dict / load_state_dict as plain data: the spec is stored as its dict and checked on load."""

    spec: ScheduleSpec
    total_steps: int

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state; plain data, loadable with ``torch.load(..., weights_only=True)``."""
        state = super().state_dict()  # type: ignore[misc]  # a mixin: the scheduler class after it defines it
        state["spec"] = self.spec.to_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from ``state_dict``; it must come from a scheduler of the same spec and length."""
        state = dict(state_dict)
        saved_spec, saved_steps = state.pop("spec", None), state.get("total_steps")
        if saved_spec != self.spec.to_dict() or saved_steps != self.total_steps:
            raise UserError("the scheduler state was saved for a different schedule or total_steps, "
                            "so it cannot resume this one")
        super().load_state_dict(state)  # type: ignore[misc]  # as in state_dict


def group_lrs(
    spec: ScheduleSpec, initial_lrs: Sequence[float | torch.Tensor], step: int, total_steps: int
) -> list[float | torch.Tensor]:
    """Each group's LR at ``step``: its initial LR times ``spec.lr_at(step) / spec.lr`` (a tensor LR stays one).

    Written ``lr_at * (initial / spec.lr)`` so that a group created with ``lr=spec.lr``
    gets exactly ``spec.lr_at(step)`` (the ratio is exactly 1.0).
    """
    lr = spec.lr_at(step, total_steps)
    return [lr * (initial / spec.lr) for initial in initial_lrs]


def _set_momentum(optimizer: Optimizer, momentum: float) -> None:
    for group in optimizer.param_groups:
        if "betas" in group:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum


class SpecScheduler(_SpecState, LRScheduler):
    """The LRScheduler of a ScheduleSpec stepped per batch: LR (and momentum) from the closed form."""

    def __init__(self, optimizer: Optimizer, spec: ScheduleSpec, total_steps: int, last_epoch: int = -1) -> None:
        spec.lr_at(0, total_steps)  # validates total_steps before the optimizer is touched
        if spec.momentum_at(0, total_steps) is not None and not (
                "momentum" in optimizer.defaults or "betas" in optimizer.defaults):
            raise SpecError(f"params.cycle_momentum needs an optimizer with momentum or betas, "
                            f"and {type(optimizer).__name__} has neither")
        self.spec = spec
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)  # each group's initial_lr: setdefault to its lr

    def get_lr(self) -> list[float | torch.Tensor]:
        """LR of every parameter group at ``last_epoch``; sets the cycled momentum as a side effect."""
        momentum = self.spec.momentum_at(self.last_epoch, self.total_steps)
        if momentum is not None:
            _set_momentum(self.optimizer, momentum)
        return group_lrs(self.spec, self.base_lrs, self.last_epoch, self.total_steps)


class SpecMetricScheduler(_SpecState, ReduceLROnPlateau):
    """ReduceLROnPlateau driven by ``step(metric)``, after the spec's warmup (metrics ignored during it)."""

    def __init__(self, optimizer: Optimizer, spec: ScheduleSpec, total_steps: int) -> None:
        spec.lr_at(0, total_steps)
        self.spec = spec
        self.total_steps = total_steps
        self.warmup_steps = spec.warmup_steps(total_steps)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, group_lrs(spec, self.base_lrs, 0, total_steps)):
            group["lr"] = lr
        params = spec.params
        super().__init__(optimizer, mode=params["mode"], factor=params["factor"], patience=params["patience"],
                         threshold=params["threshold"], threshold_mode=params["threshold_mode"],
                         cooldown=params["cooldown"], min_lr=[params["min_factor"] * lr for lr in self.base_lrs])

    def step(self, metrics: Any, epoch: None = None) -> None:  # type: ignore[override]  # as ReduceLROnPlateau's
        """One scheduler step with the metric measured since the last one (torch's semantics)."""
        if self.last_epoch < self.warmup_steps:
            self.last_epoch += 1
            lrs = group_lrs(self.spec, self.base_lrs, self.last_epoch, self.total_steps)
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group["lr"] = lr
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
            return
        super().step(metrics)


def build(spec: ScheduleSpec, optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """The spec's torch LRScheduler over a run of ``total_steps`` scheduler steps.

    Step it once per step after ``optimizer.step()`` (``spec.on_metric``: ``step(metric)`` once per
    epoch). Each
    parameter group follows the spec's curve scaled to its own initial LR (the module
    docstring): a group created with ``lr=spec.lr`` gets exactly ``spec.lr_at(step)``.
    """
    if spec.on_metric:
        return SpecMetricScheduler(optimizer, spec, total_steps)
    return SpecScheduler(optimizer, spec, total_steps)


def torch_equivalent(spec: ScheduleSpec, optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """Torch's own scheduler class for the spec, built with the converted parameters.

    For comparison and for users who want torch's class: the family must be in
    ``TORCH_FAMILIES`` and the spec must have no warmup. Sets every group's LR to ``spec.lr``.
    """
    twin = families.FAMILIES[spec.family].torch_twin
    if twin is None:
        raise SpecError(f"family {spec.family} has no torch scheduler; use spec.build instead")
    if spec.warmup is not None:
        raise SpecError("a spec with warmup has no single torch scheduler; use spec.build instead")
    spec.lr_at(0, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = spec.lr
        group.pop("initial_lr", None)
    class_name, arguments = twin(spec.lr, spec.params, total_steps)
    return getattr(torch.optim.lr_scheduler, class_name)(optimizer, **arguments)


_OPTIMIZERS_BUILT: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("autolr_optimizers_built",
                                                                                     default=None)


@contextlib.contextmanager
def recording_optimizers() -> Iterator[list[str]]:
    """Inside the block, the names of the optimizers ``build_optimizer`` makes (this thread's)."""
    built: list[str] = []
    token = _OPTIMIZERS_BUILT.set(built)
    try:
        yield built
    finally:
        _OPTIMIZERS_BUILT.reset(token)


def build_optimizer(spec: ScheduleSpec, parameters: Iterable[Any]) -> Optimizer:
    """A torch optimizer over ``parameters`` with ``spec.optimizer``'s settings and ``spec.lr``.

    Without optimizer settings in the spec: SGD with momentum 0.9 (``spec.optimizer_settings()``).
    The schedulefree and prodigyopt optimizers are those packages' own classes, imported here
    only when built; their internal warmup stays off (the spec's schedule sets the LR). A
    schedule-free optimizer starts in eval mode: call ``optimizer.train()`` before training.
    """
    settings = spec.optimizer_settings()
    name = settings.pop("name")
    built = _OPTIMIZERS_BUILT.get()
    if built is not None:
        built.append(name)
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    module, class_name = OPTIMIZER_CLASSES[name]
    optimizer_class = getattr(importlib.import_module(module), class_name)
    with contextlib.redirect_stdout(sys.stderr):  # Prodigy prints a note on weight decay; stdout may carry JSON
        return optimizer_class(parameters, lr=spec.lr, **settings)


def optimizer_settings_of(optimizer: Optimizer) -> dict[str, Any]:
    """The spec optimizer dict (``{"name": "sgd", "momentum": 0.9, ...}``) of a torch SGD, Adam or AdamW.

    The first parameter group's settings are read; what a population cannot train
    (another optimizer class, SGD dampening, Adam's amsgrad) is a UserError.
    """
    name = type(optimizer).__name__.lower()
    if name not in ("sgd", "adam", "adamw"):
        raise UserError(f"a population trains SGD, Adam or AdamW, got {type(optimizer).__name__}")
    group = optimizer.param_groups[0]
    if group.get("dampening", 0) or group.get("amsgrad", False):
        raise UserError(f"a population trains {type(optimizer).__name__} without dampening or amsgrad")
    if name == "sgd":
        return {"name": name, "momentum": group["momentum"], "nesterov": group["nesterov"],
                "weight_decay": group["weight_decay"]}
    return {"name": name, "betas": list(group["betas"]), "eps": group["eps"], "weight_decay": group["weight_decay"]}


def lightning_config(spec: ScheduleSpec, optimizer: Optimizer, total_steps: int, interval: str | None = None,
                     monitor: str = "val_loss") -> dict[str, Any]:
    """The dict a LightningModule's ``configure_optimizers`` returns for this spec.

    ``interval``: "step" when ``total_steps`` counts batches (pass
    ``self.trainer.estimated_stepping_batches``), "epoch" when it counts epochs
    (``self.trainer.max_epochs``). None: "epoch" for a spec stepped on a metric, whose
    ``step(metric)`` needs the metric of a whole epoch, else "step". ``monitor``: the logged
    metric such a schedule is stepped with (Lightning calls ``scheduler.step(metric)``;
    unused otherwise).
    """
    interval = interval or ("epoch" if spec.on_metric else "step")
    if interval not in ("step", "epoch"):
        raise UserError(f"interval must be step or epoch, got {interval!r}")
    scheduler_config: dict[str, Any] = {"scheduler": build(spec, optimizer, total_steps), "interval": interval,
                                        "frequency": 1}
    if spec.on_metric:
        scheduler_config["monitor"] = monitor
    return {"optimizer": optimizer, "lr_scheduler": scheduler_config}
