"""The report's numbers and files: ranking rule, gains with intervals, trials.csv, best spec, safety."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import shlex
import statistics

import pandas as pd
import pytest
from report_records import HOSTILE, hostile_record, large_record, small_record

from autolr.study.records import RescoreRecord, TrialRecord
from autolr.report import write_report
from autolr.report.charts import MAX_CURVES
from autolr.report.html import LOAD_SNIPPET
from autolr.report.rank import baseline_gains, family_scores, rank
from autolr.redact import redact_text
from autolr.report.source import folder_name
from autolr.schedule.spec import load_spec
from autolr.study.config import load_study, packaged_study

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom (tables)


def test_ranking_by_rescored_mean_then_search_score():
    ranking = rank(small_record())
    table = ranking.table
    assert list(table["trial"]) == [1, 3, 5, 0, 8, 9, 6]
    assert list(table["rank"]) == [1, 2, 3, 4, 5, 6, 7]
    assert list(table["rescored"]) == [True] * 4 + [False] * 3
    best = ranking.best
    assert best["val_mean"] == pytest.approx(statistics.mean([0.96, 0.97, 0.965]))
    assert best["val_std"] == pytest.approx(statistics.stdev([0.96, 0.97, 0.965]))
    assert best["test_mean"] == pytest.approx(statistics.mean([0.962, 0.96, 0.958]))
    assert table.loc[3, "baseline"] == "constant"
    assert "3 fresh seeds" in ranking.rule


def test_ranking_without_rescoring_uses_final_score_and_skips_unfinished_trials():
    ranking = rank(small_record(rescored=False))
    assert list(ranking.table["trial"]) == [3, 1, 5, 8, 0, 9, 6]  # trials 2, 7 pruned, 4 diverged
    assert ranking.best["val_mean"] == 0.97
    assert math.isnan(ranking.best["val_std"])
    assert "final validation accuracy" in ranking.rule


def test_ranking_minimize_reverses_order():
    record = small_record(rescored=False)
    record.config["direction"] = "minimize"
    assert list(rank(record).table["trial"]) == [6, 9, 0, 8, 5, 1, 3]


def test_ranking_ties_go_to_lower_trial_number():
    record = small_record(rescored=False)
    record.trials[8] = dataclasses.replace(record.trials[8], value=0.97)  # trial 8 ties trial 3
    assert list(rank(record).table["trial"])[:2] == [3, 8]


def test_gain_over_baseline_paired_interval_on_shared_seeds():
    record = small_record()
    gains = {gain.split: gain for gain in baseline_gains(record, rank(record))}
    differences = [0.96 - 0.935, 0.97 - 0.94, 0.965 - 0.945]
    half = T_975_DF2 * statistics.stdev(differences) / math.sqrt(3)
    validation = gains["validation"]
    assert validation.baseline == "constant, LR 0.05"
    assert validation.gain == pytest.approx(statistics.mean(differences))
    assert (validation.low, validation.high) == pytest.approx((validation.gain - half, validation.gain + half))
    assert "paired" in validation.method
    test_differences = [0.962 - 0.93, 0.96 - 0.935, 0.958 - 0.94]
    assert gains["test"].gain == pytest.approx(statistics.mean(test_differences))


def test_spreads_of_quantized_scores_are_floored_at_one_validation_row():
    """Every seed one image apart on 145 validation rows (spread 0): the ± columns and the gains' intervals
    show one row's step (1/145), not a certainty the scores cannot show."""
    record = small_record()
    step = 1 / 145
    ours, baseline = [131 / 145] * 3, [130 / 145] * 3
    record.rescored = [dataclasses.replace(record.rescored[1], val_scores=ours, val_resolution=step),
                       dataclasses.replace(record.rescored[3], val_scores=baseline, val_resolution=step)]
    ranking = rank(record)
    rescored = ranking.table[ranking.table["rescored"]]
    assert list(rescored["val_std"]) == pytest.approx([step, step])
    assert list(rescored["test_std"]) == pytest.approx([0.002, 0.005])  # a test spread above 0: unchanged
    validation = next(gain for gain in baseline_gains(record, ranking) if gain.split == "validation")
    half = T_975_DF2 * step / math.sqrt(3)
    assert (validation.gain, validation.low, validation.high) == pytest.approx((step, step - half, step + half))
    assert ranking.verdict.outcome == "no gain"


def test_gain_without_rescoring_is_a_single_run_difference():
    record = small_record(rescored=False)
    (gain,) = baseline_gains(record, rank(record))
    assert gain.gain == pytest.approx(0.97 - 0.93)
    assert gain.low is None and gain.high is None


def test_family_scores_name_the_winner_and_the_gap():
    families = family_scores(small_record()).set_index("family")
    assert families.index[0] == "cosine"
    assert families.loc["cosine", "best"] == 0.97
    assert families.loc["cosine", "median"] == statistics.median([0.96, 0.97, 0.95, 0.94, 0.91])
    assert families.loc["constant", "gap"] == pytest.approx(0.93 - 0.97)
    assert (families.loc["cosine", "trials"], families.loc["cosine", "pruned"]) == (6, 1)


