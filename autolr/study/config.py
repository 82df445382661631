"""Study definitions: the TOML files in ``studies/``, their validation, defaults and overrides.

A study names a dataset, a model, the optimizer, a budget (epochs per trial, or optimizer
steps for a text dataset's language model; number of trials), the schedule families to
search, the sampler and pruner, the seed, the storage and the device. Every built-in
default lives in one place: the TOML files shipped in ``autolr/studies/``
(``studies/*.toml`` in the repository are links to them), so a pip-installed autolr runs
``autolr search --dataset mnist`` exactly like the repository's ``studies/mnist.toml``.

A study file is data only (``tomllib``); a mistake in it raises :class:`StudyError` with
one sentence naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from autolr.errors import SpecError, StudyError
from autolr.schedule.optimizers import OPTIMIZER_PARAMETERS, check_optimizer
from autolr.schedule.spec import FAMILIES
from autolr.study.definition import (
    MIN_RESCORE_SEEDS,
    Direction,
    Recipe,
    ScoreUnit,
    SearchDefinition,
    check_budget_backend,
    check_choice,
    check_positive,
)

BACKENDS = ("optuna", "ray")
METRICS = ("accuracy", "loss")  # accuracy is maximized, loss minimized
OPTIMIZER_NAMES = ("sgd", "adam", "adamw")
RESCORE_KEYS = ("top", "seeds")
DECOUPLED_WEIGHT_DECAY = ("adamw",)  # weight_decay decoupled from the gradient; sgd's and adam's is an L2 term

# Fields that decide what a trial's number means; a rerun that changes one of them is a
# different study and is refused (the budget in trials, the storage, the device, the
# population size, the sampler and the pruner may change between runs).
IDENTITY_FIELDS = (
    "dataset", "model", "metric", "optimizer", "epochs", "batch_size", "families",
    "warmup", "search_optimizer", "seed", "baseline_lrs", "schedule_free", "steps", "eval_every", "grad_clip",
)
EPOCH_KEYS = ("epochs", "target_epochs")  # a text study's are derived from its steps (STEP_KEYS)
STEP_KEYS = ("steps", "target_steps", "eval_every")  # a text study's length, in optimizer steps


@dataclass(frozen=True)
class StudyConfig:
    """One study. ``epochs`` is per trial; ``trials`` counts every trial the study should hold.

    ``population``: trials trained at once (None: the size the study ran with on this device,
    else chosen from it). ``threads``: torch threads of each training process on a CPU (None: the
    cores other work leaves free, ``autolr.training.threads``). ``prune_after``: fraction of a
    trial's epochs before which it is never pruned. ``storage``: an Optuna storage URL (None:
    ``<out>/<name>/study.db``). ``rescore_top``/``rescore_seeds``: how many top
    configurations are retrained after the search, on how many fresh seeds (at least
    ``MIN_RESCORE_SEEDS``: a built-in study always re-scores, and the verdict's paired
    interval needs two).
    ``retry_interrupted``: run trials again whose process stopped before they finished
    (SIGKILL, Ctrl-C, a lost machine); they stay recorded as ``interrupted`` either way.
    ``baseline_lrs``: LR points each tuned baseline (constant, cosine, one-cycle, linear
    decay, schedule-free) trains, log-spaced over its family's LR interval; they count
    toward ``trials`` (0: no baselines). ``schedule_free``: include the schedule-free
    baselines (schedulefree's SGD or AdamW, and Prodigy for Adam-family optimizers).
    ``target_epochs``: the user's training length; the verdict re-scores at it (None:
    ``epochs``).

    A text dataset's study (a language model) gives its length in optimizer steps instead:
    ``steps`` per trial and ``target_steps`` (the user's length; None: ``steps``), with
    validation on the fixed sample every ``eval_every`` steps (None: ``EPOCH_STEPS``, 50).
    Underneath, one epoch is ``eval_every`` steps: ``epochs`` and ``target_epochs`` are
    derived (``steps / eval_every``), and the study file and the CLI refuse them for text
    (and the step keys for images). ``grad_clip``: each run's gradient norm is clipped to it
    before every step (None: no clipping). ``budget``:
    minutes the whole study should take; it sizes its search, refined rungs and re-scoring
    from its first trials to fit (None: no limit; optuna only). ``budget_grids``: the same in
    multiples of the plain 12-LR grid at the verdict's length (the shipped image studies: 2; a
    ``budget`` takes its place; Ray Tune runs the whole study).
    """

    name: str
    dataset: str
    model: str = "mlp"
    metric: str = "accuracy"
    optimizer: dict[str, Any] = field(default_factory=lambda: {"name": "sgd", "momentum": 0.9})
    epochs: int = 5
    trials: int = 64
    families: tuple[str, ...] = ("constant", "step", "cosine", "onecycle")
    warmup: bool = True
    search_optimizer: bool = False
    batch_size: int = 128
    population: int | None = None
    threads: int | None = None
    sampler: str = "tpe"
    pruner: str = "hyperband"
    prune_after: float = 0.25
    seed: int = 0
    device: str = "auto"
    storage: str | None = None
    backend: str = "optuna"
    data_dir: str | None = None
    retry_interrupted: bool = True
    rescore_top: int = 3
    rescore_seeds: int = 5
    baseline_lrs: int = 7
    schedule_free: bool = True
    target_epochs: int | None = None
    steps: int | None = None
    target_steps: int | None = None
    eval_every: int | None = None
    grad_clip: float | None = None
    budget: float | None = None
    budget_grids: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "families", tuple(self.families))
        object.__setattr__(self, "optimizer", dict(self.optimizer))
        _resolve_length(self)
        self.definition()  # the search's own settings (sampler, pruner, seed, baselines, re-scoring), checked there
        _validate(self)

    @property
    def verdict_epochs(self) -> int:
        """Epochs of the verdict's re-scoring runs: ``target_epochs``, else ``epochs``."""
        return self.target_epochs or self.epochs

    @property
    def direction(self) -> Direction:
        """Accuracy is maximized, loss minimized."""
        return Direction.of_metric(self.metric)

    @property
    def recipe(self) -> Recipe:
        """The tuned baselines' recipe: a language model's for a text dataset, else a classifier's."""
        return Recipe.LM if is_text(self.dataset) else Recipe.CLASSIFIER

    @property
    def score_unit(self) -> ScoreUnit:
        """How the report shows scores: a text model's loss in bits per byte, anything else as stored."""
        return ScoreUnit.BITS_PER_BYTE if self.recipe is Recipe.LM and self.metric == "loss" else ScoreUnit.AS_STORED

    def definition(self) -> SearchDefinition:
        """The study's search definition, the one both engines and the pipeline read."""
        return SearchDefinition(
            name=self.name, direction=self.direction, trials=self.trials, epochs=self.epochs, metric=self.metric,
            metric_name=f"val_{self.metric}", sampler=self.sampler, pruner=self.pruner, prune_after=self.prune_after,
            seed=self.seed, retry_interrupted=self.retry_interrupted, baseline_lrs=self.baseline_lrs,
            schedule_free=self.schedule_free, rescore_top=self.rescore_top, rescore_seeds=self.rescore_seeds,
            target_epochs=self.target_epochs, population=self.population, threads=self.threads,
            recipe=self.recipe, budget=self.budget, budget_grids=self.budget_grids,
        )

    def replace(self, **changes: Any) -> "StudyConfig":
        """A copy with ``changes`` applied (None values are ignored), validated again."""
        unknown = [key for key in changes if key not in _FIELD_NAMES]
        if unknown:
            raise StudyError(f"unknown study field {unknown[0]!r}")
        refuse_epochs_of_text(changes.get("dataset") or self.dataset,
                              [key for key, value in changes.items() if value is not None])
        return dataclasses.replace(self, **{key: value for key, value in changes.items() if value is not None})

    def whole(self) -> "StudyConfig":
        """A copy without a budget: every trial and the whole re-scoring it names."""
        return dataclasses.replace(self, budget=None, budget_grids=None)

    def with_optimizer(self, name: str | None) -> "StudyConfig":
        """A copy that trains with the optimizer ``name`` (None or the same name: unchanged).

        Only settings that mean the same for the new optimizer are kept: ``momentum`` and
        ``nesterov`` belong to sgd, ``betas`` and ``eps`` to adam and adamw, and
        ``weight_decay`` is an L2 term for sgd and adam but decoupled for adamw, so it is
        kept between sgd and adam only. The others take the new optimizer's defaults.
        """
        if name is None or name == self.optimizer["name"]:
            return self
        check_choice("optimizer", name, OPTIMIZER_NAMES)
        known = {parameter.name for parameter in OPTIMIZER_PARAMETERS[name]}
        same_decay = (self.optimizer["name"] in DECOUPLED_WEIGHT_DECAY) == (name in DECOUPLED_WEIGHT_DECAY)
        kept = {key: value for key, value in self.optimizer.items()
                if key in known and (key != "weight_decay" or same_decay)}
        return self.replace(optimizer={"name": name, **kept})

    def to_dict(self) -> dict[str, Any]:
        """The study as plain JSON-safe data (stored with the study), plus its ``direction``."""
        data = dataclasses.asdict(self)
        data["families"] = list(self.families)
        data["direction"] = self.direction.value
        data["score_unit"] = self.score_unit.value
        return data

    def identity(self) -> dict[str, Any]:
        """The fields (IDENTITY_FIELDS) a resumed study must share with the stored one."""
        data = self.to_dict()
        return {key: data[key] for key in IDENTITY_FIELDS}


