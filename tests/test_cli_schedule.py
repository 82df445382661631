"""`autolr schedule show|export` run as a user would: `python -m autolr ...` in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from autolr.cli.schedule import terminal_plot
from autolr.schedule.spec import ScheduleSpec


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolr", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_show_prints_key_values_plot_and_writes_png(tmp_path):
    spec = ScheduleSpec("cosine", 0.1, {"min_factor": 0.1})
    path = spec.save(tmp_path / "cosine.yaml")
    png = tmp_path / "curve.png"
    result = run_cli("schedule", "show", str(path), "--steps", "5", "--png", str(png))
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2:4] for line in result.stdout.splitlines()
            if line.startswith("│")}
    expected = {"start": (0, 0.1), "25%": (1, spec.lr_at(1, 5)), "50%": (2, spec.lr_at(2, 5)),
                "75%": (3, spec.lr_at(3, 5)), "end": (4, spec.lr_at(4, 5)), "min": (4, spec.lr_at(4, 5)),
                "max": (0, 0.1)}
    for label, (step, lr) in expected.items():
        assert int(rows[label][0]) == step
        assert float(rows[label][1]) == pytest.approx(lr, rel=1e-5)
    assert "█" in result.stdout  # the terminal plot
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_terminal_plot_scales_columns_to_the_peak():
    rows = terminal_plot([0.0, 0.5, 1.0], width=3, height=2)
    assert rows == ["  █", " ██"]
    assert len(terminal_plot([1.0] * 1000, width=64)[0]) == 64


@pytest.mark.parametrize("export_format", ["json", "yaml", "toml", "python", "lightning"])
def test_export_prints_each_format(tmp_path, export_format):
    spec = ScheduleSpec("wsd", 3e-4, {"decay_shape": "cosine"}, warmup={"fraction": 0.1},
                        optimizer={"name": "adamw"}, provenance={"study": "mnist", "score": 0.97})
    path = spec.save(tmp_path / "spec.json")
    result = run_cli("schedule", "export", str(path), "--format", export_format)
    assert result.returncode == 0, result.stderr
    if export_format in ("json", "yaml", "toml"):
        assert ScheduleSpec.from_text(result.stdout, export_format) == spec
    else:
        namespace: dict = {}
        exec(compile(result.stdout, "<export>", "exec"), namespace)
        if export_format == "python":
            assert [namespace["lr_at"](step, 200) for step in range(201)] == [spec.lr_at(s, 200) for s in range(201)]
        else:
            assert namespace["SPEC"] == spec


@pytest.mark.parametrize(("file_name", "text", "args", "message"), [
    ("missing.json", None, [], "error: cannot read spec file {dir}/missing.json: No such file or directory"),
    ("bad.yaml", "autolr_spec: 1\nfamily: [cosine\n", [], "error: {dir}/bad.yaml is not valid YAML ("),
    ("gamma.json", json.dumps({"autolr_spec": 1, "family": "step", "lr": 0.1, "params": {"gamma": 1.5}}), [],
     "error: {dir}/gamma.json: params.gamma must be in (0, 1], got 1.5"),
    ("ok.json", json.dumps({"autolr_spec": 1, "family": "cosine", "lr": 0.1}), ["--format", "csv"],
     "error: export format must be one of json, yaml, toml, python, lightning, got 'csv'"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, file_name, text, args, message):
    path = tmp_path / file_name
    if text is not None:
        path.write_text(text)
    command = ["schedule", "export", str(path), *args] if args else ["schedule", "show", str(path)]
    result = run_cli(*command)
    assert result.returncode == 2
    assert result.stderr.startswith(message.format(dir=tmp_path))
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