def test_trials_csv_agrees_with_the_record(tmp_path):
    record = small_record()
    paths = write_report(record, tmp_path)
    table = pd.read_csv(paths.trials_csv)
    assert list(table["number"]) == [trial.number for trial in record.trials]
    for trial, (_, row) in zip(record.trials, table.iterrows()):
        assert row["state"] == trial.state
        assert row["family"] == trial.spec["family"]
        assert row["lr"] == trial.spec["lr"]
        assert row["epochs_run"] == trial.epochs_run
        assert row["duration_s"] == trial.duration_s
        assert (pd.isna(row["value"]) and trial.value is None) or row["value"] == trial.value
        curve = [row[f"val_epoch_{epoch}"] for epoch in range(1, 5)]
        assert curve[: len(trial.val_curve)] == pytest.approx(trial.val_curve)
        assert all(pd.isna(score) for score in curve[len(trial.val_curve):])
        if "min_factor" in trial.spec["params"]:
            assert row["params.min_factor"] == trial.spec["params"]["min_factor"]
        assert row["optimizer.momentum"] == 0.9
    assert table.loc[4, "error"] == "loss became nan"


def test_best_schedule_is_the_ranked_best_and_drives_an_optimizer(tmp_path):
    torch = pytest.importorskip("torch")
    record = small_record()
    paths = write_report(record, tmp_path)
    spec = load_spec(paths.best_schedule)
    assert (spec.family, spec.lr, spec.params["min_factor"]) == ("cosine", 0.1, 0.0)
    assert spec.optimizer["name"] == "sgd" and spec.optimizer["momentum"] == 0.9
    assert spec.provenance["trial"] == 1 and spec.provenance["study"] == "mnist-demo"
    assert spec.provenance["val_mean"] == pytest.approx(0.965)
    assert pd.read_csv(paths.ranking_csv).loc[0, "trial"] == spec.provenance["trial"]

    model = torch.nn.Linear(3, 1)
    optimizer = spec.build_optimizer(model.parameters())
    scheduler = spec.build(optimizer, total_steps=20)
    reference = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=spec.lr, momentum=0.9)
    torch_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=20)
    for _ in range(20):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"])
        model(torch.ones(3)).sum().backward()
        optimizer.step(), scheduler.step(), reference.step(), torch_scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_page_states_the_rule_and_ranks_the_table(tmp_path):
    record = small_record()
    page = write_report(record, tmp_path).index_html.read_text()
    assert rank(record).rule in page
    assert page.count("<tr class=\"best\">") == 1
    assert (tmp_path / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    assert "cdn" not in page.lower() and "https://" not in page
    charts = json.loads((tmp_path / "charts.json").read_text())
    assert sorted(charts) == sorted(re.findall(r'data-chart="(\w+)"', page))


def test_partial_banner_only_while_the_search_runs(tmp_path):
    record = small_record(finished=False)
    record.trials.append(TrialRecord(10, "running", record.trials[1].spec, [0.5], None, 1))
    assert "Partial report" in write_report(record, tmp_path / "running").index_html.read_text()
    assert "Partial report" not in write_report(small_record(), tmp_path / "done").index_html.read_text()


def test_empty_study_writes_a_page_without_a_best_schedule(tmp_path):
    record = small_record(rescored=False, finished=False)
    record.trials.clear()
    paths = write_report(record, tmp_path)
    assert paths.best_schedule is None and not (tmp_path / "best_schedule.json").exists()
    assert "No trial has completed yet" in paths.index_html.read_text()


def test_user_strings_are_escaped_in_the_page(tmp_path):
    page = write_report(hostile_record(), tmp_path).index_html.read_text()
    for raw in (HOSTILE, "<img src=x", "<script>alert(3)", "<b onmouseover"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b onmouseover=alert(4)&gt;" in page
    # inside the embedded chart JSON, "<" is a unicode escape, so "</script>" cannot end the element
    chart_json = page.split('id="chart-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in chart_json and "\\u003c" in chart_json


PASSWORD = "hunter2-s3cret"


def test_storage_password_never_written(tmp_path):
    record = small_record()
    url = f"postgresql://autolr:{PASSWORD}@db.example:5432/studies"
    record.config["storage"] = url
    record.meta["command"] = f"autolr search --storage {url} --name demo"
    record.trials[4] = dataclasses.replace(record.trials[4], error=f"could not write to {url}")
    record.rescored.append(RescoreRecord(8, {**record.trials[8].spec, "provenance": {"storage": url}},
                                         [1], [0.5], [0.5]))
    record.config["database"] = {"password": PASSWORD, "host": "db"}
    write_report(record, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "plotly.min.js":
            assert PASSWORD not in path.read_text(), path.name
    assert "postgresql://autolr:***@db.example:5432/studies" in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("text, expected", [
    ("postgresql://bob:pw@host/db", "postgresql://bob:***@host/db"),
    ("mysql+pymysql://bob:p@ss@host/db", "mysql+pymysql://bob:***@host/db"),
    ("redis://:token@host:6379", "redis://:***@host:6379"),
    ("host=db user=bob password=pw dbname=x", "host=db user=bob password=*** dbname=x"),
    ("postgresql://host/db?user=bob&password=pw", "postgresql://host/db?user=bob&password=***"),
    ("sqlite:///reports/demo/study.db", "sqlite:///reports/demo/study.db"),
])
def test_redact_text_masks_only_passwords(text, expected):
    assert redact_text(text) == expected


@pytest.mark.slow
def test_thousands_of_trials_keep_the_page_small(tmp_path):
    record = large_record(trials=3000, epochs=40)
    paths = write_report(record, tmp_path)
    assert paths.index_html.stat().st_size < 1_500_000
    page = paths.index_html.read_text()
    figures = json.loads(page.split('id="chart-data">', 1)[1].split("</script>", 1)[0])
    drawn = {number for trace in figures["learning_curves"]["data"] for number in trace.get("customdata") or []
             if number is not None}
    assert 0 < len(drawn) <= MAX_CURVES
    assert any("percentile" in (trace.get("name") or "") for trace in figures["learning_curves"]["data"])
    assert len(pd.read_csv(paths.trials_csv)) == 3000


def test_study_file_beside_the_report_reruns_the_same_study(tmp_path):
    config = packaged_study("mnist").replace(name="demo", epochs=2, families=["cosine", "wsd"], rescore_top=1)
    record = small_record(name="demo")
    record.config = config.to_dict()
    paths = write_report(record, tmp_path / "reports" / "demo")
    assert load_study(paths.study_file) == config
    command = shlex.split(html_text(paths).split("autolr search", 1)[1].split("<", 1)[0])
    assert command == ["--study", str(paths.study_file), "--name", "demo-rerun"]


def test_python_objective_study_has_no_study_file(tmp_path):
    record = small_record()
    record.config = {"name": "quadratic", "direction": "maximize", "epochs": 4}
    paths = write_report(record, tmp_path)
    assert paths.study_file is None and not (tmp_path / "study.toml").exists()
    assert "rerun that script" in html_text(paths)


def html_text(paths) -> str:
    return html.unescape(paths.index_html.read_text())


def test_trials_without_a_spec_or_curve_are_listed_not_ranked(tmp_path):
    record = small_record()
    record.trials.append(TrialRecord(10, "failed", {}, error="objective raised ValueError: bad batch"))
    record.trials.append(TrialRecord(11, "interrupted", record.trials[1].spec, [0.4, 0.5], None, 2))
    paths = write_report(record, tmp_path)
    table = pd.read_csv(paths.trials_csv).set_index("number")
    assert table.loc[10, "state"] == "failed" and table.loc[10, "error"].startswith("objective raised")
    assert table.loc[11, "val_epoch_2"] == 0.5
    assert 10 not in set(rank(record).table["trial"]) and 11 not in set(rank(record).table["trial"])
    assert '<li class="state-interrupted"><b>1</b> interrupted</li>' in paths.index_html.read_text()


def test_parameters_fixed_in_a_family_are_left_out_of_the_table():
    record = small_record(rescored=False)
    for number, pct_start in ((20, 0.2), (21, 0.3)):
        spec = {**record.trials[1].spec, "family": "onecycle", "params": {"pct_start": pct_start, "three_phase": False}}
        record.trials.append(TrialRecord(number, "complete", spec, [0.5, 0.99], 0.99 - number / 1000, 2))
    table = rank(record).table.set_index("trial")
    assert table.loc[20, "parameters"] == "pct_start=0.2"
    assert table.loc[3, "parameters"] == "min_factor=0.05"


def test_code_snippet_on_the_page_runs_with_the_exported_spec(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    paths = write_report(small_record(), tmp_path)
    snippet = html.unescape(paths.index_html.read_text()).split("<h3>Use it in your training loop</h3>", 1)[1]
    snippet = snippet.split("<pre><code>", 1)[1].split("</code></pre>", 1)[0]
    assert snippet == LOAD_SNIPPET
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(5)]
    namespace = {"model": model, "train_loader": batches, "epochs": 2, "loss_fn": torch.nn.functional.cross_entropy}
    monkeypatch.chdir(tmp_path)
    exec(snippet, namespace)
    spec = namespace["spec"]
    assert namespace["scheduler"].get_last_lr()[0] == pytest.approx(spec.lr_at(10, 10))
    assert namespace["optimizer"].param_groups[0]["nesterov"] is False


@pytest.mark.parametrize("name, folder", [
    ("mnist", "mnist"), ("<script>alert(1)</script>", "script_alert_1_script"), ("../../etc", "etc"),
    ("my study 2", "my_study_2"), ("...", "study"),
])
def test_study_names_become_safe_folder_names(name, folder):
    assert folder_name(name) == folder
