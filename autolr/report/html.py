"""The report page: the view of a ranked study rendered by Jinja2 (autoescaped) with Plotly charts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.io

from autolr.records import StudyRecord
from autolr.report.rank import Gain, Ranking, metric_name

TEMPLATES = Path(__file__).parent / "templates"
RANKING_ROWS = 30  # configurations shown in the page's ranking table (trials.csv has all)


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
    """The answer in one sentence: which schedule, its score with uncertainty, its gain over baselines."""
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
        sentence += f": final validation {metric} {format_score(best['val_mean'])} (one run)"
    validation = [gain for gain in gains if gain.split == "validation"]
    if validation:
        closest = min(validation, key=lambda gain: gain.gain)
        interval = ""
        if closest.low is not None:
            verdict = "" if closest.low > 0 else ": not a clear gain"
            interval = f" (95% interval {closest.low:+.4f} to {closest.high:+.4f}{verdict})"
        sentence += f"; {closest.gain:+.4f} over the strongest baseline, {closest.baseline}{interval}"
    return sentence + "."


def render(context: dict[str, Any]) -> str:
    """The page's HTML from its context; every value is escaped unless marked safe here."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    return environment.get_template("index.html.j2").render(**context)