_FIELD_NAMES = tuple(item.name for item in dataclasses.fields(StudyConfig))


def _validate(config: StudyConfig) -> None:
    if not isinstance(config.name, str) or not config.name.strip() or any(c in config.name for c in "/\\\0"):
        raise StudyError(f"name must be a non-empty study name without slashes, got {config.name!r}")
    for key in ("epochs", "trials", "batch_size"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StudyError(f"{key} must be a positive integer, got {value!r}")
    seeds = config.rescore_seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < MIN_RESCORE_SEEDS:
        raise StudyError(f"rescore_seeds must be at least {MIN_RESCORE_SEEDS}: a built-in study always re-scores, and "
                         f"the verdict's paired interval needs {MIN_RESCORE_SEEDS} fresh seeds, got {seeds!r}")
    if config.target_epochs is not None and (
        isinstance(config.target_epochs, bool) or not isinstance(config.target_epochs, int) or config.target_epochs <= 0
    ):
        raise StudyError(f"target_epochs must be a positive integer, got {config.target_epochs!r}")
    clip = config.grad_clip
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < math.inf):
        raise StudyError(f"grad_clip must be a positive gradient norm (or left out: no clipping), got {clip!r}")
    for key in ("warmup", "search_optimizer", "retry_interrupted"):
        if not isinstance(getattr(config, key), bool):
            raise StudyError(f"{key} must be true or false, got {getattr(config, key)!r}")
    for key in ("population", "threads"):  # None: chosen at run time
        value = getattr(config, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise StudyError(f"{key} must be a positive integer, got {value!r}")
    check_choice("backend", config.backend, BACKENDS)
    check_budget_backend(config.backend, config.budget)
    check_choice("metric", config.metric, METRICS)
    if not config.families:
        raise StudyError("families must name at least one schedule family")
    for family in config.families:
        check_choice("family", family, FAMILIES)
    if len(set(config.families)) != len(config.families):
        raise StudyError(f"families must not repeat a family, got {list(config.families)}")
    if not isinstance(config.device, str) or not config.device:
        raise StudyError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {config.device!r}")
    if config.device not in ("auto", "cpu", "mps") and not config.device.startswith("cuda"):
        raise StudyError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {config.device!r}")
    _validate_optimizer(config.optimizer)
    _check_budget(config)
    _validate_names(config.dataset, config.model)


def _check_budget(config: StudyConfig) -> None:
    """``trials`` must leave at least one trial to the search after the tuned baselines' ladders."""
    from autolr.space.baselines import baseline_kinds

    kinds = baseline_kinds(config.optimizer, config.schedule_free, config.recipe)
    baseline_trials = config.baseline_lrs * len(kinds)
    if isinstance(config.trials, int) and baseline_trials >= config.trials:
        raise StudyError(
            f"trials = {config.trials} leaves no trial to the search after the {baseline_trials} tuned-baseline "
            f"trials ({config.baseline_lrs} LRs x {len(kinds)} kinds: {', '.join(kinds)}); raise trials above "
            f"{baseline_trials} or lower baseline_lrs")




def _validate_optimizer(optimizer: dict[str, Any]) -> None:
    """A study's optimizer: one of OPTIMIZER_NAMES, its settings checked by the spec's own rules."""
    check_choice("optimizer", optimizer.get("name"), OPTIMIZER_NAMES)
    try:
        check_optimizer(optimizer)
    except SpecError as error:
        raise StudyError(str(error)) from None


def _validate_names(dataset: Any, model: Any) -> None:
    """Dataset and model names against the registries (imported here: they import torch); a text
    dataset trains the transformer, and the transformer trains on text."""
    from autolr.data import DATASET_NAMES
    from autolr.training.models import MODEL_NAMES

    check_choice("dataset", dataset, tuple(DATASET_NAMES))
    check_choice("model", model, tuple(MODEL_NAMES))
    if is_text(dataset) != (model == "transformer"):
        raise StudyError(
            f"model {model!r} cannot train on dataset {dataset!r}: the transformer is the model of the text "
            "datasets (fortunes), and the mlp and cnn are the image datasets' models")


def is_text(dataset: Any) -> bool:
    """Whether ``dataset`` names a text dataset (``autolr.data.catalog.TEXT_DATASETS``; imported here: torch)."""
    from autolr.data.catalog import TEXT_DATASETS

    return dataset in TEXT_DATASETS


def refuse_epochs_of_text(dataset: Any, keys: Any) -> None:
    """StudyError when ``keys`` (given by the user: a study file's, the CLI's) set epochs for a text dataset."""
    given = [key for key in EPOCH_KEYS if key in keys]
    if given and is_text(dataset):
        raise StudyError(f"dataset {dataset!r} is text: give its length in optimizer steps (steps, target_steps; "
                         f"--steps, --target-steps), not {given[0]}")


def _resolve_length(config: StudyConfig) -> None:
    """A text study's epochs from its steps (one epoch = ``eval_every`` steps); an image study may not
    name steps. Unknown datasets are left to ``_validate_names``."""
    from autolr.data.text import EPOCH_STEPS

    if not is_text(config.dataset):
        given = [key for key in STEP_KEYS if getattr(config, key) is not None]
        if given:
            raise StudyError(f"{given[0]} is for text datasets (a language model's length in optimizer steps); "
                             f"dataset {config.dataset!r} gives its length in epochs and target_epochs")
        return
    if config.steps is None:
        raise StudyError(f"dataset {config.dataset!r} is text: give its length in optimizer steps (steps, and "
                         "eval_every for how often validation runs), not epochs")
    eval_every = EPOCH_STEPS if config.eval_every is None else config.eval_every
    check_positive("eval_every", eval_every)
    object.__setattr__(config, "eval_every", eval_every)
    for key, epochs_key in (("steps", "epochs"), ("target_steps", "target_epochs")):
        value = getattr(config, key)
        if value is not None:
            check_positive(key, value)
            if value % eval_every:
                raise StudyError(f"{key} = {value} must be a multiple of eval_every = {eval_every} "
                                 "(validation runs every eval_every steps)")
        object.__setattr__(config, epochs_key, None if value is None else value // eval_every)


def study_from_dict(data: dict[str, Any], source: str = "the study") -> StudyConfig:
    """Build a study from the plain dict of a TOML file (top-level keys plus the
    ``[optimizer]`` and ``[rescore]`` tables); unknown keys are refused by name."""
    if not isinstance(data, dict):
        raise StudyError(f"{source} must be a table of study settings")
    flat = {key: value for key, value in data.items() if key not in ("optimizer", "rescore")}
    unknown = [key for key in flat if key not in _FIELD_NAMES or key in ("rescore_top", "rescore_seeds")]
    if unknown:
        raise StudyError(f"unknown key {unknown[0]!r} in {source}")
    if "name" not in flat or "dataset" not in flat:
        raise StudyError(f"{source} must set both 'name' and 'dataset'")
    refuse_epochs_of_text(flat["dataset"], flat)
    rescore = data.get("rescore", {})
    if not isinstance(rescore, dict) or any(key not in RESCORE_KEYS for key in rescore):
        raise StudyError(f"the [rescore] table of {source} may hold only {', '.join(RESCORE_KEYS)}")
    optimizer = data.get("optimizer", {"name": "sgd", "momentum": 0.9})
    if not isinstance(optimizer, dict):
        raise StudyError(f"the [optimizer] table of {source} must be a table of optimizer settings")
    for key in ("families",):
        if key in flat and not isinstance(flat[key], list):
            raise StudyError(f"{key} in {source} must be a list of names")
    return StudyConfig(
        **flat, optimizer=optimizer,
        **{f"rescore_{key}": value for key, value in rescore.items()},
    )


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StudyError(f"cannot read study file {str(path)!r}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise StudyError(f"study file {str(path)!r} is not UTF-8 text (byte {error.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"study file {str(path)!r} is not valid TOML: {error}") from None
    return study_from_dict(data, source=f"study file {str(path)!r}")


def packaged_study_names() -> list[str]:
    """The built-in studies shipped with autolr (``mnist``, ``fashion-mnist``, ``fortunes``, ``smoke``)."""
    folder = resources.files("autolr") / "studies"
    return sorted(item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml"))


def packaged_study(name: str) -> StudyConfig:
    """A built-in study by name, read from the TOML shipped inside the package."""
    if name not in packaged_study_names():
        raise StudyError(f"unknown built-in study {name!r}; choose one of {', '.join(packaged_study_names())}")
    text = (resources.files("autolr") / "studies" / f"{name}.toml").read_text(encoding="utf-8")
    return study_from_dict(tomllib.loads(text), source=f"built-in study {name!r}")


def default_study(dataset: str) -> StudyConfig:
    """The study ``autolr search --dataset NAME`` runs: the built-in study of that name,
    or, for a dataset without one, ``mnist``'s settings on that dataset."""
    if dataset in packaged_study_names():
        return packaged_study(dataset)
    return packaged_study("mnist").replace(name=dataset, dataset=dataset)
