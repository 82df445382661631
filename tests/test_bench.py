"""`autolr bench`: every row runs the same search and the table lands in reports/bench (no speed asserted)."""

import json
from pathlib import Path

import pytest

from typer.testing import CliRunner

from autolr.cli import app
from autolr.errors import UserError


@pytest.mark.slow
def test_bench_runs_every_row_and_writes_the_table(tmp_path):
    out_dir = tmp_path / "bench"
    result = CliRunner().invoke(app, [
        "bench", "--dataset", "digits", "--epochs", "2", "--trials", "3", "--tutorial-trials", "2",
        "--population-sizes", "2,4", "--module-population", "2", "--module-trials", "2", "--device", "cpu",
        "--lm-population", "2", "--lm-trials", "2", "--lm-data-dir", str(Path(__file__).parent / "text"),
        "--out-dir", str(out_dir),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((out_dir / "latest.json").read_text())
    assert report["device"].startswith("CPU ")
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows) == ["tutorial_loop", "single_trial", "population_K2", "population_K4",
                          "resnet_single_trial", "resnet_population_K2", "transformer_single_trial",
                          "transformer_population_K2"]
    assert [row["trials"] for row in rows.values()] == [2, 3, 3, 4, 2, 2, 2, 2]  # a population runs at least K trials
    lm_single, lm_population = rows["transformer_single_trial"], rows["transformer_population_K2"]
    assert lm_population["ratio_to_single"] == pytest.approx(
        lm_population["trials_per_minute"] / lm_single["trials_per_minute"])
    assert rows["population_K4"]["population_size"] == rows["resnet_population_K2"]["population_size"] * 2 == 4
    assert rows["resnet_population_K2"]["ratio_to_single"] == pytest.approx(
        rows["resnet_population_K2"]["trials_per_minute"] / rows["resnet_single_trial"]["trials_per_minute"])
    assert rows["population_K2"]["ratio_to_single"] == pytest.approx(
        rows["population_K2"]["trials_per_minute"] / rows["single_trial"]["trials_per_minute"])
    assert rows["tutorial_loop"]["ratio_to_tutorial"] == 1.0
    for row in rows.values():
        assert row["completed"] + row["pruned"] + row["diverged"] == row["trials"]
        assert row["trials_per_minute"] > 0
        assert row["ratio_to_tutorial"] == row["trials_per_minute"] / rows["tutorial_loop"]["trials_per_minute"]
        assert 0.2 < row["best_val_accuracy"] <= 1.0  # digits after 2 epochs: above chance (0.1)
    markdown = (out_dir / "latest.md").read_text()
    assert "| population_K4 | 4 |" in markdown and "scikit-learn" in markdown
    assert (out_dir / "latest.csv").read_text().splitlines()[0].startswith("name,trials,seconds,trials_per_minute")
    assert "trials/min" in result.output


def test_bad_population_sizes_are_a_user_error(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--population-sizes", "4,x", "--out-dir", str(tmp_path)])
    assert isinstance(result.exception, UserError) and "--population-sizes" in str(result.exception)
    result = CliRunner().invoke(app, ["bench", "--population-sizes", "0", "--dataset", "digits", "--out-dir", str(tmp_path)])
    assert isinstance(result.exception, UserError) and "population sizes must be positive" in str(result.exception)
