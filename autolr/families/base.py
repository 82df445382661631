"""Family: everything autolr knows about one schedule family, in one definition.

A family module (``autolr/families/<name>.py``) defines ``FAMILY = Family(...)``; the
registry (``autolr.families.FAMILIES``) collects them. Every other part of autolr reads a
family from there: the spec (parameters, closed form, first LR, momentum), the search
space (searched ranges, peak-LR interval, baselines), the Python export, torch's twin
class and the pruner's ramp-up. Nothing here imports torch or Optuna.

The closed form works on the family's own part of the run: ``step`` and ``total_steps``
count scheduler steps after warmup, with ``0 <= step <= total_steps``. Arithmetic follows
torch's formulas operation for operation, so ``spec.build`` and torch's class agree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autolr.families.family_space import FamilySpace
from autolr.families.parameter import Parameter

Params = dict[str, Any]  # a family's parameters, defaults filled in (``ScheduleSpec.params``)
LrFormula = Callable[[float, Params, int, int], float]  # (lr, params, step, total_steps) -> LR
MomentumFormula = Callable[[Params, int, int], float | None]  # (params, step, total_steps) -> momentum or None
FirstLr = Callable[[float, Params], float]  # (lr, params) -> the LR at the family's first step
PythonBody = Callable[[float, Params], list[str]]  # (lr, params) -> source lines of lr_at's body
TorchTwin = Callable[[float, Params, int], tuple[str, dict[str, Any]]]  # -> (torch class name, its arguments)


class Stepping(enum.Enum):
    """How a family's torch scheduler is stepped.

    ``PER_BATCH``: ``scheduler.step()`` once per optimizer step, the LR from the closed form
    over ``total_steps`` = the run's batches. ``PER_EPOCH_ON_METRIC``: ``scheduler.step(metric)``
    once per epoch with the epoch's validation metric (torch's ``ReduceLROnPlateau``): its
    closed form is only the LR of a run whose metric keeps improving.
    """

    PER_BATCH = "per batch"
    PER_EPOCH_ON_METRIC = "per epoch on a metric"


def steps_for(fraction: float, total_steps: int) -> int:
    """Whole steps of a fraction of a run: ``max(1, round(fraction * total_steps))``, 0 for 0.

    The one conversion from run fractions to step counts, used by ``lr_at``, the torch
    schedulers and the exported code alike.
    """
    return 0 if fraction == 0 else max(1, round(fraction * total_steps))


def steps_source(fraction: float) -> str:
    """Python source of ``steps_for(fraction, total_steps)``, as the export writes it."""
    return f"max(1, round({fraction!r} * total_steps))"


def starts_at_lr(lr: float, params: Params) -> float:
    """The first LR of a family that starts at its peak: ``lr`` itself."""
    return lr


@dataclass(frozen=True)
class Family:
    """One schedule family.

    ``name``: the spec's ``family``. ``parameters``: its parameters (names, defaults, valid
    ranges, meanings). ``lr_at``: the closed form, (lr, params, step, total_steps) -> LR.
    ``python_body``: the lines of the exported ``lr_at`` after warmup, numbers inlined; they
    compute exactly what ``lr_at`` does. ``space``: the searched parameters.
    ``lr_factors``: the peak-LR interval searched, as (low, high) factors of the range
    test's loss-minimum LR. ``first_lr``: the LR at the family's first step, which warmup
    ramps up to. ``momentum_at``: the momentum it cycles, or None. ``torch_twin``: torch's
    own class for it, as (class name in ``torch.optim.lr_scheduler``, arguments besides the
    optimizer), or None where torch has none. ``ramp_param``: the parameter (a fraction of
    the run) during which the schedule rises on purpose, so the pruner waits it out.
    ``search_baseline``: the values of its searched parameters queued as the Python API's
    one-LR baseline, or None. ``tuned_baseline``: the params of its tuned-LR baseline kind
    (``autolr.space.baselines``), or None. ``stepping``: how its scheduler is stepped, and
    ``curve_note``: what a plotted closed-form curve leaves out (``autolr schedule show``).
    """

    name: str
    parameters: tuple[Parameter, ...]
    lr_at: LrFormula
    python_body: PythonBody
    space: FamilySpace
    lr_factors: tuple[float, float]
    first_lr: FirstLr = starts_at_lr
    momentum_at: MomentumFormula | None = None
    torch_twin: TorchTwin | None = None
    ramp_param: str | None = None
    search_baseline: Params | None = None
    tuned_baseline: Params | None = None
    stepping: Stepping = Stepping.PER_BATCH
    curve_note: str | None = None
