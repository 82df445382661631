"""A tiny real objective for search tests: SGD on a quadratic bowl under the trial's schedule."""

from __future__ import annotations

from typing import Any, Callable

import torch

import autolr


def quadratic_objective(epochs: int) -> Callable[[autolr.ScheduleSpec, Any], float]:
    """An objective training ``epochs`` epochs (score = minus the loss, reported each epoch)."""

    def objective(schedule: autolr.ScheduleSpec, trial: Any) -> float:
        weight = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.SGD([weight], lr=schedule.lr)
        scheduler = schedule.build(optimizer, total_steps=epochs)
        for epoch in range(epochs):
            loss = ((weight - torch.tensor([3.0, -1.0])) ** 2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            trial.report(-loss.item(), epoch)
        return -loss.item()

    return objective
