"""The search space over schedules, backend-neutral and seeded by the LR range test.

One definition serves every backend: ``SearchSpace.sample(trial)`` calls only
``trial.suggest_float / suggest_int / suggest_categorical`` (define-by-run), so it works
with an Optuna trial, Ray Tune's ``OptunaSearch`` define-by-run function, or a fixed
trial. The space is conditional: ``family`` first, then that family's parameters, each
named ``<family>.<param>`` (``step.gamma``, ``onecycle.pct_start``), then optional warmup
(``warmup``, ``warmup.fraction``, ``warmup.start_factor``) and, when asked, optimizer
settings (``optimizer.momentum``, ``optimizer.beta1``, ``optimizer.weight_decay``).
The initial (peak) LR ``lr`` is log-uniform over the family's LR interval, which
``from_range_test`` places around the range test's loss minimum with the family's factors
(``FAMILY_LR_FACTORS``: a decaying schedule tolerates a higher peak than the constant LR
the range test probes), never a hard-coded range. Each family's module in
``autolr/families/`` documents its ranges; ``FAMILY_SPACES`` collects them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autolr import families
from autolr.errors import UserError
from autolr.families.base import Family
from autolr.families.family_space import FamilySpace, Trial
from autolr.schedule.optimizers import DEFAULT_OPTIMIZER
from autolr.schedule.spec import FAMILIES, MAX_LR, ScheduleSpec
from autolr.space.baselines import Baseline

# Each family's searched parameters and peak-LR factors, from its module in autolr/families/
# (ranges are inclusive and contain the baselines' values; fractions are of the whole run).
# The peak-LR interval is the factors times the range test's loss-minimum LR, derived by
# `autolr bench lr-bounds` (reports/reference/lr-bounds.md) from its calibration settings
# alone (the narrowest interval holding every calibration best LR, widened one grid step of
# 1.62x each side) and checked on its held-out settings.
FAMILY_SPACES: dict[str, FamilySpace] = {name: family.space for name, family in families.FAMILIES.items()}
FAMILY_LR_FACTORS: dict[str, tuple[float, float]] = {
    name: family.lr_factors for name, family in families.FAMILIES.items()}

WARMUP_FRACTION = (0.01, 0.2)  # fraction of the run spent warming up
WARMUP_START_FACTOR = (0.0, 0.5)  # first warmup LR / lr
MOMENTUM = (0.0, 0.99)  # SGD momentum, when the optimizer is searched
BETA1 = (0.8, 0.99)  # Adam/AdamW first beta, when the optimizer is searched
WEIGHT_DECAY = (1e-6, 1e-2)  # log-uniform, when the optimizer is searched


def _baseline_trial_params(family: Family) -> dict[str, Any] | None:
    """The family's one-LR baseline as a trial stores it (``<family>.<param>`` names), or None."""
    if family.search_baseline is None:
        return None
    return {f"{family.name}.{key}": value for key, value in family.search_baseline.items()}


# Baselines enqueued first: family -> sampled parameter values (the LR is the suggestion).
BASELINES: dict[str, dict[str, Any]] = {
    name: params for name, family in families.FAMILIES.items()
    if (params := _baseline_trial_params(family)) is not None}


