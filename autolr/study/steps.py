"""The engine-neutral steps of a built-in study, in the order ``autolr.study.run`` takes them.

The device and its threads, the data, the range test (stored with the study, never rerun),
the search space, the population size, the re-scoring (stored per verdict length) and the
run's metadata. Every engine's study runs these same steps; the worker processes of the
Optuna engine use them too.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from autolr.data import load_splits
from autolr.data.splits import Splits
from autolr.errors import StudyError
from autolr.rangetest.range_test import RangeTestResult, builtin_range_test
from autolr.space.search_space import SearchSpace
from autolr.study.backend import StudyStore
from autolr.study.config import StudyConfig
from autolr.study.records import POPULATION_KEY, RANGE_TEST_KEY, RESCORE_KEY, SEARCH_META_KEY
from autolr.training.device import describe_hardware
from autolr.training.population import choose_population_size


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StudyError(f"device {device!r} was asked for but no CUDA GPU is available")
    return device


def threads_per_process(workers: int) -> int:
    """torch threads for each of autolr's ``workers`` processes: the cores split among them (>= 1)."""
    return max(1, (os.cpu_count() or 1) // workers)


@contextmanager
def torch_threads(device: str, threads: int) -> Iterator[None]:
    """On a CPU: ``threads`` torch threads in this process while the study runs (restored after).

    The cores are split among autolr's own processes (``threads_per_process``), so
    ``--workers`` never oversubscribes them: more threads than free cores made the smoke
    study 4-6x slower on the 2-core machine autolr was built on. Alone on an idle machine,
    the cores help: there the default mnist study took 12.4 s with 2 threads against 17.5 s
    with 1 (back to back, two runs each).
    """
    if device != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_study_splits(config: StudyConfig, device: str) -> Splits:
    """The study's dataset splits, loaded once onto ``device``."""
    return load_splits(config.dataset, data_dir=config.data_dir, device=device, seed=config.seed)


def study_range_test(config: StudyConfig, engine: StudyStore, splits: Splits, device: str) -> RangeTestResult:
    """The stored range test, or a new one on the study's model (population on a GPU, sweep elsewhere)."""
    stored = engine.get_attr(RANGE_TEST_KEY)
    if stored is not None:
        return RangeTestResult.from_dict(stored)
    result = builtin_range_test(
        config.model, splits, method="auto", batch_size=config.batch_size, optimizer=config.optimizer,
        seed=config.seed, device=device, check=False,  # the search anchors on the loss minimum, not the suggestion
        epochs=config.verdict_epochs,  # the user's length, stored with the test
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


def rescore_study(config: StudyConfig, engine: StudyStore, splits: Splits, device: str, population: int) -> None:
    """Re-score the top configurations and the tuned baselines, unless already done for these
    trials at this length, with these seeds and this many top configurations. Each length's
    re-scoring is kept (``autolr.study.rescore@<epochs>``), so switching ``target_epochs`` back and
    forth retrains nothing; ``autolr.study.rescore`` is the one the report shows."""
    from autolr.study.rescore import rescore  # loads the statistics (scipy.stats): not before the search starts

    record = engine.read_record()
    done_for = {"trials": sorted(t.number for t in record.trials if t.state != "running"),
                "epochs": config.verdict_epochs, "seeds": config.rescore_seeds, "top": config.rescore_top}
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{config.verdict_epochs}"):
        if engine.get_attr(key) is not None and engine.get_attr(key + ".done_for") == done_for:
            _store_rescore(engine, engine.get_attr(key), done_for)
            return
    _store_rescore(engine, [vars(item) for item in rescore(record, config, splits, device, population)], done_for)


def _store_rescore(engine: StudyStore, rescored: list[dict[str, Any]], done_for: dict[str, Any]) -> None:
    """Store ``rescored`` as the study's re-scoring and as its length's."""
    for key in (RESCORE_KEY, f"{RESCORE_KEY}@{done_for['epochs']}"):
        if engine.get_attr(key + ".done_for") != done_for:
            engine.set_attr(key, rescored)
            engine.set_attr(key + ".done_for", done_for)


def study_meta(config: StudyConfig, device: str, population: int, workers: int, started: float, engine: StudyStore,
               data_source: str) -> dict[str, Any]:
    """The run's metadata for the report: wall time (seconds, summed over resumed runs), hardware, sizes,
    and where the data came from."""
    previous = engine.get_attr(SEARCH_META_KEY) or {}
    return {
        "wall_time_s": float(previous.get("wall_time_s", 0.0)) + time.monotonic() - started,
        "hardware": describe_hardware(device), "device": device, "population": population, "workers": workers,
        "finished": True, "torch": torch.__version__, "data_source": data_source,
    }
