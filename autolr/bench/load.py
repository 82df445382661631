"""The load figure: N worker processes share one study storage; trials recorded, lost and duplicated.

Every worker is an independent process (as on separate machines) that runs
``autolr.search`` on the same study name and storage, all released at once by a barrier
so their first writes collide. Trials are short (gradient descent on a quadratic bowl
under the sampled schedule, pure Python) so the storage, not training, is under load.
Each worker also writes down, in its own file, every trial it evaluated and the value it
got. Afterwards:

- recorded: trials the storage holds as finished (complete, pruned, diverged, failed);
- lost: trials a worker evaluated that the storage does not hold with that value;
- duplicated: evaluations of a trial another evaluation already covered: the same trial
  number evaluated twice, or a baseline (queued once per study) trained more than once;
- left running: trials still marked running when every worker has ended.

With a ``Hold``, each worker pauses before its trial ``after`` until the ``gate`` file
exists: a reader (a report built meanwhile) then finds the study part-way, whatever the
speed of the machine.

Run it as ``autolr bench load --storage journal --storage postgresql://user:password@host/db``.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from autolr.redact import redact_text

LOAD_STUDY_NAME = "load"


@dataclass(frozen=True)
class LoadResult:
    """One load run: the storage (password masked), the budget and what the storage holds."""

    storage: str
    workers: int
    trials: int  # the study's budget: trials it should hold
    recorded: int
    evaluated: int  # evaluations the workers wrote down
    lost: int
    duplicated: int
    left_running: int
    wall_time_s: float

    @property
    def trials_per_second(self) -> float:
        """Recorded trials per second of wall-clock time, all workers together."""
        return self.recorded / self.wall_time_s if self.wall_time_s > 0 else 0.0


@dataclass(frozen=True)
class Hold:
    """Each worker evaluates ``after`` trials, then waits (inside its next trial, which stays
    running) until the file ``gate`` exists."""

    after: int
    gate: Path

    def wait(self, evaluated: int) -> None:
        """Block until ``gate`` exists once ``evaluated`` trials are done, polling every 50 ms."""
        while evaluated >= self.after and not self.gate.exists():
            time.sleep(0.05)


def descent_objective(epochs: int, log_path: Path | None = None, hold: Hold | None = None):
    """A short real objective: ``epochs`` steps of gradient descent on ``(w - 3)**2`` with the
    schedule's LR at each step (``spec.lr_at``); returns minus the final loss. Each trial's
    number and value are appended to ``log_path`` when given; ``hold`` pauses it part-way."""
    evaluated = 0

    def objective(schedule: Any, trial: Any) -> float:
        nonlocal evaluated
        if hold is not None:
            hold.wait(evaluated)
        evaluated += 1
        weight = 0.0
        for step in range(epochs):
            weight -= schedule.lr_at(step, epochs) * 2.0 * (weight - 3.0)
            loss = (weight - 3.0) ** 2
            trial.report(-loss, step)
        if log_path is not None:
            with log_path.open("a") as log:
                log.write(json.dumps({"number": trial.number, "value": -loss}) + "\n")
        return -loss

    return objective


def run_load(storage_url: str, workers: int = 4, trials: int = 400, epochs: int = 5,
             log_dir: str | Path | None = None, hold: Hold | None = None) -> LoadResult:
    """Run ``workers`` processes on one fresh study of ``trials`` trials in ``storage_url``
    (each paused part-way by ``hold``, when given, until its gate file exists)."""
    from autolr.backends.optuna.storage import open_storage

    open_storage(storage_url)  # an unusable storage fails here, before any process starts
    with tempfile.TemporaryDirectory(prefix="autolr-load-") as scratch:
        folder = Path(log_dir or scratch)
        logs = [folder / f"worker-{index}.jsonl" for index in range(workers)]
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(workers)
        processes = [
            context.Process(target=_worker, args=(storage_url, trials, epochs, index, logs[index], barrier, hold),
                            name=f"autolr-load-{index}")
            for index in range(workers)
        ]
        started = time.monotonic()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        wall_time_s = time.monotonic() - started
        failed = [process.name for process in processes if process.exitcode != 0]
        if failed:
            raise RuntimeError(f"load workers {', '.join(failed)} stopped with an error")
        evaluations = [json.loads(line) for log in logs if log.exists() for line in log.read_text().splitlines()]
    return _count(storage_url, workers, trials, evaluations, wall_time_s)


def _worker(storage_url: str, trials: int, epochs: int, index: int, log_path: Path, barrier: Any,
            hold: Hold | None) -> None:
    from autolr.search import search
    from autolr.space.search_space import SearchSpace

    space = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "step", "cosine", "onecycle"))
    barrier.wait()
    search(descent_objective(epochs, log_path, hold), space=space, n_trials=trials, storage=storage_url,
           study_name=LOAD_STUDY_NAME, sampler="random", pruner="none", epochs=epochs, seed=index,
           baseline_lrs=0, rescore_seeds=0)  # the storage's load: trials only, no baselines or re-scoring


def _count(storage_url: str, workers: int, trials: int, evaluations: list[dict], wall_time_s: float) -> LoadResult:
    from autolr.backends.optuna.engine import read_study_record

    record = read_study_record(storage_url, LOAD_STUDY_NAME)
    stored = {trial.number: trial for trial in record.trials}
    finished = [trial for trial in record.trials if trial.state in ("complete", "pruned", "diverged", "failed")]
    lost = sum(
        1 for item in evaluations
        if item["number"] not in stored or stored[item["number"]].state != "complete"
        or stored[item["number"]].value != item["value"]
    )
    repeated_numbers = sum(count - 1 for count in Counter(item["number"] for item in evaluations).values())
    baseline_runs = Counter(trial.baseline for trial in record.trials
                            if trial.baseline and trial.state != "interrupted")
    repeated_baselines = sum(count - 1 for count in baseline_runs.values())
    return LoadResult(
        storage=redact_text(storage_url), workers=workers, trials=trials, recorded=len(finished),
        evaluated=len(evaluations), lost=lost, duplicated=repeated_numbers + repeated_baselines,
        left_running=sum(trial.state == "running" for trial in record.trials), wall_time_s=wall_time_s,
    )


def storage_for(kind: str, folder: Path) -> str:
    """``journal`` or ``sqlite``: a new file of that kind in ``folder``; anything else is a URL."""
    from autolr.backends.optuna.storage import journal_url, sqlite_url

    if kind == "journal":
        return journal_url(folder / "load.log")
    if kind == "sqlite":
        return sqlite_url(folder / "load.db")
    return kind


def run_loads(kinds: Sequence[str], workers: int, trials: int, epochs: int) -> Iterator[LoadResult]:
    """:func:`run_load` on each storage named (see :func:`storage_for`), files in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="autolr-load-") as folder:
        for kind in kinds:
            yield run_load(storage_for(kind, Path(folder)), workers, trials, epochs)


def format_result(result: LoadResult) -> str:
    """One line for the README: storage, workers x trials, recorded / lost / duplicated, rate."""
    return (f"{result.storage}: {result.workers} workers, {result.trials} trials -> recorded {result.recorded}, "
            f"lost {result.lost}, duplicated {result.duplicated}, left running {result.left_running} "
            f"({result.wall_time_s:.1f} s, {result.trials_per_second:.1f} trials/s)")
