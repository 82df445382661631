"""`autolr bench verdict`: the reference results. Does a study beat the schedules a user would tune?

For each built-in setting (dataset x model, the shipped study's budget): the whole study
(range test, tuned baselines, search, verdict at the search's length), then its verdict again
at 3x that length (``target_epochs``: only the re-scoring reruns), and the wall time of a
plain tensor-resident loop (``train_trial``, one run at a time) training the same
tuned-baseline grid at the search's length. Every number is a test-split mean over the
verdict's fresh seeds, with paired 95% intervals; "no gain" rows are results too.

Each row carries the hardware and torch version it was measured on: a resumed run keeps
the rows it finds (and their labels) and labels only the rows it measures, so rows from
several machines can share the table but are never relabelled.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from autolr.errors import UserError
from autolr.study.records import RescoreRecord, StudyRecord
from autolr.study.verdict import Verdict, counted, describe, failure_score, mean, paired_gain

SETTINGS = (("mnist", "mlp"), ("fashion-mnist", "mlp"), ("mnist", "cnn"), ("fashion-mnist", "cnn"))
QUICK_SETTINGS = (("digits", "mlp"),)
HORIZON_FACTORS = (1, 3)  # verdict lengths, as multiples of the search's epochs
GRID_LRS = (0.005, 1.0, 12)  # the independent cosine grid: 12 peak LRs log-spaced from 0.005 to 1


def run_reference(settings: tuple[tuple[str, str], ...], runs_dir: Path, out_dir: Path, quick: bool = False,
                  on_row: Any = None) -> dict[str, Any]:
    """Every setting's rows (one per verdict length, each with the hardware it ran on), written to
    ``out_dir`` after each row; a row ``out_dir`` already holds is kept, so a stopped run
    resumes (its studies resume too: nothing finished is trained again). UserError, before
    anything is written, when ``runs_dir`` or ``out_dir`` cannot be created or written."""
    from autolr.pipeline.run import run_study
    from autolr.study.config import default_study

    for folder, what in ((runs_dir, "runs folder"), (out_dir, "output folder")):
        writable_folder(folder, what)
    done = _stored_rows(out_dir / "verdict.json")
    rows: list[dict[str, Any]] = []
    for index, (dataset, model) in enumerate(settings):
        setting = f"{dataset} {model}"
        later = [row for d, m in settings[index + 1:] for row in done.get(f"{d} {m}", [])]  # kept in every write
        config = default_study(dataset).whole().replace(name=f"reference-{dataset}-{model}", model=model)
        if quick:
            config = config.replace(trials=10, baseline_lrs=1, schedule_free=True, rescore_seeds=2, rescore_top=1,
                                    epochs=2, population=8)
        kept = {row["epochs"]: row for row in done.get(setting, [])}
        setting_rows: list[dict[str, Any]] = []
        record = None  # the study's record, once a row ran it
        for factor in HORIZON_FACTORS:
            target = config.replace(target_epochs=config.epochs * factor)
            if target.verdict_epochs in kept:
                setting_rows.append(kept[target.verdict_epochs])
                continue
            run = run_study(target, out=runs_dir)
            record = run.record
            study_wall = float(run.record.meta.get("wall_time_s", run.wall_time_s))  # summed over resumed runs
            row = {**verdict_row(run.record, setting, study_wall), **measured_on()}
            row["grid_cosine"] = grid_cosine(run.record, target)
            setting_rows.append(row)
            if on_row:
                on_row(row)
            write_reference(_report(rows + setting_rows + later), out_dir)  # a stopped run keeps this row
        if any(row["plain_loop_grid_s"] is None for row in setting_rows):
            if record is None:  # both rows were kept: the stored study, nothing trained again
                record = run_study(config, out=runs_dir).record
            seconds = plain_loop_seconds(record, config)
            for row in setting_rows:  # only rows measured here: a kept row keeps its machine's time
                if row["plain_loop_grid_s"] is None:
                    row["plain_loop_grid_s"] = seconds
        rows += setting_rows
        write_reference(_report(rows + later), out_dir)
    return _report(rows)


def _report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": rows}


def measured_on() -> dict[str, str]:
    """The ``hardware`` and ``torch`` version of this machine, as a row records them."""
    return {"hardware": hardware(), "torch": torch.__version__}


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (its parent must exist) unless it is one; UserError when it cannot be created
    or written."""
    if not folder.is_dir():
        try:
            folder.mkdir()
        except OSError as error:
            raise UserError(f"the {what} {folder} is not a folder and cannot be created: "
                            f"{error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the {what} {folder} cannot be written by this user")


