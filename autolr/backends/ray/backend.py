"""The Ray Tune backend: a study's search run by Ray Tune's ``Tuner`` on a local Ray or a cluster.

Ray's own machinery does the work: ``OptunaSearch`` samples the backend-neutral
``SearchSpace`` (define-by-run) with the study's Optuna sampler and evaluates the
baselines first (``points_to_evaluate``); ``ASHAScheduler`` (or the median stopping rule)
stops weak trials early; each trial asks for ``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs (fractions allowed); ``FailureConfig(max_failures)`` retries
trials lost with a node; ``Tuner.restore`` continues an interrupted run. A Tune trial
trains a population of the study's ``population`` schedules at once (default 1; see
``ray.searcher``).

``RayStudy`` is the Ray engine of the one study pipeline (``autolr.pipeline.run``: range
test, space, baselines, re-scoring, verdict, report), for ``autolr search --backend ray`` and
``autolr.search(..., backend="ray")``; only the trials run under Tune. Pruning stops whole Tune trials: ASHA compares a
population by its best member's score, so a population trains on while any member is
promising (on Optuna each trial is pruned on its own). Everything lands in
``<out>/<name>/ray/``: Tune's experiment folder plus ``autolr_study.json`` (see
``ray.record``), from which ``autolr report`` rebuilds the report. Ray is imported only
inside these functions, so autolr works without it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from autolr.backends.ray.record import (
    BASELINE_KEY,
    EXPERIMENT_NAME,
    RAY_KEY,
    SPEC_KEY,
    UNKNOWN_EPOCHS,
    RayStudyFolder,
    unfinished_trials,
)
from autolr.errors import StudyError, UserError
from autolr.jobs.builtin import BuiltinJob
from autolr.space.search_space import Baseline, SearchSpace
from autolr.study.backend import StoredStudy
from autolr.study.definition import SearchDefinition

if TYPE_CHECKING:
    from autolr.trials import Job, Progress

INSTALL_HINT = 'the Ray backend needs Ray Tune: pip install "autolr[ray]"'
DEFAULT_MAX_FAILURES = 3  # retries of a trial whose worker or node died


@dataclass(frozen=True)
class RayOptions:
    """Where and how big Ray trials run.

    ``address``: None starts a local Ray; "auto" joins the cluster this machine is part
    of; "ray://HOST:PORT" connects through Ray Client. ``gpus_per_trial`` and
    ``cpus_per_trial`` may be fractions (0.25 GPU: four trials share one GPU).
    """

    address: str | None = None
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    max_failures: int = DEFAULT_MAX_FAILURES
    reuse_actors: bool = True  # a finished trial's worker process takes the next trial (no new process)

    def __post_init__(self) -> None:
        if self.gpus_per_trial < 0 or self.cpus_per_trial < 0 or self.gpus_per_trial + self.cpus_per_trial <= 0:
            raise StudyError(
                f"a Ray trial needs some CPUs or GPUs, got cpus_per_trial={self.cpus_per_trial} "
                f"and gpus_per_trial={self.gpus_per_trial}")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise StudyError(f"gpus_per_trial above 1 must be a whole number, got {self.gpus_per_trial}")


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

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's legacy output is silent at verbose=0
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    except ConnectionError as error:
        raise StudyError(f"cannot reach the Ray cluster at {address!r}: {error}") from None
    return True


def experiment_dir(run_dir: str | Path) -> Path:
    """The folder holding a study's Ray Tune experiment: ``<run_dir>/ray``."""
    return Path(run_dir).resolve() / EXPERIMENT_NAME


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (Tune's default repeats the whole config)."""
    return f"trial_{trial.trial_id}"


class RayStudy(StoredStudy):
    """The Ray Tune engine's side of a study (``autolr.study.backend.StudyBackend``).

    The range test and re-scoring run in this process; the trials run on the Ray cluster at
    ``address`` (None: a local Ray), each Tune trial a population of the definition's
    ``population`` (default 1) schedules. Everything lands in ``<run_dir>/ray`` (``storage``,
    when given, is that run folder). Rerunning continues the Tune experiment, keeping its
    finished trials.
    """

    def __init__(self, definition: SearchDefinition, storage: str | None, run_dir: Path | None, workers: int = 1,
                 address: str | None = None, gpus_per_trial: float = 0.0, cpus_per_trial: float = 1.0,
                 max_failures: int = DEFAULT_MAX_FAILURES) -> None:
        require_ray()
        if workers != 1:
            raise StudyError("workers are for the optuna backend; with Ray, set --cpus-per-trial and --gpus-per-trial")
        # On a cluster nodes can vanish, and a retried trial must not reuse an actor that lived on a
        # dead node (it ends in ERROR instead of running again); a local Ray loses no nodes.
        self.options = RayOptions(address=address, gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                                  max_failures=max_failures, reuse_actors=address is None)
        self.definition = definition
        self.folder = self.store = RayStudyFolder(experiment_dir(run_dir or Path(storage or "reports") /
                                                                 definition.name))
        self.location = str(self.folder.path)

    def meta(self) -> dict[str, Any]:
        return {"backend": "ray", "population": population_size(self.definition)}

    phased = False  # a Tune experiment's trials and searcher are fixed when it is created

    def run_trials(self, space: SearchSpace, baselines: "Sequence[Baseline]", job: "Job", population: int,
                   on_progress: Callable[["Progress"], None] | None, trials: int) -> "Progress":
        """Run (or continue) the Tune experiment (``population`` is the re-scoring's, not Tune's;
        ``trials``: the definition's, as the experiment was created with)."""
        from autolr.backends.ray.progress import progress_of

        started = time.monotonic()
        run_ray_search(self.definition, space, list(baselines), job_trainable(job, self.definition),
                       self.folder.path, self.options, on_progress)
        return progress_of(self.read_record().trials, self.definition.trials, self.definition.direction.maximize,
                           time.monotonic() - started)


def job_trainable(job: "Job", definition: SearchDefinition) -> Callable[..., None]:
    """Tune's trainable for ``job``: a built-in study's population trainer on the device Ray
    assigns, with the splits through Ray's object store (worker nodes need no copy of the
    dataset); any other job through its own evaluator (``trainable.run_job``)."""
    from ray import tune

    from autolr.backends.ray.trainable import TrialSettings, run_job, train_members

    if isinstance(job, BuiltinJob):
        config = job.config
        settings = TrialSettings(model=config.model, epochs=config.epochs, batch_size=config.batch_size,
                                 metric=config.metric, seed=config.seed, device=config.device,
                                 threads=config.threads, grad_clip=config.grad_clip)
        return tune.with_parameters(train_members, settings=settings, splits=_to_cpu(job.splits))
    return tune.with_parameters(run_job, job=job, definition=definition)


def run_ray_search(
    definition: SearchDefinition,
    space: SearchSpace,
    baselines: list[Baseline],
    trainable: Callable[..., None],
    experiment: str | Path,
    options: RayOptions,
    on_progress: Callable[["Progress"], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> Path:
    """Run (or continue) the study's trials with Ray Tune in the folder ``experiment``.

    ``definition``'s ``trials`` (schedules in all, baselines included), ``epochs`` (None:
    unknown), ``direction``, ``seed``, ``sampler``, ``pruner``, ``prune_after`` and
    ``population`` are used. ``trainable`` runs one Tune trial (``job_trainable``). An
    experiment already in the folder is restored and continued, keeping its finished trials.
    A run stopped before its end (Ctrl-C) raises KeyboardInterrupt once Tune has saved it.
    ``callbacks``: Ray Tune callbacks of your own (a logger, say), run in the driver beside
    autolr's; a restored experiment keeps the ones it was started with.
    """
    require_ray()
    from ray import tune

    from autolr.backends.ray.progress import ProgressCallback

    path = Path(experiment).resolve()
    folder = RayStudyFolder(path)
    started_ray = connect(options.address)
    try:
        trainable = tune.with_resources(trainable, {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial})
        remote_driver = (options.address or "").startswith("ray://")  # Tune runs on the cluster: no local display
        progress = [ProgressCallback(definition.trials, definition.direction.maximize, on_progress)] if (
            on_progress and not remote_driver) else []
        if tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
        else:
            size = population_size(definition)
            folder.claim(asdict(definition), ())  # a study the pipeline claimed keeps its own definition
            folder.set_attr(RAY_KEY, {**asdict(options), "population": size,
                                      "populations": math.ceil(definition.trials / size)})
            tuner = _new_tuner(trainable, definition, space, baselines, path, options, [*progress, *callbacks])
        tuner.fit()
        if unfinished_trials(path):
            raise KeyboardInterrupt(f"the Ray Tune run in {path} stopped before its end; rerun to continue it")
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return path


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


def population_size(definition: SearchDefinition) -> int:
    """Schedules per Tune trial: the study's population, else 1 (one schedule per trial)."""
    return definition.population or 1


def trial_scheduler(pruner: str, epochs: int | None, prune_after: float) -> Any:
    """Ray Tune's scheduler for the study's pruner, never stopping a trial before ``prune_after`` of its epochs.

    hyperband and successive-halving: ``ASHAScheduler`` (asynchronous successive halving,
    reduction factor 3); median: ``MedianStoppingRule``; none: ``FIFOScheduler``. The
    metric and mode come from the Tuner. ``epochs`` None (unknown budget): ASHA's rungs
    run up to ``UNKNOWN_EPOCHS`` and a trial may be stopped from its first report on.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    grace_period = max(1, math.ceil(prune_after * epochs)) if epochs else 1
    if pruner == "none":
        return FIFOScheduler()
    if pruner == "median":
        return MedianStoppingRule(time_attr="training_iteration", grace_period=grace_period)
    return ASHAScheduler(time_attr="training_iteration", max_t=epochs or UNKNOWN_EPOCHS, grace_period=grace_period,
                         reduction_factor=3)


def _new_tuner(trainable: Any, definition: SearchDefinition, space: SearchSpace, baselines: list[Baseline],
               path: Path, options: RayOptions, callbacks: list[Any]) -> Any:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from autolr.backends.optuna.engine import make_sampler
    from autolr.backends.ray.searcher import PopulationSearcher, SpaceSampler
    from autolr.backends.ray.trainable import SCORE_KEY

    mode = "max" if definition.direction.maximize else "min"
    size = population_size(definition)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # OptunaSearch's in-memory study is an implementation detail
    in_space = {baseline.name: baseline.params for baseline in baselines if baseline.params is not None}
    fixed = [{SPEC_KEY: baseline.spec.to_dict(), BASELINE_KEY: baseline.name}
             for baseline in baselines if baseline.params is None]
    inner = OptunaSearch(
        space=SpaceSampler(space, in_space),
        metric=SCORE_KEY, mode=mode, points_to_evaluate=list(in_space.values()) or None,
        sampler=make_sampler(definition.sampler, definition.seed, definition.trials),
    )
    scheduler = trial_scheduler(definition.pruner, definition.epochs, definition.prune_after)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=PopulationSearcher(inner, size, SCORE_KEY, mode, fixed), scheduler=scheduler,
            metric=SCORE_KEY, mode=mode, num_samples=math.ceil(definition.trials / size),
            trial_dirname_creator=trial_dirname, reuse_actors=options.reuse_actors,
            max_concurrent_trials=cluster_slots(options),
        ),
        run_config=tune.RunConfig(
            name=path.name, storage_path=str(path.parent), verbose=0,
            failure_config=tune.FailureConfig(max_failures=options.max_failures), callbacks=callbacks,
        ),
    )
