"""The report page: the view of a ranked study rendered by Jinja2 (autoescaped) with Plotly charts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.io

from autolr.report.rank import Gain, Ranking, metric_name, state_counts
from autolr.schedule.spec import ScheduleSpec
from autolr.study.records import StudyRecord

TEMPLATES = Path(__file__).parent / "templates"
RANKING_ROWS = 30  # configurations shown in the page's ranking table (trials.csv has all)
LOAD_SNIPPET = """\
from autolr.schedule.spec import load_spec

spec = load_spec("best_schedule.json")
optimizer = spec.build_optimizer(model.parameters())  # the settings it was tuned with
# total_steps counts scheduler.step() calls: batches here (or epochs, stepping per epoch)
scheduler = spec.build(optimizer, total_steps=epochs * len(train_loader))

for epoch in range(epochs):
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()
"""  # shown on the page: loads the exported spec into the user's training loop


def chart_json(figures: dict[str, Any]) -> str:
    """Figures as JSON safe to place inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` are written as JSON unicode escapes, so no string from a user
    (``</script>`` in a study name) can end the element; ``JSON.parse`` restores them.
    """
    text = "{" + ",".join(f"{json.dumps(name)}:{plotly.io.to_json(figure, validate=False)}"
                          for name, figure in figures.items()) + "}"
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def format_score(value: Any, digits: int = 4) -> str:
    """A score with ``digits`` decimals, or an en dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def format_duration(seconds: Any) -> str:
    """Seconds as ``1 h 02 min``, ``3 min 05 s`` or ``12.3 s``; an en dash when unknown."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


def describe_optimizer(settings: dict[str, Any] | None) -> str:
    """Optimizer settings in one line, e.g. ``sgd (momentum=0.9, weight_decay=0.0005)``."""
    if not settings:
        return "–"
    rest = ", ".join(f"{key}={value}" for key, value in settings.items() if key != "name")
    return f"{settings.get('name', '?')} ({rest})" if rest else str(settings.get("name", "?"))


def ranking_rows(ranking: Ranking) -> list[dict[str, Any]]:
    """The page's ranking table: display text and a sort value per cell."""
    rows = []
    for _, row in ranking.table.head(RANKING_ROWS).iterrows():
        has_std = not math.isnan(row["val_std"])
        rows.append({
            "rank": int(row["rank"]),
            "trial": "–" if pd.isna(row["trial"]) else int(row["trial"]),
            "family": row["family"], "baseline": row["baseline"] or "",
            "lr": f"{row['lr']:.3g}", "lr_value": row["lr"], "parameters": row["parameters"],
            "val": format_score(row["val_mean"]) + (f" ± {format_score(row['val_std'])}" if has_std else ""),
            "val_value": row["val_mean"], "seeds": int(row["seeds"]),
            "test": format_score(row["test_mean"]) + (
                f" ± {format_score(row['test_std'])}" if not math.isnan(row["test_std"]) else ""),
            "test_value": "" if math.isnan(row["test_mean"]) else row["test_mean"],
            "epochs": "–" if pd.isna(row["epochs_run"]) else int(row["epochs_run"]),
        })
    return rows


def recommendation(record: StudyRecord, ranking: Ranking, gains: list[Gain]) -> str:
    """The answer: the verdict in plain words with its numbers, then the exported schedule and its scores."""
    best = ranking.best
    if best is None:
        return "No trial has completed yet, so there is no recommendation."
    name = f"the {best['baseline']} baseline" if best["baseline"] else f"{best['family']}"
    metric = metric_name(record)
    sentence = f"Use {name} with peak LR {best['lr']:.3g}"
    if best["parameters"] != "no parameters":
        sentence += f" ({best['parameters']})"
    if ranking.rescored:
        sentence += (f": validation {metric} {format_score(best['val_mean'])} ± {format_score(best['val_std'])} "
                     f"over {int(best['seeds'])} seeds")
        if not math.isnan(best["test_mean"]):
            sentence += f", test {format_score(best['test_mean'])}"
    else:
        sentence += f": final validation {metric} {format_score(best['val_mean'])} (one run, not re-scored yet)"
    if ranking.verdict is not None:
        return f"{ranking.verdict.sentence} {sentence}."
    return sentence + "."


def study_facts(record: StudyRecord, spec: ScheduleSpec | None) -> dict[str, Any]:
    """The page's header facts: name, partial-search notice, summary pairs, counts per state."""
    config, meta = record.config, record.meta
    summary = [
        ("Dataset", meta.get("dataset") or config.get("dataset", "–")),
        ("Model", meta.get("model") or config.get("model", "–")),
        ("Optimizer", describe_optimizer(spec.optimizer if spec else config.get("optimizer"))),
        ("Budget", _budget(config)), ("Hardware", meta.get("hardware", "–")),
        ("Wall time", format_duration(meta.get("wall_time_s"))),
        ("Backend", meta.get("backend") or config.get("backend", "–")),
        ("Trials", len(record.trials)), ("Storage", config.get("storage") or "the study's folder"),
        ("Data from", meta.get("data_source", "–")),
    ]
    running = sum(trial.state == "running" for trial in record.trials)
    partial = ""
    if meta.get("finished") is not True:
        partial = (f"the search is still running ({running} trials in progress)." if running else
                   "the search has not finished: it is starting or re-scoring, or it was stopped "
                   "(rerun its command to resume it).")
    return {"name": record.name, "partial": partial, "counts": state_counts(record), "notes": meta.get("notes") or [],
            "summary": [(label, str(value)) for label, value in summary]}


def _budget(config: dict[str, Any]) -> str:
    parts = [f"{config[key]} {label}" for key, label in (("trials", "trials"), ("epochs", "epochs each"),
                                                         ("batch_size", "per batch")) if key in config]
    return ", ".join(parts) or "–"


def gain_rows(gains: list[Gain]) -> list[dict[str, str]]:
    """The gains table: one row of display text per baseline and split."""
    return [_gain_row(gain) for gain in gains]


def _gain_row(gain: Gain) -> dict[str, str]:
    interval = f"{gain.low:+.4f} to {gain.high:+.4f}" if gain.low is not None else "–"
    return {"baseline": gain.baseline, "split": gain.split, "baseline_score": format_score(gain.baseline_score),
            "best_score": format_score(gain.best_score), "gain": f"{gain.gain:+.4f}", "interval": interval,
            "method": gain.method}


def family_rows(families: pd.DataFrame) -> list[dict[str, Any]]:
    """The families table (from ``rank.family_scores``): display text per family, best first."""
    return [_family_row(row) for _, row in families.iterrows()]


def _family_row(row: Any) -> dict[str, Any]:
    return {"family": row["family"], "trials": int(row["trials"]), "complete": int(row["complete"]),
            "pruned": int(row["pruned"]), "best": format_score(row["best"]),
            "median": format_score(row["median"]),
            "gap": "best" if row["gap"] == 0 else format_score(row["gap"])}


def render(context: dict[str, Any]) -> str:
    """The page's HTML from its context; every value is escaped unless marked safe here."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    return environment.get_template("index.html.j2").render(**context)
