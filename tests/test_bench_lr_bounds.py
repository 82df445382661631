"""`autolr bench lr-bounds`: the grid's best LR and good band, bounds from calibration settings, the table."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autolr.bench import lr_bounds as bench
from autolr.bench.lr_bounds_analysis import Bounds, derive_bounds, grid_best
from autolr.cli import app, main

REFERENCE = Path(__file__).parent.parent / "reports" / "reference" / "lr-bounds.json"


def test_best_lr_is_the_highest_mean_over_seeds_and_a_diverged_seed_counts_zero():
    lrs = [0.01, 0.02, 0.04, 0.08, 0.16]
    scores = [[0.90, 0.92], [0.950, 0.954], [0.951, 0.955], [0.99, None], [None, None]]
    best = grid_best(lrs, scores)
    assert best.mean_scores == pytest.approx([0.91, 0.952, 0.953, 0.495, 0.0])
    assert (best.best_lr, best.best_index, best.edge) == (0.04, 2, False)  # 0.08 has one great seed, one diverged
    assert best.good_lrs == [0.02, 0.04]  # 0.952 is within 0.3 points of 0.953; 0.91 is not


def test_good_band_holds_every_point_within_the_band_even_when_not_adjacent():
    best = grid_best([1.0, 2.0, 4.0], [[0.800], [0.750], [0.798]], band=0.003)
    assert best.best_lr == 1.0 and best.good_lrs == [1.0, 4.0]
    assert grid_best([1.0, 2.0, 4.0], [[0.800], [0.750], [0.798]], band=0.001).good_lrs == [1.0]


def test_a_best_lr_at_either_end_of_the_grid_is_flagged_edge_and_a_tie_takes_the_lower_lr():
    rising = grid_best([1.0, 2.0, 4.0, 8.0], [[0.5], [0.6], [0.7], [0.8]])
    assert rising.best_lr == 8.0 and rising.edge
    tie = grid_best([1.0, 2.0, 4.0], [[0.5], [0.7], [0.7]])
    assert tie.best_lr == 2.0 and not tie.edge
    assert grid_best([1.0, 2.0, 4.0], [[0.9], [0.7], [0.7]]).edge


def test_grid_best_needs_one_row_of_scores_per_lr():
    with pytest.raises(ValueError, match="one row of scores per LR"):
        grid_best([1.0, 2.0], [[0.5]])


def test_bounds_hold_every_ratio_widened_by_the_margin_and_rounded_outwards():
    bounds = derive_bounds([0.5, 1.61, 0.9], margin=1.5)
    assert (bounds.lo, bounds.hi) == (0.33, 2.5)  # 0.5 / 1.5 = 0.333 -> 0.33; 1.61 * 1.5 = 2.415 -> 2.5
    assert all(bounds.contains(r) for r in (0.5, 1.61, 0.9, 0.34, 2.45))
    assert not bounds.contains(0.32) and not bounds.contains(2.6)
    assert derive_bounds([0.5], margin=1.0) == Bounds(0.5, 0.5)
    with pytest.raises(ValueError, match="margin"):
        derive_bounds([0.5], margin=0.5)


def _run(role: str, best_index: int, loss_min: float = 0.1) -> bench.SettingRun:
    """A synthetic setting whose every family peaks at grid point ``best_index`` (a 5-point grid, 2 seeds)."""
    lrs = [loss_min * factor for factor in (0.25, 0.5, 1.0, 2.0, 4.0)]
    scores = [[0.9 - 0.05 * abs(i - best_index)] * 2 for i in range(len(lrs))]
    points = bench.RangePoints(loss_min / 4, loss_min, loss_min * 30, "diverged", (loss_min / 40, loss_min), 1.0)
    setting = bench.Setting("digits", "mlp", 10, "sgd", role)
    return bench.SettingRun(setting, 1294, points,
                            {family: bench.FamilyGrid(family, lrs, scores, 1.0) for family in bench.FAMILY_PARAMS})


def test_bounds_come_from_calibration_settings_only_and_are_checked_on_held_out_and_fresh_ones():
    runs = [_run(bench.CALIBRATION, 1), _run(bench.CALIBRATION, 3, loss_min=0.02),
            _run(bench.HELD_OUT, 2), _run(bench.HELD_OUT, 4), _run(bench.FRESH, 0), _run(bench.FRESH, 1),
            _run(bench.FRESH, 3)]
    found = bench.family_bounds(runs, margin=2.0)
    assert set(found) == set(bench.FAMILY_PARAMS)
    cosine = found["cosine"]
    assert cosine.calibration_ratios == pytest.approx([0.5, 2.0])
    assert (cosine.bounds.lo, cosine.bounds.hi) == (0.25, 4.0)
    assert (cosine.held_out_inside, cosine.held_out_total) == (2, 2)  # ratios 1.0 and 4.0 (on the bound)
    assert (cosine.fresh_inside, cosine.fresh_total) == (3, 3)  # ratios 0.25 (on the bound), 0.5 and 2.0
    narrow = bench.family_bounds(runs, margin=1.0)["cosine"]
    assert (narrow.bounds.lo, narrow.bounds.hi, narrow.held_out_inside, narrow.fresh_inside) == (0.5, 2.0, 1, 2)


def test_the_table_flags_a_best_lr_at_the_grid_edge():
    runs = [_run(bench.CALIBRATION, 4), _run(bench.HELD_OUT, 2)]
    size = bench.BoundsSize(settings=tuple(run.setting for run in runs), grid_points=5, grid_low=0.25, grid_high=4.0)
    text = bench.markdown(runs, size, "test CPU", 60.0)
    first_row = next(line for line in text.splitlines() if line.startswith("| digits mlp 10ep sgd | calibration"))
    assert first_row.count(" edge") == len(bench.FAMILY_PARAMS) and "(4.00x) edge" in first_row
    assert "| cosine | 4.00 (1 at the grid edge) | 2 | 8 | 0/1 | 0/0 | 1/2 |" in text  # 4.0 / 2 and 4.0 * 2


def _table_rows(text: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return header, rows


@pytest.mark.slow
def test_quick_run_on_digits_writes_a_well_formed_table_and_json(tmp_path, monkeypatch, capsys):
    result = CliRunner().invoke(app, ["bench", "lr-bounds", "--quick", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "lr-bounds.json").read_text())
    size = bench.QUICK
    assert [s["setting"]["role"] for s in payload["settings"]] == [bench.CALIBRATION, bench.HELD_OUT]
    for record in payload["settings"]:
        points = record["range_test"]
        assert points["suggestion"] == pytest.approx(points["loss_min"] / 4)
        assert points["loss_min"] < points["divergence"]
        for family, grid in record["families"].items():
            assert len(grid["lrs"]) == size.grid_points
            assert [len(seeds) for seeds in grid["scores"]] == [len(size.seeds)] * size.grid_points
            assert grid["lrs"][0] == pytest.approx(points["loss_min"] / 16) and grid["lrs"][-1] == pytest.approx(
                points["loss_min"] * 8)
            assert grid["best_lr"] in grid["lrs"] and grid["best_lr"] in grid["good_lrs"]
            assert max(grid["mean_scores"]) > 0.5, family  # digits after 2 epochs: far above chance (0.1)
    assert set(payload["derived_bounds"]) == set(bench.FAMILY_PARAMS)
    assert all(b["held_out_total"] == 1 for b in payload["derived_bounds"].values())

    text = (tmp_path / "lr-bounds.md").read_text()
    header, rows = _table_rows(text, "| setting | role |")
    assert [row[0] for row in rows] == [s.name for s in size.settings]
    assert all(len(row) == len(header) == 6 + len(bench.FAMILY_PARAMS) for row in rows)
    header, rows = _table_rows(text, "| family | calibration")
    assert [row[0] for row in rows] == list(bench.FAMILY_PARAMS)
    runs, read_size, wall_seconds = bench.read(tmp_path / "lr-bounds.json")  # all the table shows
    assert wall_seconds == payload["wall_seconds"]
    assert bench.markdown(runs, read_size, payload["hardware"], wall_seconds) == text

    # Resumed with only the first setting stored, it keeps that one as it was and runs the second again.
    first_only = {**payload, "settings": payload["settings"][:1]}
    (tmp_path / "lr-bounds.json").write_text(json.dumps(first_only))
    result = CliRunner().invoke(app, ["bench", "lr-bounds", "--quick", "--out-dir", str(tmp_path), "--resume"])
    assert result.exit_code == 0, result.output
    resumed = json.loads((tmp_path / "lr-bounds.json").read_text())
    assert resumed["settings"][0] == payload["settings"][0]  # its timings too: not trained again
    assert [s["setting"] for s in resumed["settings"]] == [s["setting"] for s in payload["settings"]]
    assert resumed["wall_seconds"] > payload["wall_seconds"]  # the stored run's time plus the new one's
    before = (tmp_path / "lr-bounds.json").read_text()
    monkeypatch.setattr(sys, "argv", ["autolr", "bench", "lr-bounds", "--out-dir", str(tmp_path), "--resume"])
    with pytest.raises(SystemExit) as exit_info:
        main()  # the full size's grid against the quick run's: one sentence, exit 2, the stored run unchanged
    assert exit_info.value.code == 2 and "another grid" in capsys.readouterr().err
    assert (tmp_path / "lr-bounds.json").read_text() == before


def test_the_bounds_constant_is_what_the_committed_reference_run_derives():
    runs, size, _ = bench.read(REFERENCE)
    assert [run.setting for run in runs] == list(bench.SETTINGS)  # the full run, every setting
    found = bench.family_bounds(runs, size.grid_step)
    assert bench.DERIVED_BOUNDS == {family: (f.bounds.lo, f.bounds.hi) for family, f in found.items()}
    recorded = json.loads(REFERENCE.read_text())["derived_bounds"]
    assert {family: (b["lo_factor"], b["hi_factor"]) for family, b in recorded.items()} == bench.DERIVED_BOUNDS


def test_the_search_uses_the_derived_bounds():
    from autolr.bench.lr_bounds import DERIVED_BOUNDS
    from autolr.families import FAMILIES

    for family, bounds in DERIVED_BOUNDS.items():
        assert FAMILIES[family].lr_factors == pytest.approx(tuple(bounds)), family
