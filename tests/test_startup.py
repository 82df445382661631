"""Fast start: what the command line imports before it does its job (``python -X importtime``).

These are behaviour tests on module names, not timings: ``--help``, ``schedule show`` and
``data list`` load no search engine, no storage and no report stack, and ``autolr search``
prints its first line before loading the report stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

# The search and report stacks: engines, storage, statistics, tables, charts, torch's compiler.
HEAVY = ("optuna", "ray", "sqlalchemy", "plotly", "pandas", "scipy.stats", "matplotlib", "torch._dynamo",
         "autolr.backends", "autolr.report", "autolr.pipeline.run", "autolr.rangetest", "autolr.training")
# (autolr.study.verdict is pure Python: its statistics, scipy.stats, load with the first interval)
REPORT_STACK = ("plotly", "pandas", "scipy.stats", "matplotlib", "torch._dynamo", "autolr.report.write")


def imported_modules(importtime_log: str) -> set[str]:
    """The module names in the ``-X importtime`` lines of a process's stderr."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines()
            if line.startswith("import time:") and "|" in line}


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` (a package or any module under it) among ``modules``."""
    return sorted(name for name in modules if any(name == p or name.startswith(p + ".") for p in packages))


def importtime(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "autolr", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_check_sees_a_heavy_import() -> None:
    """The parsing finds a module that a command does load (so an empty result means absent)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pandas"],
                            capture_output=True, text=True, timeout=120)
    assert loaded(imported_modules(result.stderr), HEAVY) and "pandas" in imported_modules(result.stderr)


@pytest.mark.parametrize("command", [["--help"], ["schedule", "show", "SPEC"], ["data", "list"]],
                         ids=["--help", "schedule show", "data list"])
def test_light_commands_load_no_search_or_report_stack(command: list[str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"autolr_spec": 1, "family": "cosine", "lr": 0.1}))
    result = importtime(*[str(spec) if word == "SPEC" else word for word in command])
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "autolr.cli" in modules
    assert loaded(modules, HEAVY) == []
    if command[0] != "data":  # listing datasets reads torch's cache paths; the others need no torch
        assert "torch" not in modules


def test_search_prints_its_first_line_before_the_report_stack_loads(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(tomli_w.dumps({"name": "startup", "dataset": "digits", "epochs": 1, "trials": 1, "baseline_lrs": 0,
                                    "families": ["constant"], "device": "cpu"}))
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "autolr", "search", "--study", str(study),
         "--out", str(tmp_path / "out")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    before_first_line, line = [], ""
    try:
        for line in process.stderr:  # importtime lines, the thread choice's line, then the first phase's
            if line.startswith("threads:"):
                continue
            if not line.startswith("import time:"):
                break
            before_first_line.append(line)
    finally:
        process.kill()
        process.wait()
    assert line.strip() == "data..."
    modules = imported_modules("".join(before_first_line))
    assert "autolr.pipeline.run" in modules
    assert loaded(modules, REPORT_STACK) == []
