"""The Ray Tune rows of ``autolr bench``: the same training work run as Ray Tune trials.

Each row runs ``config.trials`` cosine-schedule trials of the bench's model and data
through the Ray backend (``run_ray_search``: OptunaSearch's TPE, Tune's median stopping
rule like the other rows' median pruner, one trial per CPU) on a local Ray started before
the clock runs, so the rows' trials per minute compare directly with the in-process rows
of the same bench run: the difference is the engine's overhead (worker processes, the
object store, Tune's bookkeeping). ``ray_tune_K1`` trains one schedule per Ray trial,
``ray_tune_K<k>`` a population of k per Ray trial.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from autolr.backends.optuna.bench_search import SearchOutcome
from autolr.backends.ray.backend import RayOptions, connect, job_trainable, require_ray, run_ray_search
from autolr.backends.ray.record import read_ray_record
from autolr.jobs.builtin import BuiltinJob
from autolr.space.search_space import SearchSpace
from autolr.study.config import StudyConfig


def ray_searches(config: Any, splits: Any, lr_range: tuple[float, float],
                 population: int) -> list[tuple[int, SearchOutcome, float]]:
    """The searches of bench rows ``ray_tune_K1`` and ``ray_tune_K<population>`` for a ``BenchConfig``:
    each as (schedules per Ray trial, what the search did, its wall-clock seconds)."""
    require_ray()
    import ray

    space = SearchSpace(lr_low=lr_range[0], lr_high=lr_range[1], families=("cosine",), warmup=False,
                        optimizer={"name": "sgd", "momentum": 0.9})
    started_ray = connect(None)
    rows: list[tuple[int, SearchOutcome, float]] = []
    try:
        for size in (1, population):
            study = StudyConfig(name="bench", dataset="mnist", model="mlp", epochs=config.epochs,
                                batch_size=config.batch_size, seed=config.seed, trials=max(config.trials, size),
                                population=size, pruner="median", prune_after=0.25, device=config.device,
                                baseline_lrs=0)
            definition = study.definition()
            job = BuiltinJob(study, config.device, splits)
            with tempfile.TemporaryDirectory(prefix="autolr-ray-bench-") as folder:
                started = time.perf_counter()
                run_ray_search(definition, space, [], job_trainable(job, definition), Path(folder) / "ray",
                               RayOptions(cpus_per_trial=1))
                seconds = time.perf_counter() - started
                trials = read_ray_record(Path(folder) / "ray").trials
            states = [trial.state for trial in trials]
            values = [trial.value for trial in trials if trial.value is not None]
            outcome = SearchOutcome(trials=len(trials), completed=states.count("complete"),
                                    pruned=states.count("pruned"), diverged=states.count("diverged"),
                                    best_val_accuracy=max(values, default=None))
            rows.append((size, outcome, seconds))
    finally:
        if started_ray:
            ray.shutdown()
    return rows
