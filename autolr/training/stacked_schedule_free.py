"""Schedule-free SGD and AdamW (the schedulefree package's) as one update of K stacked members.

Written operation for operation as ``SGDScheduleFree`` and ``AdamWScheduleFree`` (package
defaults ``r = 0``, ``weight_lr_power = 2``, internal warmup off: the spec's schedule sets
the LR). Each member keeps the package's three sequences: z (the SGD or Adam iterate,
held here), x (the weighted average of the z's, the evaluation weights) and y, the point
between them where gradients are taken. The stacked parameters hold y while training and
x while evaluating; ``train()`` and ``eval()`` switch them with the member's own momentum
(beta1), as the package's methods do. A step weights the new z in the average by
``c = lr_max ** 2 / sum of lr_max ** 2`` (lr_max: the largest LR the member has had;
``c = 0`` while the sum is 0, as during a warmup from LR 0), per member.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from autolr.training.stacked_update import member_view
from autolr.training.train import OptimizerSettings


class StackedScheduleFree(ABC):
    """The schedule-free average of K members; subclasses give the gradient direction (SGD or Adam's).

    Per-member settings come from each member's ``OptimizerSettings``; ``keep`` drops
    stopped members. Steps are refused in evaluation mode, as the package refuses them.
    """

    def __init__(self, settings: Sequence[OptimizerSettings], device: torch.device) -> None:
        as_double = lambda values: torch.tensor(values, dtype=torch.float64, device=device)  # noqa: E731
        self.beta1 = as_double([s.first_moment for s in settings])  # momentum of SGD, beta1 of AdamW
        self.weight_decay = as_double([s.weight_decay for s in settings]).float()
        self.decays = bool(self.weight_decay.any())
        self.lr_max = torch.full((len(settings),), -1.0, dtype=torch.float64, device=device)  # the package's start
        self.weight_sum = torch.zeros(len(settings), dtype=torch.float64, device=device)
        self.z: list[torch.Tensor] | None = None  # per stacked parameter, created at the first step (as the package)
        self.training = False  # the package's optimizers start in eval mode

    @abstractmethod
    def direction(self, index: int, param: torch.Tensor, grad: torch.Tensor, count: int) -> torch.Tensor:
        """The step direction of stacked parameter ``index`` (``grad`` may be overwritten); ``count`` counts from 1."""

    def start(self, params: Sequence[torch.Tensor]) -> None:
        """Create the optimizer state at the first step: z starts at the parameters."""
        self.z = [param.detach().clone() for param in params]

    def step(self, params: Sequence[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor, count: int) -> None:
        """One step of every member at LRs ``lr`` (length K); ``count`` counts steps from 1; gradients in ``.grad``.

        ``beta1`` is not read: a spec with a schedule-free optimizer cycles no momentum, so
        each member's stays the one it was built with (which ``train()``/``eval()`` use too).
        """
        if not self.training:
            raise RuntimeError("a schedule-free population steps only in training mode; call train() first")
        if self.z is None:
            self.start(params)
        assert self.z is not None
        lr_double = lr.double()
        self.lr_max = torch.maximum(self.lr_max, lr_double)
        weight = self.lr_max.square()
        self.weight_sum += weight
        average_weight = torch.where(self.weight_sum > 0, weight / self.weight_sum, 0.0)
        y_coefficient = (lr_double * (self.beta1 * (1 - average_weight) - 1)).float()
        average_weight, negative_lr = average_weight.float(), lr.neg()
        with torch.no_grad():
            for index, (param, z) in enumerate(zip(params, self.z)):
                grad = param.grad
                assert grad is not None, "step() runs after backward(), which gives each stacked parameter a grad"
                direction = self.direction(index, param, grad, count)
                param.lerp_(z, member_view(average_weight, param))  # y updated in place, x never formed
                param.addcmul_(direction, member_view(y_coefficient, param))
                z.addcmul_(direction, member_view(negative_lr, param))

    @torch.no_grad()
    def train(self, params: Sequence[torch.Tensor]) -> None:
        """Put y into the parameters (they hold x): the package's ``train()``."""
        if not self.training and self.z is not None:
            weight = (1 - self.beta1).float()
            for param, z in zip(params, self.z):
                param.lerp_(z, member_view(weight, param))
        self.training = True

    @torch.no_grad()
    def eval(self, params: Sequence[torch.Tensor]) -> None:
        """Put x into the parameters (they hold y): the package's ``eval()``."""
        if self.training and self.z is not None:
            weight = (1 - 1 / self.beta1).float()
            for param, z in zip(params, self.z):
                param.lerp_(z, member_view(weight, param))
        self.training = False

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members at stacked rows ``rows``."""
        self.beta1, self.weight_decay, self.lr_max, self.weight_sum = (
            t.index_select(0, rows) for t in (self.beta1, self.weight_decay, self.lr_max, self.weight_sum))
        self.decays = bool(self.weight_decay.any())
        if self.z is not None:
            self.z = [z.index_select(0, rows) for z in self.z]


class StackedScheduleFreeSGD(StackedScheduleFree):
    """``SGDScheduleFree``: the direction is the gradient plus the L2 penalty taken at y."""

    def direction(self, index: int, param: torch.Tensor, grad: torch.Tensor, count: int) -> torch.Tensor:
        if self.decays:
            grad.addcmul_(param, member_view(self.weight_decay, param))
        return grad


class StackedScheduleFreeAdamW(StackedScheduleFree):
    """``AdamWScheduleFree``: the gradient over Adam's bias-corrected RMS, plus the weight decay taken at y."""

    def __init__(self, settings: Sequence[OptimizerSettings], device: torch.device) -> None:
        super().__init__(settings, device)
        self.beta2 = torch.tensor([s.betas[1] for s in settings], dtype=torch.float64, device=device)
        self.eps = torch.tensor([s.eps for s in settings], dtype=torch.float32, device=device)
        self.exp_avg_sq: list[torch.Tensor] = []

    def start(self, params: Sequence[torch.Tensor]) -> None:
        super().start(params)
        self.exp_avg_sq = [torch.zeros_like(param) for param in params]

    def direction(self, index: int, param: torch.Tensor, grad: torch.Tensor, count: int) -> torch.Tensor:
        exp_avg_sq = self.exp_avg_sq[index]
        exp_avg_sq.mul_(member_view(self.beta2.float(), param))
        exp_avg_sq.addcmul_(grad, grad * member_view((1 - self.beta2).float(), param))
        correction2 = (1 - self.beta2 ** count).float()
        denom = torch.div(exp_avg_sq, member_view(correction2, param)).sqrt_().add_(member_view(self.eps, param))
        grad.div_(denom)
        if self.decays:
            grad.addcmul_(param, member_view(self.weight_decay, param))
        return grad

    def keep(self, rows: torch.Tensor) -> None:
        super().keep(rows)
        self.beta2, self.eps = self.beta2.index_select(0, rows), self.eps.index_select(0, rows)
        self.exp_avg_sq = [state.index_select(0, rows) for state in self.exp_avg_sq]
