"""The search definition every study is run from: the direction of its score, how the score is shown
(its unit) and the recipe of its tuned baselines.

One :class:`SearchDefinition` describes what a study searches and how it decides, whatever
trains it: a built-in study (``StudyConfig.definition()``), ``autolr.search`` over a user's
objective or ``autolr.search_module`` over a user's module. Both engines (Optuna, Ray Tune)
and the study pipeline read it; nothing else writes the search's settings out again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from autolr.errors import StudyError

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("hyperband", "median", "successive-halving", "none")
MAX_BASELINE_LRS = 12  # LR points per tuned baseline kind, at most
MIN_RESCORE_SEEDS = 2  # the fewest fresh seeds a paired interval can be computed from
LR_CHECK_SEEDS = 2  # seeds of the LR check at a target length, unless a budget cuts them


class Direction(enum.StrEnum):
    """Whether a higher (accuracy) or a lower (loss) validation score is better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: ``sign * score`` is larger for better scores."""
        return 1.0 if self is Direction.MAXIMIZE else -1.0

    @property
    def maximize(self) -> bool:
        return self is Direction.MAXIMIZE

    @classmethod
    def parse(cls, value: Any) -> "Direction":
        """A Direction from itself or its name; anything else raises StudyError."""
        try:
            return cls(value)
        except ValueError:
            raise StudyError(f"direction must be 'maximize' or 'minimize', got {value!r}") from None

    @classmethod
    def of_metric(cls, metric: str) -> "Direction":
        """Accuracy is maximized, every loss minimized."""
        return cls.MAXIMIZE if metric == "accuracy" else cls.MINIMIZE


class ScoreUnit(enum.StrEnum):
    """How the report shows a study's scores: as stored (accuracy as a fraction, loss in nats), or a
    language model's loss per byte in bits (``loss / ln 2``)."""

    AS_STORED = "as stored"
    BITS_PER_BYTE = "bits/byte"

    def scale(self, value: float) -> float:
        """``value`` (a score, or a difference of two scores) in this unit."""
        return value / math.log(2) if self is ScoreUnit.BITS_PER_BYTE else value

    def name_of(self, metric: str) -> str:
        """The score's name with its unit: ``loss (bits/byte)``, or ``metric`` as it is."""
        return metric if self is ScoreUnit.AS_STORED else f"{metric} ({self.value})"

    @classmethod
    def parse(cls, value: Any) -> "ScoreUnit":
        """The unit a stored study names; none (a study stored before units) or an unknown one: as stored."""
        try:
            return cls(value)
        except ValueError:
            return cls.AS_STORED


class Recipe(enum.StrEnum):
    """The practitioner's recipe a searched schedule must beat: which tuned baselines the study gets
    (``autolr.space.baselines``), chosen by the dataset's kind."""

    CLASSIFIER = "classifier"  # an image classifier: constant, cosine, one-cycle, linear decay
    LM = "lm"  # a language model: warmup, then cosine to 10%, linear decay to zero or WSD


@dataclass(frozen=True)
class SearchDefinition:
    """What a study searches and how it decides (see the module docstring).

    ``epochs``: each search trial's length (None: unknown, the Python API learns it from the
    first complete trial). ``trials``: every trial the study should hold, baselines included.
    ``metric_name``: the score's name in Optuna's tools (``val_accuracy``); ``metric``: in the
    verdict's words (``accuracy``, ``loss``, ``score``). ``baseline_lrs``: LR rungs per tuned
    baseline kind (0: none); ``schedule_free``: the schedule-free baselines too.
    ``rescore_top``/``rescore_seeds``: searched configurations re-trained after the search,
    on how many fresh seeds (0 seeds: no re-scoring, the pick is a single run's).
    ``target_epochs``: the user's training length, at which the verdict re-scores (None:
    ``epochs``). ``population``: trials trained at once (None: the engine's or the probe's
    choice). ``recipe``: which tuned baselines the study gets. ``budget``: minutes the whole
    study should take (None: no limit); the study then sizes its search, refined rungs and
    re-scoring to fit (``autolr.pipeline.budget``). ``budget_grids``: the same, in multiples of
    the plain 12-LR grid a user would run anyway at the verdict's length, estimated from the
    study's first trials (None: none; a ``budget`` in minutes takes its place).
    ``rescore_kinds``: the best baseline kinds re-scored (None: every kind). ``lr_check_seeds``:
    seeds of the LR check that runs first at a target length (``autolr.pipeline.rescore``).
    """

    name: str
    direction: Direction
    trials: int
    epochs: int | None = None
    metric: str = "score"
    metric_name: str = "val_score"
    sampler: str = "tpe"
    pruner: str = "hyperband"
    prune_after: float = 0.25
    seed: int = 0
    retry_interrupted: bool = True
    baseline_lrs: int = 7
    schedule_free: bool = True
    rescore_top: int = 3
    rescore_seeds: int = 5
    target_epochs: int | None = None
    population: int | None = None
    threads: int | None = None  # torch threads of each training process on a CPU (None: chosen from the load)
    recipe: Recipe = Recipe.CLASSIFIER
    budget: float | None = None
    budget_grids: float | None = None
    rescore_kinds: int | None = None
    lr_check_seeds: int = LR_CHECK_SEEDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction.parse(self.direction))
        _validate(self)

    @property
    def verdict_epochs(self) -> int | None:
        """Epochs of the verdict's re-scoring runs: ``target_epochs``, else ``epochs``."""
        return self.target_epochs or self.epochs

    @property
    def budgeted(self) -> bool:
        """Whether the study sizes itself to a budget, in minutes or in grids."""
        return self.budget is not None or self.budget_grids is not None

    @property
    def rescores(self) -> bool:
        """Whether the best configurations are re-trained on fresh seeds after the search."""
        return self.rescore_seeds > 0


