"""The reference table's rows from a study record with known re-scored numbers."""

from __future__ import annotations

import json
import math
import sys

import pytest
from report_records import small_record

from autolr.bench.verdict import QUICK_SETTINGS, markdown, run_reference, verdict_row
from autolr.cli import main
from autolr.study.records import RescoreRecord

SEEDS = [1000, 1001, 1002]


def record_with_baselines():
    record = small_record()
    cosine = {"family": "cosine", "lr": 0.09, "params": {"min_factor": 0.0}}
    free = {"family": "constant", "lr": 0.05, "optimizer": {"name": "schedulefree_sgd"}}
    record.rescored = [
        RescoreRecord(1, record.trials[1].spec, SEEDS, [0.960, 0.962, 0.961], [0.950, 0.952, 0.954], epochs=4),
        RescoreRecord(0, cosine, SEEDS, [0.962, 0.963, 0.962], [0.951, 0.950, 0.955], baseline="cosine", epochs=4),
        RescoreRecord(6, free, SEEDS, [0.95, math.nan, 0.95], [0.94, math.nan, 0.94], baseline="schedule_free", epochs=4),
    ]
    return record


def test_a_row_reports_the_export_against_tuned_cosine_and_schedule_free():
    row = verdict_row(record_with_baselines(), "mnist mlp", 12.0)
    assert row["outcome"] == "no gain" and row["exported"] == "cosine to zero at LR 0.09"
    assert row["test_exported"] == pytest.approx((0.951 + 0.950 + 0.955) / 3)
    assert row["exported_vs_cosine"]["same"] is True
    versus_free = row["exported_vs_schedule_free"]
    assert versus_free["mean"] == pytest.approx(((0.951 - 0.94) + 0.950 + (0.955 - 0.94)) / 3)  # failed seed counts 0
    assert row["failed_seeds"] == {"schedule-free at LR 0.05": 1}
    assert row["epochs"] == 4 and row["seeds"] == 3 and row["study_wall_s"] == 12.0
    text = markdown({"rows": [{**row, "hardware": "test CPU", "torch": "x"}]})
    assert "| mnist mlp | 10 (1) | 4 | no gain | cosine to zero at LR 0.09 | 0.9520 |" in text
    assert text.splitlines()[6].endswith("| 12 | – | test CPU, torch x |")
    assert row["sentence"] in text


@pytest.mark.slow
def test_a_stopped_reference_run_keeps_its_rows_and_runs_only_the_missing_one(tmp_path):
    """The quick reference (a digits study) run whole, then with its 3x row dropped from verdict.json:
    the kept row comes back unchanged, the dropped one is measured again from the stored study."""
    import json

    from autolr.bench.verdict import QUICK_SETTINGS, run_reference

    runs, out = tmp_path / "runs", tmp_path / "out"
    first = run_reference(QUICK_SETTINGS, runs, out, quick=True)
    assert [row["epochs"] for row in first["rows"]] == [2, 6]
    assert all(row["plain_loop_grid_s"] > 0 for row in first["rows"])
    stored = json.loads((out / "verdict.json").read_text())
    stored["rows"] = stored["rows"][:1]
    (out / "verdict.json").write_text(json.dumps(stored))

    second = run_reference(QUICK_SETTINGS, runs, out, quick=True)
    kept, again = second["rows"]
    # not rerun (a rerun study's wall time would have grown), its plain loop's time kept; the new row's timed
    assert kept == first["rows"][0] and again["plain_loop_grid_s"] > 0
    assert again["study_wall_s"] > first["rows"][1]["study_wall_s"]  # the study was opened again...
    assert again["test_exported"] == first["rows"][1]["test_exported"]  # ...and its stored verdict reused
    assert again["grid_cosine"] == first["rows"][1]["grid_cosine"]  # the check retrains deterministically
    assert json.loads((out / "verdict.json").read_text())["rows"] == second["rows"]


def stored_rows(hardware: str, torch_version: str) -> list[dict]:
    """The quick reference's two rows as a run on another machine left them (nothing left to measure)."""
    row = verdict_row(record_with_baselines(), "digits mlp", 12.0)
    return [{**row, "epochs": epochs, "plain_loop_grid_s": 3.0, "hardware": hardware, "torch": torch_version}
            for epochs in (2, 6)]


def test_regenerating_keeps_each_rows_own_hardware(tmp_path):
    """Rows measured elsewhere keep their machine and torch version when the table is written again here,
    including rows of a file from before rows carried them (they take that file's label)."""
    out = tmp_path / "out"
    out.mkdir()
    rows = stored_rows("GPU NVIDIA H100", "2.9.0")
    (out / "verdict.json").write_text(json.dumps({"rows": rows}))
    report = run_reference(QUICK_SETTINGS, tmp_path / "runs", out, quick=True)  # both rows kept: nothing trains
    assert report["rows"] == rows
    assert json.loads((out / "verdict.json").read_text()) == {"rows": rows}
    assert (out / "verdict.md").read_text().count("| GPU NVIDIA H100, torch 2.9.0 |") == 2

    unlabelled = [{key: value for key, value in row.items() if key not in ("hardware", "torch")} for row in rows]
    (out / "verdict.json").write_text(json.dumps({"hardware": "CPU AMD EPYC", "torch": "2.14.1", "rows": unlabelled}))
    report = run_reference(QUICK_SETTINGS, tmp_path / "runs", out, quick=True)
    assert [(row["hardware"], row["torch"]) for row in report["rows"]] == [("CPU AMD EPYC", "2.14.1")] * 2
    assert "hardware" not in json.loads((out / "verdict.json").read_text())


@pytest.mark.parametrize("runs_dir", ["/proc/1/nonexistent", "{tmp}/no-parent/runs", "{tmp}/a-file"])
def test_a_runs_folder_that_cannot_be_written_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys, runs_dir):
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "out"
    out.mkdir()
    rows = stored_rows("GPU NVIDIA H100", "2.9.0")
    (out / "verdict.json").write_text(json.dumps({"rows": rows}))
    monkeypatch.setattr(sys, "argv", ["autolr", "bench", "verdict", "--quick", "--runs-dir",
                                      runs_dir.format(tmp=tmp_path), "--out-dir", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    errors = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(errors) == 1 and "runs folder" in errors[0], errors
    assert json.loads((out / "verdict.json").read_text()) == {"rows": rows} and not (out / "verdict.md").exists()
