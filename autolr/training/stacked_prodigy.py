"""Prodigy (the prodigyopt package's) as one update of K stacked members.

Prodigy is Adam whose step is scaled by an estimate d of the distance to the solution.
The estimate couples a member's parameters only through sums over them (a dot product of
the gradient with the distance travelled, and the L1 norm of a running gradient sum s),
so each member's d, its numerator and its step count are per-member scalars here and the
update stacks. Written operation for operation as ``Prodigy.step`` with the package's
defaults for what a spec does not set (``eps`` 1e-8, ``beta3 = sqrt(beta2)``, ``d0``
1e-6, decoupled weight decay, ``growth_rate`` infinite, ``slice_p`` 1). A member whose step
sums nothing into d's denominator (LR 0, or no gradient yet) takes no step, as the
package's early return.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from autolr.training.stacked_update import member_view
from autolr.training.train import OptimizerSettings

D0 = 1e-6  # Prodigy's initial d estimate (the package's default)



class StackedProdigy:
    """Prodigy of K members on stacked tensors; per-member settings, d estimate and step count."""

    def __init__(self, settings: Sequence[OptimizerSettings], device: torch.device) -> None:
        as_double = lambda values: torch.tensor(values, dtype=torch.float64, device=device)  # noqa: E731
        self.beta2 = as_double([s.betas[1] for s in settings])
        self.eps = as_double([s.eps for s in settings])
        self.weight_decay = as_double([s.weight_decay for s in settings])
        self.decays = bool(self.weight_decay.any())
        self.d_coef = as_double([s.d_coef for s in settings])
        self.safeguard_warmup = torch.tensor([s.safeguard_warmup for s in settings], device=device)
        self.use_bias_correction = torch.tensor([s.use_bias_correction for s in settings], device=device)
        self.d = torch.full((len(settings),), D0, dtype=torch.float64, device=device)
        self.d_numerator = torch.zeros(len(settings), dtype=torch.float64, device=device)
        self.k = torch.zeros(len(settings), dtype=torch.float64, device=device)  # steps taken, per member
        # per stacked parameter: p0 (its start), s, exp_avg, exp_avg_sq; created at the first step
        self.state: list[list[torch.Tensor]] | None = None

    def step(self, params: Sequence[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor, count: int) -> None:
        """One step of every member at LRs ``lr`` and beta1 ``beta1`` (length K); gradients in ``.grad``.

        ``count`` is not read: a member that skipped a step (the module docstring) counts
        its own steps (``k``, for the bias correction).
        """
        if self.state is None:
            self.state = [[param.detach().clone()] + [torch.zeros_like(param) for _ in range(3)] for param in params]
        lr, beta1, beta3 = lr.double(), beta1.double(), self.beta2.sqrt()
        d = self.d
        bias_correction = torch.where(self.use_bias_correction,
                                      (1 - self.beta2 ** (self.k + 1)).sqrt() / (1 - beta1 ** (self.k + 1)), 1.0)
        dlr = d * lr * bias_correction
        active = lr > 0  # the package's ``group_lr > 0``: only then is the state updated
        kept = lambda value, unchanged: torch.where(active, value, unchanged)  # noqa: E731
        numerator_scale = kept((d / D0) * dlr, 0.0)
        exp_avg_decay, exp_avg_gain = kept(beta1, 1.0), kept(d * (1 - beta1), 0.0)
        exp_avg_sq_decay, exp_avg_sq_gain = kept(self.beta2, 1.0), kept(d * d * (1 - self.beta2), 0.0)
        s_decay = kept(beta3, 1.0)
        s_gain = kept((d / D0) * torch.where(self.safeguard_warmup, d, dlr), 0.0)
        delta_numerator = torch.zeros_like(d)
        d_denom = torch.zeros_like(d)
        with torch.no_grad():
            for param, (start, s, exp_avg, exp_avg_sq) in zip(params, self.state):
                grad = param.grad
                assert grad is not None, "step() runs after backward(), which gives each stacked parameter a grad"
                travelled = (grad * (start - param)).flatten(1).sum(1)
                delta_numerator += numerator_scale * travelled.double()
                exp_avg.mul_(member_view(exp_avg_decay, param)).addcmul_(grad, member_view(exp_avg_gain, param))
                exp_avg_sq.mul_(member_view(exp_avg_sq_decay, param))
                exp_avg_sq.addcmul_(grad, grad * member_view(exp_avg_sq_gain, param))
                s.mul_(member_view(s_decay, param)).addcmul_(grad, member_view(s_gain, param))
                d_denom += kept(s.abs().flatten(1).sum(1).double(), 0.0)
            steps = d_denom > 0  # the others return early: no step, d and k unchanged
            numerator = self.d_numerator * beta3 + delta_numerator
            d_hat = self.d_coef * numerator / d_denom
            # d = max(d, d_hat) at d0; d_max = max(d_max, d_hat); d = min(d_max, d * inf) = d_max, so d tracks d_max
            self.d = torch.where(steps, torch.maximum(d, d_hat), d)
            self.d_numerator = torch.where(steps, numerator, self.d_numerator)
            self.k += steps.double()
            step_lr = torch.where(steps, dlr, 0.0)
            for param, (_, _, exp_avg, exp_avg_sq) in zip(params, self.state):
                denom = exp_avg_sq.sqrt().add_(member_view(self.d * self.eps, param))
                if self.decays:
                    param.addcmul_(param, member_view(-self.weight_decay * step_lr, param))
                param.addcmul_(torch.div(exp_avg, denom, out=denom), member_view(-step_lr, param))

    def train(self, params: Sequence[torch.Tensor]) -> None:
        """Nothing to switch: Prodigy has one set of weights."""

    def eval(self, params: Sequence[torch.Tensor]) -> None:
        """Nothing to switch: Prodigy has one set of weights."""

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members at stacked rows ``rows``."""
        (self.beta2, self.eps, self.weight_decay, self.d_coef, self.safeguard_warmup, self.use_bias_correction,
         self.d, self.d_numerator, self.k) = (
            t.index_select(0, rows) for t in (self.beta2, self.eps, self.weight_decay, self.d_coef,
                                              self.safeguard_warmup, self.use_bias_correction, self.d,
                                              self.d_numerator, self.k))
        self.decays = bool(self.weight_decay.any())
        if self.state is not None:
            self.state = [[t.index_select(0, rows) for t in slots] for slots in self.state]
