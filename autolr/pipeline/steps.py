"""The engine-neutral steps of a study, in the order ``autolr.pipeline.run`` takes them.

The device and its threads, the range test (stored with the study, never rerun), the
search space, the population size, the re-scoring (stored per verdict length, each seed as
it finishes) and the run's metadata. Every engine's study runs these same steps, in the
process that runs the pipeline (an engine's worker processes get a ready job).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from autolr.errors import StudyError
from autolr.rangetest.range_test import LM_CHECK_COST, RangeTestResult, builtin_range_test
from autolr.space.search_space import SearchSpace
from autolr.study.backend import StudyStore
from autolr.study.config import StudyConfig
from autolr.study.definition import LR_CHECK_SEEDS, Recipe, SearchDefinition
from autolr.study.records import POPULATION_KEY, RANGE_TEST_KEY, RESCORE_KEY, SEARCH_META_KEY
from autolr.training.device import describe_hardware
from autolr.training.population import choose_population_size
from autolr.training.threads import ThreadChoice, thread_choice
from autolr.training.train import Splits  # the trainers' protocol: image Splits and TextSplits alike
from autolr.trials import Job


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StudyError(f"device {device!r} was asked for but no CUDA GPU is available")
    return device


def study_threads(config: StudyConfig, workers: int, cpus_per_trial: float | None = None) -> ThreadChoice:
    """torch threads for each of the study's training processes: its ``threads``, else the cores other
    work leaves free split among them (``autolr.training.threads``). The processes are the Optuna
    ``workers``, or with Ray the trials a local Ray runs at once (its cores over ``cpus_per_trial``)."""
    processes = workers
    if config.backend == "ray":
        processes = max(1, int((os.cpu_count() or 1) // cpus_per_trial)) if cpus_per_trial else 1
    return thread_choice(config.threads, processes)


def study_range_test(config: StudyConfig, engine: StudyStore, splits: Splits, device: str) -> RangeTestResult:
    """The stored range test, or a new one on the study's model (population on a GPU, sweep elsewhere).

    An image study's search anchors on the sweep's loss minimum (the families' factors were measured
    against it: ``autolr bench lr-bounds``); a language model's sweep survives LRs ~200x above its best
    constant LR (``autolr bench rangetest-lm``), so its study runs the check too, whose constant-LR runs
    at the study's length cap the anchor (``rangetest.check``), at ``LM_CHECK_COST``: on two of the sweeps' seeds,
    its runs scored on 512 held-out windows."""
    stored = engine.get_attr(RANGE_TEST_KEY)
    if stored is not None:
        return RangeTestResult.from_dict(stored)
    result = builtin_range_test(
        config.model, splits, method="auto", batch_size=config.batch_size, optimizer=config.optimizer,
        seed=config.seed, device=device, check=config.recipe is Recipe.LM, check_cost=LM_CHECK_COST,
        epochs=config.verdict_epochs,  # the user's length, stored with the test
        grad_clip=config.grad_clip,  # the sweep clips as the study's runs do
    )
    engine.set_attr(RANGE_TEST_KEY, result.to_dict())
    return result


def study_space(config: StudyConfig, range_test: RangeTestResult) -> SearchSpace:
    """The search space of the study: its families and optimizer, the LR interval from the range test."""
    return SearchSpace.from_range_test(
        range_test, families=config.families, warmup=config.warmup, optimizer=config.optimizer,
        search_optimizer=config.search_optimizer,
    )


def study_population_size(config: StudyConfig, engine: StudyStore, splits: Splits, device: str) -> int:
    """Trials trained at once: the study's ``population``; left out, the size the study ran with
    before on this device (so a resumed search asks for trials as it did), else one chosen from
    the device by a timing probe. The size is stored with the study."""
    stored = engine.get_attr(POPULATION_KEY)
    if config.population is not None:
        size = config.population
    elif stored is not None and stored["device"] == device:
        return int(stored["size"])
    else:
        size = choose_population_size(config.model, splits, device=device, batch_size=config.batch_size)
    engine.set_attr(POPULATION_KEY, {"device": device, "size": size})
    return size


def rescore_study(definition: SearchDefinition, store: StudyStore, job: Job, population: int) -> None:
    """Re-score the top configurations and the tuned baselines, unless already done for these
    trials at this length, with these seeds and this many top configurations. Each length's
    re-scoring is kept (``autolr.study.rescore@<epochs>``), so switching ``target_epochs`` back and
    forth retrains nothing; ``autolr.study.rescore`` is the one the report shows. A re-scoring
    stopped part-way keeps its finished seeds (``...partial``) and goes on from them."""
    from autolr.pipeline.rescore import rescore  # loads the statistics (scipy.special): not before the search starts

    record = store.read_record()
    done_for = {"trials": sorted(t.number for t in record.trials if t.state != "running"),
                "epochs": definition.verdict_epochs, "seeds": definition.rescore_seeds, "top": definition.rescore_top,
                **({} if definition.rescore_kinds is None else {"kinds": definition.rescore_kinds}),
                **({} if definition.lr_check_seeds == LR_CHECK_SEEDS
                   else {"lr_check_seeds": definition.lr_check_seeds})}
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{definition.verdict_epochs}"):
        if store.get_attr(key) is not None and store.get_attr(key + ".done_for") == done_for:
            _store_rescore(store, store.get_attr(key), done_for)
            return
    partial_key = f"{RESCORE_KEY}.partial"
    stored = store.get_attr(partial_key)
    progress = stored["progress"] if stored and stored.get("done_for") == done_for else None
    rescored = rescore(record, definition, job, population, progress,
                       save=lambda progress: store.set_attr(partial_key, {"done_for": done_for, "progress": progress}))
    _store_rescore(store, [vars(item) for item in rescored], done_for)


def _store_rescore(store: StudyStore, rescored: list[dict[str, Any]], done_for: dict[str, Any]) -> None:
    """Store ``rescored`` as the study's re-scoring and as its length's."""
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{done_for['epochs']}"):
        if store.get_attr(key + ".done_for") != done_for:
            store.set_attr(key, rescored)
            store.set_attr(key + ".done_for", done_for)


def study_meta(device: str, population: int, workers: int, started: float, engine: StudyStore,
               data_source: str) -> dict[str, Any]:
    """The run's metadata for the report: wall time (seconds, summed over resumed runs), hardware, sizes,
    and where the data came from."""
    previous = engine.get_attr(SEARCH_META_KEY) or {}
    return {
        "wall_time_s": float(previous.get("wall_time_s", 0.0)) + time.monotonic() - started,
        "hardware": describe_hardware(device), "device": device, "population": population, "workers": workers,
        "finished": True, "torch": torch.__version__, "data_source": data_source,
    }
