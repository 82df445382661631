"""Writing a study's report folder: index.html, trials.csv, ranking.csv, best_schedule.json, assets."""

from __future__ import annotations

import datetime
import math
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly

from autolr.redact import redact
from autolr.report import charts, html
from autolr.report.horizon import horizon_check
from autolr.report.rank import Ranking, baseline_gains, family_scores, in_score_unit, rank, trials_table
from autolr.report.reproduce import STUDY_FILE, reproduce_command, study_toml
from autolr.schedule.spec import ScheduleSpec
from autolr.study.records import StudyRecord
from autolr.version import __version__

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@dataclass(frozen=True)
class ReportPaths:
    """Where a report's files were written (``best_schedule`` is None until a trial completes,
    ``study_file`` None for a study run from a Python objective)."""

    out_dir: Path
    index_html: Path
    trials_csv: Path
    ranking_csv: Path
    best_schedule: Path | None
    study_file: Path | None = None


def write_report(record: StudyRecord, out_dir: Path | str) -> ReportPaths:
    """Write the report of ``record`` into ``out_dir`` (created if needed) and return the paths.

    Secrets (passwords in storage URLs) are removed from the record first. Each file is
    replaced atomically, so a report rebuilt while a search runs, or opened while being
    rebuilt, is never half written; the page says when the search had not finished.
    """
    record = in_score_unit(redact(record))  # a language model's loss in bits per byte
    out_dir = Path(out_dir)
    (out_dir / "assets").mkdir(parents=True, exist_ok=True)
    ranking = rank(record)
    trials_csv, ranking_csv = out_dir / "trials.csv", out_dir / "ranking.csv"
    _write_atomic(trials_csv, trials_table(record).to_csv(index=False))
    _write_atomic(ranking_csv, ranking.table.drop(columns=["spec", "rescore_index"]).to_csv(index=False))
    spec = best_spec(record, ranking)
    best_path: Path | None = None
    if spec is not None:
        best_path = out_dir / "best_schedule.json"
        _write_atomic(best_path, spec.to_text("json"))
    study_text = study_toml(record.config)
    study_file: Path | None = None
    if study_text is not None:
        study_file = out_dir / STUDY_FILE
        _write_atomic(study_file, study_text)
    gains = baseline_gains(record, ranking)
    families = family_scores(record)
    figures = charts.report_figures(record, ranking, families, gains)
    chart_data = html.chart_json({name: figure for name, (figure, _) in figures.items()})
    _write_atomic(out_dir / "charts.json", chart_data)
    _copy_plotly(out_dir / "assets" / "plotly.min.js")
    index_html = out_dir / "index.html"
    horizon = horizon_check(record)
    _write_atomic(index_html, html.render({
        **html.study_facts(record, spec),
        "recommendation": html.recommendation(record, ranking, gains),
        "best_spec_json": spec.to_text("json") if spec else "", "snippet": html.LOAD_SNIPPET if spec else "",
        "command": reproduce_command(record.config, record.name, out_dir),
        "study_file": STUDY_FILE if study_file else "",
        "rule": ranking.rule, "ranking_rows": html.ranking_rows(ranking), "ranked_count": len(ranking.table),
        "charts": [{"name": name, "caption": caption, "width": "wide" if name in charts.WIDE else ""}
                   for name, (_, caption) in figures.items()],
        "chart_note": charts.importance_note(record, figures),
        "chart_data": chart_data, "gains": html.gain_rows(gains), "families": html.family_rows(families),
        "horizon": horizon.sentence if horizon else "", "horizon_rows": horizon.rows if horizon else [],
        "version": __version__,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }))
    return ReportPaths(out_dir, index_html, trials_csv, ranking_csv, best_path, study_file)


def best_spec(record: StudyRecord, ranking: Ranking) -> ScheduleSpec | None:
    """The recommended configuration as a ScheduleSpec with provenance and optimizer settings."""
    best = ranking.best
    if best is None:
        return None
    config = record.config
    provenance = {
        "study": record.name, "dataset": config.get("dataset"), "model": config.get("model"),
        "epochs": config.get("epochs"), "trial": best["trial"],
        "rule": ranking.rule, "val_mean": best["val_mean"], "seeds": int(best["seeds"]),
    }
    if ranking.rescored:
        provenance.update(val_std=best["val_std"], test_mean=best["test_mean"], test_std=best["test_std"],
                          epochs=record.rescored[0].epochs or config.get("epochs"), search_epochs=config.get("epochs"))
    if ranking.verdict is not None:
        provenance.update(verdict=ranking.verdict.outcome, verdict_text=ranking.verdict.sentence)
    provenance = {key: _plain(value) for key, value in provenance.items() if _storable(value)}
    optimizer = best["spec"].get("optimizer") or config.get("optimizer")
    return ScheduleSpec.from_dict({**best["spec"], "optimizer": optimizer, "provenance": provenance})


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, so the spec's JSON holds plain values."""
    return value.item() if hasattr(value, "item") else value


def _storable(value: Any) -> bool:
    """Whether a provenance value can be stored (specs hold no nulls and no NaN)."""
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, never half written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _copy_plotly(target: Path) -> None:
    """Put Plotly's JavaScript bundle beside the page (once), so charts work offline."""
    if not target.exists() or target.stat().st_size != PLOTLY_JS.stat().st_size:
        temporary = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(PLOTLY_JS, temporary)
        os.replace(temporary, target)