def _stored_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of an earlier run's ``verdict.json``, by setting (none when there is no file). A row
    without its own ``hardware``/``torch`` (a file from before rows carried them) takes the file's."""
    if not path.exists():
        return {}
    stored = json.loads(path.read_text(encoding="utf-8"))
    label = {key: stored[key] for key in ("hardware", "torch") if key in stored}
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for row in stored["rows"]:
        by_setting.setdefault(row["setting"], []).append({**label, **row})
    return by_setting


def _study_verdict(record: StudyRecord) -> Verdict:
    """The study's verdict, as its report ranks it; RuntimeError when it has none (no trial completed)."""
    from autolr.report.rank import rank

    verdict = rank(record).verdict
    if verdict is None:
        raise RuntimeError(f"study {record.name!r} has no verdict: no trial completed")
    return verdict


def verdict_row(record: StudyRecord, setting: str, study_wall_s: float) -> dict[str, Any]:
    """One setting at one verdict length: what was exported and how it compares on test."""
    from autolr.study.records import maximizes

    verdict = _study_verdict(record)
    rescored, maximize = record.rescored, maximizes(record)
    test_failed = failure_score([r.test_scores for r in rescored], maximize)
    exported = rescored[verdict.exported]
    by_kind = {r.baseline: r for r in rescored if r.baseline}

    def test_mean(item: RescoreRecord | None) -> float | None:
        return None if item is None else mean(counted(item.test_scores, test_failed))

    def versus(item: RescoreRecord | None) -> dict[str, Any] | None:
        if item is None:
            return None
        gain = paired_gain(counted(exported.test_scores, test_failed), counted(item.test_scores, test_failed), maximize,
                           max(exported.test_resolution, item.test_resolution))
        return {"mean": gain.mean, "low": gain.low, "high": gain.high, "same": item is exported}

    searched = rescored[verdict.best_searched] if verdict.best_searched is not None else None
    return {
        "setting": setting, "search_epochs": record.config.get("epochs"), "epochs": exported.epochs,
        "trials": len(record.trials), "baseline_trials": sum(bool(trial.baseline) for trial in record.trials),
        "seeds": len(exported.seeds), "outcome": verdict.outcome, "sentence": verdict.sentence,
        "exported": describe(exported), "test_exported": test_mean(exported), "test_best_searched": test_mean(searched),
        "test_cosine": test_mean(by_kind.get("cosine")), "test_schedule_free": test_mean(by_kind.get("schedule_free")),
        "exported_vs_cosine": versus(by_kind.get("cosine")),
        "exported_vs_schedule_free": versus(by_kind.get("schedule_free")),
        "val_gain": None if verdict.val_gain is None else vars(verdict.val_gain),
        "failed_seeds": {describe(r): failed for r in rescored if (failed := sum(map(math.isnan, r.val_scores)))},
        "study_wall_s": study_wall_s, "plain_loop_grid_s": None,
    }


def grid_cosine(record: StudyRecord, config: Any) -> dict[str, Any]:
    """An independent check of the export: cosine to zero with its peak LR picked on validation
    (one seed) from ``GRID_LRS`` at the verdict's length, then trained from the verdict's seeds
    (same weights and batch order) and compared with the export on test, paired by seed."""
    from autolr.jobs.builtin import BuiltinJob
    from autolr.pipeline.steps import resolve_device
    from autolr.schedule.spec import ScheduleSpec
    from autolr.space.baselines import lr_ladder
    from autolr.study.records import maximizes
    from autolr.training.population import train_population

    device = resolve_device(config.device)
    job = BuiltinJob(config, device)
    splits = job.splits
    epochs, maximize = config.verdict_epochs, maximizes(record)
    specs = [ScheduleSpec("cosine", lr, params={"min_factor": 0.0}, optimizer=config.optimizer)
             for lr in lr_ladder(*GRID_LRS)]
    results = train_population(specs, config.model, splits, epochs, config.batch_size, [config.seed] * len(specs),
                               data_seed=config.seed, metric=config.metric, device=device)
    sign = 1.0 if maximize else -1.0
    keys = [sign * r.final_score if r.status == "complete" and r.final_score is not None else -math.inf
            for r in results]
    best = max(range(len(specs)), key=lambda i: (keys[i], -i))
    exported = record.rescored[_study_verdict(record).exported]
    _, (test,) = job.final_scores([specs[best]], exported.seeds, epochs, 1, score_test=True)
    failed_at = failure_score([test, exported.test_scores], maximize)
    gain = paired_gain(counted(exported.test_scores, failed_at), counted(test, failed_at), maximize,
                       exported.test_resolution)
    return {"lr": specs[best].lr, "test": mean(counted(test, failed_at)), "exported_minus_grid": vars(gain)}


