"""The command line's contract: --version, and user errors as one line with exit status 2."""

import subprocess
import sys

import autolr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolr", *args], capture_output=True, text=True)


def test_version_matches_package():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"autolr {autolr.__version__}"


def test_unknown_command_exits_2_without_traceback():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
