"""A least-squares problem whose stable LR is known: full-batch gradient descent diverges above 2/L.

``loss(w) = mean((X w - y)^2)`` has the constant Hessian ``H = 2 X^T X / n``; with ``L`` its
largest eigenvalue, gradient descent (no momentum) converges for every LR below ``2 / L``
and diverges above it. A range test on this problem should land below that limit, and not
far below it (the best constant LR for a fixed number of steps sits just under it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROWS = 640  # examples; the population check holds out a fifth of them
FEATURES = 32
CONDITION = 100.0  # ratio of the largest to the smallest eigenvalue of X^T X / n (about)
NOISE = 0.1  # standard deviation of the targets' noise


@dataclass(frozen=True)
class LeastSquares:
    """The problem's data and its stability limit ``stable_lr = 2 / L`` (LR units of plain GD)."""

    x: torch.Tensor
    y: torch.Tensor
    stable_lr: float

    def model(self, seed: int) -> nn.Module:
        """The linear model trained on it, initialised from ``seed``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Linear(self.x.shape[1], 1, bias=False)

    def final_loss(self, lr: float, steps: int, seed: int) -> float:
        """The training loss after ``steps`` full-batch GD steps at constant ``lr`` (inf when it diverged)."""
        model = self.model(seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = F.mse_loss(model(self.x), self.y)
            if not math.isfinite(loss.item()) or loss.item() > 1e12:
                return math.inf
            loss.backward()
            optimizer.step()
        final = F.mse_loss(model(self.x), self.y).item()
        return final if math.isfinite(final) else math.inf


def least_squares(seed: int) -> LeastSquares:
    """A random problem with eigenvalues of ``X^T X / n`` log-spaced over ``CONDITION`` (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -math.log10(CONDITION) / 2, FEATURES)  # column scales: eigenvalues ~ scale^2
    x = torch.randn(ROWS, FEATURES, generator=generator) * scales
    truth = torch.randn(FEATURES, 1, generator=generator)
    y = x @ truth + NOISE * torch.randn(ROWS, 1, generator=generator)
    hessian = 2 * x.T @ x / ROWS
    largest = float(torch.linalg.eigvalsh(hessian).max())
    return LeastSquares(x=x, y=y, stable_lr=2 / largest)
