"""How many torch threads autolr's training processes run: the cores other work leaves free.

torch starts as many intra-op threads as the machine has cores. Beside another busy process
that oversubscribes the cores, and torch's spinning threads then wait on each other: on a
2-core VM a 12-point grid took 3.3 s alone, 33.9 s beside a job running torch with 2 threads
and 4.3 s beside it with 1. So autolr measures, at its start, how many cores' worth of other
work is running (:func:`measure_load`: the CPU time spent outside idle over a short window
of ``/proc/stat``, else the 1-minute load average), gives its own processes the cores that
leaves free (:func:`choose_threads`, at least 1 each), and says so in one line
(:meth:`ThreadChoice.describe`). ``--threads N`` (the study key ``threads``) overrides it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import Enum

LOAD_WINDOW_S = 0.3  # how long measure_load watches /proc/stat (seconds)
PROC_STAT = "/proc/stat"


class ThreadSource(Enum):
    """Where a thread count came from."""

    CHOSEN = "chosen from the load"
    GIVEN = "given"


@dataclass(frozen=True)
class CpuLoad:
    """The machine's cores and how many of them other work keeps busy (cores' worth, e.g. 1.9)."""

    cores: int
    busy: float


@dataclass(frozen=True)
class ThreadChoice:
    """The torch threads of each of ``processes`` training processes, and why."""

    threads: int
    processes: int
    source: ThreadSource
    load: CpuLoad | None  # what was measured (None: the count was given)

    def describe(self) -> str:
        """One line for the CLI, e.g. ``threads: 1 torch thread per process (2 cores, 1.9 busy ...)``."""
        plural = "s" if self.threads != 1 else ""
        each = f"each of {self.processes} processes" if self.processes > 1 else "per process"
        if self.source is ThreadSource.GIVEN or self.load is None:
            return f"threads: {self.threads} torch thread{plural} {each} (given)"
        return (f"threads: {self.threads} torch thread{plural} {each} ({self.load.cores} cores, "
                f"{self.load.busy:.1f} busy with other work; --threads N overrides)")


def choose_threads(busy: float, cores: int, processes: int = 1) -> int:
    """torch threads for each of ``processes`` processes: the cores that ``busy`` cores' worth of
    other work leaves free (a core counts busy from half a core's load), split evenly, at least 1."""
    free = cores - int(max(busy, 0.0) + 0.5)
    return max(1, free // max(processes, 1))


def measure_load(window_s: float = LOAD_WINDOW_S) -> CpuLoad:
    """The cores, and how many are busy now: the share of CPU time outside idle and I/O wait
    (steal counted busy) over ``window_s`` seconds of ``/proc/stat`` while this process sleeps;
    where there is no ``/proc/stat``, the 1-minute load average."""
    cores = os.cpu_count() or 1
    try:
        first = _cpu_times()
        time.sleep(window_s)
        second = _cpu_times()
    except OSError:
        return CpuLoad(cores, min(float(cores), os.getloadavg()[0]))
    total = sum(second) - sum(first)
    idle = (second[3] + second[4]) - (first[3] + first[4])  # idle, iowait
    return CpuLoad(cores, cores * (total - idle) / total if total > 0 else 0.0)


def thread_choice(requested: int | None, processes: int = 1) -> ThreadChoice:
    """``requested`` threads per process when given, else the choice from the load measured now."""
    if requested is not None:
        return ThreadChoice(requested, processes, ThreadSource.GIVEN, None)
    load = measure_load()
    return ThreadChoice(choose_threads(load.busy, load.cores, processes), processes, ThreadSource.CHOSEN, load)


def _cpu_times() -> list[int]:
    """The machine's CPU time per state (user, nice, system, idle, iowait, irq, softirq, steal), in ticks."""
    with open(PROC_STAT, encoding="ascii") as stat:
        fields = stat.readline().split()
    return [int(value) for value in fields[1:9]]
