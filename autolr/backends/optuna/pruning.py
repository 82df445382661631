"""Fair pruning: Optuna's pruners, judging a trial only after its ramp-up and only against its family.

Early epochs are noisy and some schedules are *meant* to start slow: a linear warmup or
one-cycle's rising phase keeps the LR low at first, so after one epoch such a trial looks
worse than a constant LR that will end up behind it. autolr therefore wraps the chosen
Optuna pruner (Hyperband, median, successive halving) in :class:`FairPruner`, which

1. never prunes before the trial's *ramp-up* is over: epoch ``e`` (counted from 0) may prune
   only when ``e + 1 > ramp * epochs``, where ``ramp`` is the largest of the study's
   ``prune_after`` fraction, the trial's warmup fraction and, for one-cycle, its
   ``pct_start`` (a cyclic schedule's first rise, ``step_size_up``, likewise); and
2. compares the trial only with trials of the *same family*: the inner pruner sees the study
   through a view whose trials are those of the trial's family, so a one-cycle schedule is
   ranked against other one-cycle schedules at the same epoch, never against a constant LR
   that learns fast and stalls.

The cost is less pruning while a family has few trials; the gain is that no family is
cut for the shape it was chosen for. ``tests/test_search_pruning.py`` shows both with
numbers: a plain median pruner stops a one-cycle trial that ends best, the fair pruner keeps
it and still stops a weak one-cycle trial.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolr.families import FAMILIES
from autolr.study.records import TRIAL_SPEC_KEY


def ramp_fraction(spec: dict[str, Any] | None, prune_after: float) -> float:
    """The fraction of the run a trial is left alone: the study's floor or the schedule's own ramp."""
    if not spec:
        return prune_after
    ramps = [prune_after, float((spec.get("warmup") or {}).get("fraction", 0.0))]
    family = FAMILIES.get(spec.get("family", ""))
    param = family.ramp_param if family is not None else None
    if param is not None:
        ramps.append(float((spec.get("params") or {}).get(param, 0.0)))
    return max(ramps)


def first_prunable_epoch(spec: dict[str, Any] | None, epochs: int, prune_after: float) -> int:
    """The first epoch (counted from 0) after which a trial of ``epochs`` epochs may be pruned."""
    return math.floor(ramp_fraction(spec, prune_after) * epochs + 1e-9)


def make_pruner(name: str, epochs: int | None, prune_after: float) -> optuna.pruners.BasePruner:
    """The study's pruner by name (hyperband, median, successive-halving, none), made fair."""
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        inner: optuna.pruners.BasePruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs if epochs else "auto", reduction_factor=3
        )
    elif name == "median":
        inner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    elif name == "successive-halving":
        inner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    else:
        raise ValueError(f"unknown pruner {name!r}")
    return FairPruner(inner, epochs=epochs, prune_after=prune_after)


class FairPruner(optuna.pruners.BasePruner):
    """Wraps an Optuna pruner: no pruning during a trial's ramp-up, comparison within its family.

    ``epochs``: the budget of every trial in epochs (None: the longest completed trial's,
    so nothing is pruned before one trial has completed). ``prune_after``: the study's
    floor on the ramp-up, a fraction of the run. A trial's family and warmup are read from
    its stored spec (user attribute ``autolr.schedule.spec``).
    """

    def __init__(self, inner: optuna.pruners.BasePruner, epochs: int | None, prune_after: float) -> None:
        self.inner = inner
        self.epochs = epochs
        self.prune_after = prune_after

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = trial.last_step
        if epoch is None:
            return False
        epochs = self.epochs or _longest_completed(study)
        spec = trial.user_attrs.get(TRIAL_SPEC_KEY)
        if epochs is None or epoch < first_prunable_epoch(spec, epochs, self.prune_after):
            return False
        family = (spec or {}).get("family")
        return self.inner.prune(_family_view(study, family), trial)


def _longest_completed(study: optuna.Study) -> int | None:
    steps = [t.last_step for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
             if t.last_step is not None]
    return max(steps) + 1 if steps else None


def _family_view(study: optuna.Study, family: str | None) -> optuna.Study:
    """The study as the inner pruner should see it: only trials of ``family``.

    The view is a Study over a storage proxy whose trial lists are filtered, so pruners that
    rebuild studies from ``study._storage`` (Hyperband's brackets) see the filter too.
    """
    return optuna.Study(
        # a duck-typed proxy of the study's BaseStorage, not a subclass
        study_name=study.study_name, storage=_FamilyStorage(study._storage, family),  # type: ignore[arg-type]
        sampler=study.sampler, pruner=study.pruner,
    )


class _FamilyStorage:
    """A storage proxy that lists only the trials of one family and passes everything else on."""

    def __init__(self, storage: optuna.storages.BaseStorage, family: str | None) -> None:
        self._storage = storage
        self._family = family

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [t for t in trials if (t.user_attrs.get(TRIAL_SPEC_KEY) or {}).get("family") == self._family]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)