@dataclass(frozen=True)
class SearchSpace:
    """The schedules a search may try.

    ``lr_low``/``lr_high``: the initial-LR interval (sampled log-uniform), for every family
    that ``family_lr`` does not give its own ``(low, high)`` interval (``from_range_test``
    gives each family its own). ``families``: the families to search. ``warmup``: whether a linear
    warmup may be put in front (never for onecycle/cyclic, which warm up by themselves).
    ``optimizer``: the optimizer settings every trial uses; with ``search_optimizer`` its
    momentum (SGD) or first beta (Adam/AdamW) and weight decay are searched too, while its
    name stays fixed because the LR interval was measured with that optimizer.
    """

    lr_low: float
    lr_high: float
    families: tuple[str, ...] = FAMILIES
    warmup: bool = True
    optimizer: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    search_optimizer: bool = False
    family_lr: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.lr_low < self.lr_high <= MAX_LR:
            raise UserError(f"the LR interval must satisfy 0 < low < high <= {MAX_LR:g}, "
                            f"got [{self.lr_low}, {self.lr_high}]")
        for family, (low, high) in self.family_lr.items():
            if family not in families.FAMILIES or not 0 < low < high <= MAX_LR:
                raise UserError(f"family_lr needs a known family and 0 < low < high <= {MAX_LR:g}, "
                                f"got {family}: [{low}, {high}]")
        object.__setattr__(self, "family_lr", {family: (float(low), float(high))
                                               for family, (low, high) in self.family_lr.items()})
        unknown = [name for name in self.families if name not in families.FAMILIES]
        if unknown or not self.families:
            raise UserError(f"families must be a non-empty selection of {', '.join(families.FAMILIES)}, "
                            f"got {list(self.families)}")
        ScheduleSpec("constant", 1.0, optimizer=self.optimizer)  # SpecError names a bad optimizer setting
        object.__setattr__(self, "families", tuple(self.families))

    @classmethod
    def from_range_test(cls, result: Any, **options: Any) -> "SearchSpace":
        """The space a ``RangeTestResult`` seeds: each family's LR interval is its
        ``FAMILY_LR_FACTORS`` times the test's anchor: after a check, its ``anchor`` rule (the
        loss minimum, capped by the check's constant-LR runs), else the LR at the smoothed-loss
        minimum, else the upper end of the test's ``interval``; capped at ``MAX_LR``;
        ``lr_low``/``lr_high`` span them all."""
        anchor = result.suggestions.get("anchor") or result.suggestions.get("loss_min") or result.interval[1]
        family_lr = {name: (family.lr_factors[0] * anchor, min(family.lr_factors[1] * anchor, MAX_LR))
                     for name, family in families.FAMILIES.items()}
        chosen = tuple(options.get("families", FAMILIES))
        low = min(min(family_lr[family][0] for family in chosen if family in family_lr), result.interval[0])
        high = max(max(family_lr[family][1] for family in chosen if family in family_lr), result.interval[1])
        return cls(lr_low=low, lr_high=high, family_lr=family_lr, **options)

    def lr_interval(self, family: str) -> tuple[float, float]:
        """The ``(low, high)`` peak-LR interval that ``family``'s trials sample from."""
        return self.family_lr.get(family, (self.lr_low, self.lr_high))

    def sample(self, trial: Trial) -> ScheduleSpec:
        """Draw one schedule, define-by-run: family, its parameters, LR, warmup, optimizer."""
        family = trial.suggest_categorical("family", list(self.families))
        lr = trial.suggest_float("lr", *self.lr_interval(family), log=True)
        family_space = families.FAMILIES[family].space
        sampled: dict[str, Any] = {}
        for param in family_space.params:
            if param.when is None or sampled.get(param.when[0]) == param.when[1]:
                sampled[param.name] = param.sample(trial, family)
        params = family_space.assemble(sampled) if family_space.assemble else sampled
        warmup = None
        if self.warmup and family_space.allows_warmup and trial.suggest_categorical("warmup", [False, True]):
            warmup = {"fraction": trial.suggest_float("warmup.fraction", *WARMUP_FRACTION),
                      "start_factor": trial.suggest_float("warmup.start_factor", *WARMUP_START_FACTOR)}
        return ScheduleSpec(family=family, lr=lr, params={**family_space.fixed, **params},
                            warmup=warmup, optimizer=self._sample_optimizer(trial))

    def _sample_optimizer(self, trial: Trial) -> dict[str, Any]:
        optimizer = dict(self.optimizer)
        if not self.search_optimizer:
            return optimizer
        if optimizer["name"] == "sgd":
            optimizer["momentum"] = trial.suggest_float("optimizer.momentum", *MOMENTUM)
        else:
            beta2 = (optimizer.get("betas") or (0.9, 0.999))[1]
            optimizer["betas"] = [trial.suggest_float("optimizer.beta1", *BETA1), beta2]
        optimizer["weight_decay"] = trial.suggest_float("optimizer.weight_decay", *WEIGHT_DECAY, log=True)
        return optimizer

    def spec_from_params(self, params: dict[str, Any]) -> ScheduleSpec:
        """Rebuild the spec a trial sampled from its stored parameter dict."""
        return self.sample(_ReplayTrial(params))

    def baselines(self, suggestion: float) -> list[Baseline]:
        """Constant, step decay, cosine and one-cycle at the suggested LR (those in ``families``).

        The suggestion is clipped into ``[lr_low, lr_high]``; when the optimizer is
        searched the baselines keep the study's optimizer values, clipped into range.
        """
        lr = min(max(suggestion, self.lr_low), self.lr_high)
        common: dict[str, Any] = {"lr": lr}
        if self.search_optimizer:
            common.update(self._optimizer_baseline())
        baselines = []
        for name, family in families.FAMILIES.items():
            family_params = _baseline_trial_params(family)
            if name not in self.families or family_params is None:
                continue
            params = {"family": name, **common, **family_params}
            if self.warmup and family.space.allows_warmup:
                params["warmup"] = False
            baselines.append(Baseline(name=name, params=params, spec=self.spec_from_params(params)))
        return baselines

    def _optimizer_baseline(self) -> dict[str, Any]:
        def clip(value: float, bounds: tuple[float, float]) -> float:
            return min(max(float(value), bounds[0]), bounds[1])

        values = {"optimizer.weight_decay": clip(self.optimizer.get("weight_decay", 0.0), WEIGHT_DECAY)}
        if self.optimizer["name"] == "sgd":
            values["optimizer.momentum"] = clip(self.optimizer.get("momentum", 0.0), MOMENTUM)
        else:
            values["optimizer.beta1"] = clip((self.optimizer.get("betas") or (0.9, 0.999))[0], BETA1)
        return values

    def to_dict(self) -> dict[str, Any]:
        """The space as a JSON-safe dict (stored with the study)."""
        return asdict(self) | {"families": list(self.families),
                               "family_lr": {family: list(bounds) for family, bounds in self.family_lr.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        """Inverse of ``to_dict``."""
        family_lr = {family: tuple(bounds) for family, bounds in data.get("family_lr", {}).items()}
        return cls(**{**data, "families": tuple(data["families"]), "family_lr": family_lr})


class _ReplayTrial:
    """A trial that answers each suggest call from a stored parameter dict."""

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = params

    def _value(self, name: str) -> Any:
        if name not in self._params:
            raise UserError(f"the stored trial parameters lack {name!r}, so the schedule cannot be rebuilt")
        return self._params[name]

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._value(name))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._value(name))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._value(name)
