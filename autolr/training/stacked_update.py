"""What the population trainer asks of a package optimizer (schedule-free, Prodigy) written on stacked tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch


class PackageUpdate(Protocol):
    """A schedulefree or prodigyopt optimizer of K members on stacked ``K x ...`` parameters.

    Per-member values are tensors of length K; ``count`` counts the population's steps from 1.
    """

    def step(self, params: Sequence[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor, count: int) -> None:
        """One step of every member (gradients in ``.grad``) at LRs ``lr`` and first moments ``beta1``."""

    def train(self, params: Sequence[torch.Tensor]) -> None:
        """Give the parameters the weights gradients are taken at (before training steps)."""

    def eval(self, params: Sequence[torch.Tensor]) -> None:
        """Give the parameters the weights to evaluate (before evaluating)."""

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members at stacked rows ``rows``."""


def member_view(values: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """Per-member ``values`` (length K) as float32, shaped to broadcast over a stacked ``K x ...`` parameter."""
    return values.float().view((-1,) + (1,) * (param.dim() - 1))