def _validate(definition: SearchDefinition) -> None:
    """One sentence naming the first setting that is wrong (StudyError)."""
    name = definition.name
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0"):
        raise StudyError(f"name must be a non-empty study name without slashes, got {name!r}")
    check_positive("trials", definition.trials)
    for key in ("epochs", "target_epochs", "population", "threads"):
        if getattr(definition, key) is not None:
            check_positive(key, getattr(definition, key))
    if not isinstance(definition.metric_name, str) or not definition.metric_name.strip():
        raise StudyError(f"metric_name must be a non-empty name such as 'val_accuracy', got {definition.metric_name!r}")
    check_choice("sampler", definition.sampler, SAMPLERS)
    check_choice("pruner", definition.pruner, PRUNERS)
    if isinstance(definition.seed, bool) or not isinstance(definition.seed, int) or definition.seed < 0:
        raise StudyError(f"seed must be a non-negative integer, got {definition.seed!r}")
    prune_after = definition.prune_after
    if isinstance(prune_after, bool) or not isinstance(prune_after, (int, float)) or not 0 <= prune_after < 1:
        raise StudyError(f"prune_after must be a fraction in [0, 1), got {prune_after!r}")
    lrs = definition.baseline_lrs
    if isinstance(lrs, bool) or not isinstance(lrs, int) or not 0 <= lrs <= MAX_BASELINE_LRS:
        raise StudyError(f"baseline_lrs must be an integer from 0 to {MAX_BASELINE_LRS}, got {lrs!r}")
    if not isinstance(definition.schedule_free, bool):
        raise StudyError(f"schedule_free must be true or false, got {definition.schedule_free!r}")
    check_budget_value("budget", definition.budget, "minutes")
    check_budget_value("budget_grids", definition.budget_grids, "plain-grid multiples")
    if definition.rescore_kinds is not None:
        check_positive("rescore_kinds", definition.rescore_kinds)
    check_positive("lr_check_seeds", definition.lr_check_seeds)
    top = definition.rescore_top
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise StudyError(f"rescore top must be a non-negative integer, got {top!r}")
    seeds = definition.rescore_seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not (seeds == 0 or seeds >= MIN_RESCORE_SEEDS):
        raise StudyError(f"rescore_seeds must be 0 (no re-scoring) or at least {MIN_RESCORE_SEEDS}, as the verdict's "
                         f"paired interval needs {MIN_RESCORE_SEEDS} seeds, got {seeds!r}")


def check_budget_value(key: str, value: Any, unit: str) -> None:
    """StudyError unless ``value`` is None or a positive, finite number (of ``unit``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 < value < float("inf")):
        raise StudyError(f"{key} must be a positive number of {unit}, got {value!r}")


def check_budget_backend(backend: str, budget: float | None) -> None:
    """StudyError when a budget is given to an engine that cannot resize a study once it started (Ray Tune)."""
    if budget is not None and backend == "ray":
        raise StudyError("budget needs the optuna backend: a Ray Tune study's trials are fixed when it starts, "
                         "before the study can measure what a trial costs")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """StudyError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise StudyError(f"unknown {key} {value!r}; choose one of {', '.join(choices)}")


def check_positive(key: str, value: Any) -> None:
    """StudyError unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StudyError(f"{key} must be a positive integer, got {value!r}")


def score_resolution(metric: str, rows: int) -> float:
    """The smallest step a score over ``rows`` rows can take, in score units: ``1 / rows`` for
    accuracy (one more row right), 0 for a loss (a mean of continuous values)."""
    return 1.0 / rows if metric == "accuracy" and rows > 0 else 0.0
