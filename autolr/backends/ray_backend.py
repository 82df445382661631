"""The Ray Tune backend: a study's search run by Ray Tune's ``Tuner`` on a local Ray or a cluster.

Ray's own machinery does the work: ``OptunaSearch`` samples the backend-neutral
``SearchSpace`` (define-by-run) and evaluates the baselines first (``points_to_evaluate``),
``ASHAScheduler`` stops weak trials early, each trial asks for ``cpus_per_trial`` CPUs
and ``gpus_per_trial`` GPUs (fractions allowed), ``FailureConfig(max_failures)`` retries
trials lost with a node, and ``Tuner.restore`` continues an interrupted run. A Tune trial
trains a population of ``population`` schedules at once (see ``ray_searcher``).

Everything lands in ``<run_dir>/ray/``: Tune's experiment folder, plus ``autolr_study.json``
(the study, range test and re-scoring) so ``read_ray_record`` can rebuild the report.
Ray is imported only inside these functions, so autolr works without it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolr.backends.ray_record import EXPERIMENT_NAME, unfinished_trials, write_study_file
from autolr.errors import StudyError, UserError
from autolr.space import Baseline, SearchSpace

INSTALL_HINT = 'the Ray backend needs Ray Tune: pip install "autolr[ray]"'
DEFAULT_MAX_FAILURES = 3  # retries of a trial whose worker or node died


@dataclass(frozen=True)
class RayOptions:
    """Where and how big Ray trials run.

    ``address``: None starts a local Ray; "auto" joins the cluster this machine is part
    of; "ray://HOST:PORT" connects through Ray Client. ``gpus_per_trial`` and
    ``cpus_per_trial`` may be fractions (0.25 GPU: four trials share one GPU).
    ``population``: schedules one trial trains at once (None: the study's setting, or 1).
    """

    address: str | None = None
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    population: int | None = None
    max_failures: int = DEFAULT_MAX_FAILURES

    def __post_init__(self) -> None:
        if self.gpus_per_trial < 0 or self.cpus_per_trial < 0 or self.gpus_per_trial + self.cpus_per_trial <= 0:
            raise StudyError(
                f"a Ray trial needs some CPUs or GPUs, got cpus_per_trial={self.cpus_per_trial} "
                f"and gpus_per_trial={self.gpus_per_trial}")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise StudyError(f"gpus_per_trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.population is not None and self.population < 1:
            raise StudyError(f"population must be a positive integer, got {self.population}")


def require_ray() -> None:
    """Raise UserError with the install command when Ray Tune is not installed."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None


def connect(address: str | None) -> bool:
    """Join ``address`` (or start a local Ray) unless Ray is already up; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=True)
    except ConnectionError as error:
        raise StudyError(f"cannot reach the Ray cluster at {address!r}: {error}") from None
    return True


def experiment_dir(run_dir: str | Path) -> Path:
    """The folder holding a study's Ray Tune experiment."""
    return Path(run_dir).resolve() / EXPERIMENT_NAME


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (Tune's default repeats the whole config)."""
    return f"trial_{trial.trial_id}"


def run_ray_search(
    study: dict[str, Any],
    space: SearchSpace,
    baselines: list[Baseline],
    splits: Any,
    run_dir: str | Path,
    options: RayOptions,
    range_test: dict[str, Any] | None = None,
) -> Path:
    """Run (or continue) the study's search with Ray Tune; return the experiment folder.

    ``study`` is ``StudyConfig.to_dict()``: its ``trials`` (schedules in all, baselines
    included), ``epochs``, ``batch_size``, ``model``, ``metric``, ``seed``, ``sampler``
    seed, ``prune_after`` and ``device`` are used. An experiment already in
    ``<run_dir>/ray`` is restored and continued, keeping its finished trials. A run stopped
    before its end (Ctrl-C) raises KeyboardInterrupt once Tune has saved it.
    """
    require_ray()
    from ray import tune

    path = experiment_dir(run_dir)
    started_ray = connect(options.address)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_train_members(), settings=_trial_settings(study), splits=_to_cpu(splits)),
            {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial},
        )
        if tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
        else:
            size = population_size(study, options)
            write_study_file(path, study=study, range_test=range_test, options=options.__dict__,
                             population=size, populations=math.ceil(study["trials"] / size))
            tuner = _new_tuner(trainable, study, space, baselines, path, options)
        tuner.fit()
        if unfinished_trials(path):
            raise KeyboardInterrupt(f"the Ray Tune run in {path} stopped before its end; rerun to continue it")
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return path


def _train_members() -> Any:
    from autolr.backends.ray_trainable import train_members

    return train_members


def _trial_settings(study: dict[str, Any]) -> Any:
    from autolr.backends.ray_trainable import TrialSettings

    return TrialSettings(model=study["model"], epochs=study["epochs"], batch_size=study["batch_size"],
                         metric=study["metric"], seed=study["seed"], device=study.get("device", "auto"))


def _to_cpu(splits: Any) -> Any:
    """The splits on the CPU, so any worker (with or without a GPU) can unpickle them."""
    import dataclasses

    import torch

    return dataclasses.replace(splits, **{
        field.name: getattr(splits, field.name).cpu() for field in dataclasses.fields(splits)
        if isinstance(getattr(splits, field.name), torch.Tensor)})


def cluster_slots(options: RayOptions) -> int:
    """How many trials the cluster holds at once with these resources per trial (at least 1).

    Tune launches trials from a searcher one at a time unless told this number.
    """
    import ray

    resources = ray.cluster_resources()
    slots = [math.floor(resources.get(name, 0.0) / need + 1e-9)
             for name, need in (("CPU", options.cpus_per_trial), ("GPU", options.gpus_per_trial)) if need > 0]
    return max(1, min(slots))


def population_size(study: dict[str, Any], options: RayOptions) -> int:
    """Schedules per Tune trial: the option, else the study's population, else 1."""
    return options.population or study.get("population") or 1


def _new_tuner(trainable: Any, study: dict[str, Any], space: SearchSpace, baselines: list[Baseline],
               path: Path, options: RayOptions) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from autolr.backends.ray_searcher import PopulationSearcher, SpaceSampler
    from autolr.backends.ray_trainable import SCORE_KEY

    mode = "max" if study["metric"] == "accuracy" else "min"
    size = population_size(study, options)
    inner = OptunaSearch(
        space=SpaceSampler(space, {baseline.name: baseline.params for baseline in baselines}),
        metric=SCORE_KEY, mode=mode, points_to_evaluate=[baseline.params for baseline in baselines],
        seed=study["seed"],
    )
    epochs = study["epochs"]
    scheduler = ASHAScheduler(
        time_attr="training_iteration", max_t=epochs,
        grace_period=max(1, math.ceil(study.get("prune_after", 0.25) * epochs)), reduction_factor=3,
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=PopulationSearcher(inner, size, SCORE_KEY, mode), scheduler=scheduler,
            metric=SCORE_KEY, mode=mode, num_samples=math.ceil(study["trials"] / size),
            trial_dirname_creator=trial_dirname, reuse_actors=True,
            max_concurrent_trials=cluster_slots(options),
        ),
        run_config=tune.RunConfig(
            name=path.name, storage_path=str(path.parent), verbose=0,
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
        ),
    )
