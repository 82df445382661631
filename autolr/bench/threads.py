"""`autolr bench threads`: the same LR grid beside a busy neighbour, with torch's thread count and with autolr's.

A neighbour process runs torch matrix products with 2 threads for the whole benchmark. In
this process a grid of constant-LR trials (``train_trial``, the MLP on MNIST) trains with as
many torch threads as the machine has cores (torch's default: "without the choice") and
with the count ``autolr.training.threads`` chooses from the load measured beside the
neighbour ("with the choice"), the two alternated, ``repeats`` times each; the grid alone
(no neighbour, torch's default) runs first as the reference. Seconds are wall-clock.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autolr.data import load_splits
from autolr.schedule.spec import ScheduleSpec
from autolr.training.device import cpu_model
from autolr.training.threads import ThreadChoice, thread_choice
from autolr.training.train import train_trial

NEIGHBOUR_THREADS = 2
NEIGHBOUR = (  # a job running torch with NEIGHBOUR_THREADS threads until it is killed
    "import torch\n"
    f"torch.set_num_threads({NEIGHBOUR_THREADS})\n"
    "a = torch.randn(384, 384)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


@dataclass(frozen=True)
class GridSize:
    """The grid: ``points`` constant LRs log-spaced from 1e-3 to 0.32, ``epochs`` each, ``repeats`` runs per row."""

    points: int = 12
    epochs: int = 2
    repeats: int = 3
    batch_size: int = 128


QUICK = GridSize(epochs=1, repeats=2)


@dataclass(frozen=True)
class ThreadsBench:
    """The result: seconds per run of each row, and what the choice measured beside the neighbour."""

    size: GridSize
    cores: int
    choice: ThreadChoice
    alone_s: list[float]  # torch's default threads, no neighbour
    without_s: list[float]  # torch's default threads (the cores), beside the neighbour
    with_s: list[float]  # the chosen threads, beside the neighbour
    load_before: float  # the 1-minute load average when the benchmark started

    @property
    def speedup(self) -> float:
        """Median seconds without the choice over median seconds with it."""
        return statistics.median(self.without_s) / statistics.median(self.with_s)


def run_threads_bench(size: GridSize, data_dir: str | None = None) -> ThreadsBench:
    """Run the grid alone, then beside the neighbour without and with the choice, alternated."""
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    splits = load_splits("mnist", data_dir=data_dir, device="cpu", seed=0)
    specs = [ScheduleSpec("constant", 10 ** (-3 + 2.5 * i / (size.points - 1))) for i in range(size.points)]

    def grid(threads: int) -> float:
        torch.set_num_threads(threads)
        started = time.perf_counter()
        for spec in specs:
            train_trial(spec, "mlp", splits, size.epochs, size.batch_size, seed=0, device="cpu")
        return time.perf_counter() - started

    previous = torch.get_num_threads()
    try:
        alone = [grid(cores)]
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], stdout=subprocess.PIPE, text=True)
        try:
            if neighbour.stdout is None or neighbour.stdout.readline().strip() != "ready":
                raise RuntimeError("the neighbour process did not start")
            choice = thread_choice(None)
            without, with_choice = [], []
            for _ in range(size.repeats):
                without.append(grid(cores))
                with_choice.append(grid(choice.threads))
        finally:
            neighbour.kill()
            neighbour.wait()
    finally:
        torch.set_num_threads(previous)
    return ThreadsBench(size, cores, choice, alone, without, with_choice, load_before)


def write_threads_bench(result: ThreadsBench, path: Path) -> Path:
    """Write the result as a Markdown page at ``path``."""
    size, choice = result.size, result.choice

    def row(name: str, threads: int, seconds: list[float]) -> str:
        runs = ", ".join(f"{s:.1f}" for s in seconds)
        return f"| {name} | {threads} | {statistics.median(seconds):.1f} | {runs} |"

    measured = choice.load.busy if choice.load else float("nan")
    lines = [
        "# autolr bench threads",
        "",
        f"A grid of {size.points} constant-LR trials (MLP on MNIST, {size.epochs} epoch(s) each, batch "
        f"{size.batch_size}) beside a neighbour process running torch with {NEIGHBOUR_THREADS} threads, "
        f"with torch's default thread count (the {result.cores} cores) and with autolr's choice, alternated "
        f"{size.repeats} times; the grid alone first. CPU: {cpu_model()}, {result.cores} cores.",
        "",
        f"Beside the neighbour autolr measured {measured:.1f} of {result.cores} cores busy and chose "
        f"{choice.threads} thread(s): `{choice.describe()}`.",
        "",
        "| row | torch threads | median s | runs (s) |",
        "| --- | ---: | ---: | --- |",
        row("alone", result.cores, result.alone_s),
        row("beside the neighbour, without the choice", result.cores, result.without_s),
        row("beside the neighbour, with the choice", choice.threads, result.with_s),
        "",
        f"With the choice the grid ran **{result.speedup:.1f}x** faster beside the neighbour.",
        "",
        f"The machine was also running other developers' jobs (1-minute load average {result.load_before:.1f} "
        "when the benchmark started), so the absolute seconds are noisy; the rows ran alternated in one run, "
        "so their ratio is the figure to read.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
