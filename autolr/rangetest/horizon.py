"""The user's training length in the range test: how many steps it means, and a check run's loss grown to it.

Pure Python. The check trains its constant LRs for at most ``CHECK_MAX_STEPS`` steps (the
user's length when shorter) and scores each run by its held-out loss at the end, taken as
it is while the loss is falling and, when it is growing, grown to the user's length:
``loss * (target_steps / steps_run) ** growth``, with ``growth`` the slope of log(loss)
against log(step) over the run's last half. A run that creeps upwards while the check is
short therefore counts as lost by the end of the user's training; one still falling is not
credited with a further fall (an extrapolated descent would favour the slowest LRs).
"""

from __future__ import annotations

import math
from typing import Sequence

from autolr.errors import UserError

CHECK_MAX_STEPS = 200  # the check's runs train at most this many steps; longer lengths are extrapolated
CHECK_POINTS = 4  # held-out scores along each run (at least), to measure its growth


def target_steps(epochs: int | None, steps: int | None, steps_per_epoch: int) -> int | None:
    """The user's training length in optimizer steps: ``steps``, or ``epochs`` passes of ``steps_per_epoch``.

    None when neither is given (the check then judges ``CHECK_STEPS`` steps, as before the
    length was asked for).
    """
    if epochs is not None and steps is not None:
        raise UserError(f"give the training length as epochs or as steps, not both "
                        f"(got epochs={epochs}, steps={steps})")
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    if steps is not None:
        return steps
    return None if epochs is None else epochs * steps_per_epoch


def growth(steps: Sequence[int], losses: Sequence[float]) -> float:
    """The slope of log(loss) against log(step) over the last half of the points (at least two); 0 with fewer.

    ``steps[i]`` (steps trained, ascending) is when ``losses[i]`` (finite, positive) was
    measured. Positive: the loss grows, by ``2 ** growth`` each time the steps double.
    """
    half = len(losses) // 2
    xs = [math.log(s) for s in steps[half:]]
    ys = [math.log(loss) for loss in losses[half:]]
    if len(xs) < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread if spread > 0 else 0.0


def loss_at_length(steps: Sequence[int], losses: Sequence[float], length: int) -> float:
    """A run's held-out loss judged at ``length`` steps: its last loss, grown to ``length`` when it is growing.

    ``losses`` are measured at ``steps``; NaN (diverged) or a non-positive loss anywhere
    gives the last loss as it is (NaN stays NaN). Below the last step nothing is extrapolated.
    """
    last = losses[-1]
    if not all(math.isfinite(loss) and loss > 0 for loss in losses) or length <= steps[-1]:
        return last
    return last * (length / steps[-1]) ** max(0.0, growth(steps, losses))
