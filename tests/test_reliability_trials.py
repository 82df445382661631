"""Trials that go wrong on their own: a raising objective, divergence, a population out of memory.

Each is recorded with its reason and the study goes on to hold every trial it should.
Out of memory on a CPU is real here: a child process caps its own address space
(``RLIMIT_AS``), so torch's CPU allocator fails exactly as it does on a full machine.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import resource
from pathlib import Path

import pytest

import autolr
from autolr.backends import open_engine
from autolr.backends.optuna.storage import sqlite_url
from autolr.study.records import StudyRecord
from autolr.trials import run_trials
from autolr.space.search_space import SearchSpace
from autolr.study.config import StudyConfig
from autolr.jobs.builtin import BuiltinJob
from autolr.study.definition import SearchDefinition
from quadratic_objective import quadratic_objective

EPOCHS = 2


quadratic = quadratic_objective(EPOCHS)


def by_state(record: StudyRecord, state: str) -> list:
    return [trial for trial in record.trials if trial.state == state]


def test_objective_that_raises_fails_its_trial_only(tmp_path: Path) -> None:
    def objective(schedule: autolr.ScheduleSpec, trial) -> float:
        if trial.number % 3 == 1:
            raise ValueError(f"user code broke on trial {trial.number}")
        return quadratic(schedule, trial)

    space = SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant", "cosine"))
    result = autolr.search(objective, space=space, n_trials=9, storage=sqlite_url(tmp_path / "s.db"),
                           pruner="none", sampler="random", epochs=EPOCHS, baseline_lrs=0, rescore_seeds=0)
    failed = by_state(result.record, "failed")
    assert sorted(t.number for t in failed) == [1, 4, 7]
    assert all(t.error == f"ValueError: user code broke on trial {t.number}" for t in failed)
    assert len(by_state(result.record, "complete")) == 6 and len(result.record.trials) == 9
    assert result.best_value is not None


def test_objective_returning_nan_or_inf_is_diverged(tmp_path: Path) -> None:
    values = {0: math.nan, 1: math.inf}

    def objective(schedule: autolr.ScheduleSpec, trial) -> float:
        return values.get(trial.number, quadratic(schedule, trial))

    space = SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant",))
    result = autolr.search(objective, space=space, n_trials=4, storage=sqlite_url(tmp_path / "s.db"),
                           pruner="none", sampler="random", epochs=EPOCHS, baseline_lrs=0, rescore_seeds=0)
    diverged = {t.number: t.error for t in by_state(result.record, "diverged")}
    assert diverged == {0: "the objective returned nan", 1: "the objective returned inf"}
    assert len(by_state(result.record, "complete")) == 2


def run_population_study(space: SearchSpace, n_trials: int, population: int, splits, model: str = "mlp",
                         batch_size: int = 1024) -> StudyRecord:
    """A real in-memory Optuna study trained population by population (random sampler, seed 0)."""
    config = StudyConfig(name="faults", dataset="digits", model=model, epochs=EPOCHS, batch_size=batch_size,
                         optimizer={"name": "sgd"})
    definition = SearchDefinition(name="faults", direction="maximize", trials=n_trials, sampler="random",
                                  pruner="none", epochs=EPOCHS, seed=0)
    engine = open_engine(None, definition, space)
    run_trials(engine, BuiltinJob(config, "cpu", splits).evaluator(definition), n_trials, population=population)
    return engine.read_record()


def test_diverging_members_are_recorded_and_the_population_goes_on() -> None:
    from autolr.data import load_splits

    splits = load_splits("digits", seed=0)
    space = SearchSpace(lr_low=1e-2, lr_high=1e2, families=("constant",), warmup=False, optimizer={"name": "sgd"})
    record = run_population_study(space, n_trials=8, population=8, splits=splits)
    diverged, complete = by_state(record, "diverged"), by_state(record, "complete")
    assert len(diverged) + len(complete) == 8 and diverged and complete
    assert all(t.error and ("NaN" in t.error or "exceeded" in t.error) for t in diverged)
    assert min(t.spec["lr"] for t in diverged) > max(t.spec["lr"] for t in complete)


def _memory(key: str) -> int:
    """This process's VmSize or VmPeak in bytes."""
    with open("/proc/self/status") as status:
        return int(re.search(rf"{key}:\s+(\d+) kB", status.read()).group(1)) * 1024


def capped_populations(population: int) -> dict:
    """In a fresh process: a study under a cap too small for a single member, then the same
    study without a cap and under a cap that fits half the population but not all of it."""
    import torch

    from autolr.data import load_splits
    from autolr.training.population import train_population

    torch.set_num_threads(1)
    splits = load_splits("digits", seed=0)
    space = SearchSpace(lr_low=1e-2, lr_high=0.5, families=("constant", "cosine"), warmup=False,
                        optimizer={"name": "sgd"})
    run_population_study(space, 1, 1, splits, model="cnn", batch_size=8)  # every code path, little memory
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    outcome = {}
    try:
        # one cnn member on batches of 1024 maps about 8 MiB more: give it 2
        resource.setrlimit(resource.RLIMIT_AS, (_memory("VmSize") + (2 << 20), hard))
        starved = run_population_study(space, 2, 2, splits, model="cnn")
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        free = run_population_study(space, population, population, splits)
        base = _memory("VmSize")
        whole = [autolr.ScheduleSpec("constant", 0.1)] * population
        train_population(whole, "mlp", splits, 1, 1024, seeds=[0] * population, data_seed=0)
        need = _memory("VmPeak") - base  # address space one whole population takes
        resource.setrlimit(resource.RLIMIT_AS, (_memory("VmSize") + int(0.6 * need), hard))
        try:
            train_population(whole, "mlp", splits, 1, 1024, seeds=[0] * population, data_seed=0)
            outcome["whole_error"] = None
        except RuntimeError as error:
            outcome["whole_error"] = str(error)
        split = run_population_study(space, population, population, splits)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    outcome["free"] = [(t.number, t.state, t.value, t.spec) for t in free.trials]
    outcome["split"] = [(t.number, t.state, t.value, t.spec) for t in split.trials]
    outcome["starved"] = [(t.state, t.error) for t in starved.trials]
    return outcome


@pytest.fixture(scope="module")
def memory_cap_outcome(monkeypatch_module) -> dict:
    # Large allocations mapped and unmapped one by one, so the address space follows what is in use.
    monkeypatch_module.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    monkeypatch_module.setenv("OMP_NUM_THREADS", "1")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(capped_populations, (32,))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.slow
def test_population_out_of_memory_is_split_and_scores_are_unchanged(memory_cap_outcome: dict) -> None:
    outcome = memory_cap_outcome
    assert outcome["whole_error"] is not None, "the cap must be too small for the whole population"
    assert "can't allocate memory" in outcome["whole_error"]
    free, split = outcome["free"], outcome["split"]
    assert [t[3] for t in split] == [t[3] for t in free]  # the same 32 schedules
    assert all(state == "complete" for _, state, _, _ in split)
    for (_, _, free_value, _), (_, _, split_value, _) in zip(free, split):
        assert split_value == pytest.approx(free_value, abs=1e-6)


@pytest.mark.slow
def test_member_that_cannot_fit_alone_fails_with_the_reason(memory_cap_outcome: dict) -> None:
    starved = memory_cap_outcome["starved"]
    assert [state for state, _ in starved] == ["failed", "failed"]
    assert all("can't allocate memory" in error for _, error in starved)
