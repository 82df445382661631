"""The machine a run uses: in words, for reports and benchmark tables, and its torch threads."""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch


def describe_device(device: str) -> str:
    """The device in words: the GPU's name, or the CPU's model name and torch's thread count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU {cpu_model()} ({torch.get_num_threads()} threads)"


def describe_hardware(device: str) -> str:
    """``describe_device`` plus, on a CPU, the machine's core count."""
    return describe_device(device) + ("" if device.startswith("cuda") else f", {os.cpu_count()} cores")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@contextmanager
def torch_threads(device: str, threads: int) -> Iterator[None]:
    """On a CPU: ``threads`` torch threads in this process while the study runs (restored after).

    The free cores are split among autolr's own processes (``autolr.training.threads``), so
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
