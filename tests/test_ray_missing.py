"""Without Ray installed, ``--backend ray`` says how to install it in one sentence and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

# Runs the CLI with every import of ``ray`` failing as it would were Ray not installed.
WITHOUT_RAY = """
import sys
from importlib.abc import MetaPathFinder

class NoRay(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoRay())
from autolr.cli import main
sys.argv = ["autolr"] + sys.argv[1:]
main()
"""


def test_ray_backend_without_ray_installed_prints_the_install_command_and_exits_2(tmp_path):
    root = Path(__file__).parent.parent
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY, "search", "--study", "studies/smoke.toml", "--backend", "ray",
         "--out", str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == 'error: the Ray backend needs Ray Tune: pip install "autolr[ray]"'
    assert "Traceback" not in completed.stderr
    assert not any(tmp_path.iterdir())  # nothing was started or written
