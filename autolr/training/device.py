"""The machine a run used, in words, for reports and benchmark tables."""

from __future__ import annotations

import os
import platform
from pathlib import Path

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