def plain_loop_seconds(record: StudyRecord, config: Any) -> float:
    """Seconds a plain loop (``train_trial``: tensors on the device, one run at a time) takes to
    train the study's tuned-baseline grid at the search's epochs."""
    from autolr.jobs.builtin import BuiltinJob
    from autolr.pipeline.steps import resolve_device
    from autolr.schedule.spec import ScheduleSpec
    from autolr.training.train import train_trial

    device = resolve_device(config.device)
    splits = BuiltinJob(config, device).splits
    specs = [ScheduleSpec.from_dict(trial.spec) for trial in record.trials if trial.baseline and trial.spec]
    started = time.perf_counter()
    for spec in specs:
        train_trial(spec, config.model, splits, config.epochs, config.batch_size, config.seed, metric=config.metric,
                    device=device)
    return time.perf_counter() - started


def hardware() -> str:
    """This machine in a few words: the GPU's name, else the CPU model, its cores and threads."""
    from autolr.training.device import describe_hardware

    return describe_hardware("cuda" if torch.cuda.is_available() else "cpu")


def _interval(gain: dict[str, Any] | None) -> str:
    if gain is None:
        return "–"
    if gain.get("same"):
        return "is it"
    if gain["low"] is None:
        return f"{gain['mean']:+.4f}"
    return f"{gain['mean']:+.4f} ({gain['low']:+.4f} to {gain['high']:+.4f})"


def _grid(grid: dict[str, Any] | None) -> str:
    return "–" if grid is None else f"{grid['test']:.4f} ({grid['lr']:.3g})"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def markdown(report: dict[str, Any]) -> str:
    """The reference table and each verdict's sentence."""
    lines = [
        "# Reference results: searched schedules against LR-tuned baselines",
        "",
        "Written by `autolr bench verdict`; each row was measured on the machine and torch version in its last "
        "column. Each setting is the shipped "
        "study of its dataset (`studies/<dataset>.toml`) with that model; its trials (of them, tuned baselines) "
        "are in the table. Test accuracy means over the verdict's fresh seeds (a diverged seed counts as 0); "
        "intervals are paired 95% t intervals over those seeds. \"is it\": the export is that baseline.",
        "",
        "| setting | trials (baselines) | verdict epochs | verdict | exported | test: exported | best searched "
        "| tuned cosine | schedule-free | exported − tuned cosine | exported − schedule-free | grid cosine (LR) "
        "| exported − grid cosine "
        "| study wall (s) | plain loop, baseline grid (s) | measured on |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        plain = "–" if row["plain_loop_grid_s"] is None else f"{row['plain_loop_grid_s']:.0f}"
        lines.append(
            f"| {row['setting']} | {row['trials']} ({row['baseline_trials']}) | {row['epochs']} | {row['outcome']} "
            f"| {row['exported']} | {_score(row['test_exported'])} | {_score(row['test_best_searched'])} "
            f"| {_score(row['test_cosine'])} | {_score(row['test_schedule_free'])} "
            f"| {_interval(row['exported_vs_cosine'])} | {_interval(row['exported_vs_schedule_free'])} "
            f"| {_grid(row.get('grid_cosine'))} "
            f"| {_interval((row.get('grid_cosine') or {}).get('exported_minus_grid'))} "
            f"| {row['study_wall_s']:.0f} | {plain} | {row['hardware']}, torch {row['torch']} |")
    lines += ["", "Study wall time at 3x includes the first verdict (the search is not rerun; only the re-scoring "
              "at the longer length). The plain loop trains the same tuned-baseline grid one run at a time at the "
              "search's epochs. Grid cosine: an independent check outside the study, cosine to zero with its LR "
              "picked on validation (one seed) from 12 LRs log-spaced from 0.005 to 1 at the verdict's length, then "
              "trained from the verdict's seeds and compared with the export on test, paired by seed.", "",
              "## Verdicts", ""]
    lines += [f"- **{row['setting']}, {row['epochs']} epochs:** {row['sentence']}" for row in report["rows"]]
    return "\n".join(lines) + "\n"


def write_reference(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """``verdict.md`` and ``verdict.json`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "verdict.md", out_dir / "verdict.json"]
    paths[0].write_text(markdown(report), encoding="utf-8")
    paths[1].write_text(json.dumps(report, indent=1), encoding="utf-8")
    return paths
