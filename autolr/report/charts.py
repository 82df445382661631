"""The report's Plotly figures, built from the ranked tables; data kept small for big studies."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autolr.backends.optuna.importance import EVALUATOR_NAME, MIN_TRIALS, importance_by_family
from autolr.report.rank import Gain, Ranking, metric_name
from autolr.schedule.spec import ScheduleSpec
from autolr.study.records import StudyRecord

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
STATE_STYLES = {  # state -> (line colour, width, dash)
    "complete": ("rgba(31,119,180,0.35)", 1.0, "solid"),
    "pruned": ("rgba(120,120,120,0.45)", 1.0, "dot"),
    "diverged": ("rgba(214,39,40,0.6)", 1.0, "dash"),
    "interrupted": ("rgba(148,103,189,0.6)", 1.0, "dash"),
    "failed": ("rgba(214,39,40,0.6)", 1.0, "dashdot"),
    "running": ("rgba(44,160,44,0.6)", 1.0, "solid"),
}
LR_CURVE_POINTS = 201  # samples of training progress per LR curve
MAX_EPOCH_POINTS = 60  # learning curves longer than this are downsampled to this many epochs
MAX_CURVES = 400  # learning curves drawn one by one; the rest appear in the percentile band
DIGITS = 5  # significant digits kept in chart data
WIDE = {"learning_curves", "importance"}  # charts that take the page's full width


def report_figures(
    record: StudyRecord, ranking: Ranking, families: Any, gains_over_baselines: list[Gain],
) -> dict[str, tuple[go.Figure, str]]:
    """The page's charts in page order, name -> (figure, caption); charts without data are left out."""
    metric = metric_name(record)
    figures: dict[str, tuple[go.Figure, str]] = {}
    if record.range_test:
        figures["range_test"] = (range_test(record.range_test), "The search drew peak LRs from the shaded interval.")
    if ranking.best is not None:
        figures["lr_curves"] = (lr_curves(ranking),
                                "LR against training progress, so schedules of any run length compare.")
    if any(trial.val_curve for trial in record.trials):
        figures["learning_curves"] = (learning_curves(record, ranking, metric),
                                      "Validation score per epoch; pruned trials stop early (dotted).")
    if (families["complete"] > 0).any():
        figures["families"] = (family_scores(families, metric),
                               "Which family wins: box = quartiles, whiskers = worst to best trial.")
    if gains_over_baselines:
        figures["gains"] = (gains(gains_over_baselines, metric),
                            "Best searched minus each LR-tuned baseline; "
                            "bars are paired 95% intervals over fresh seeds.")
    importances = importance_by_family(record)
    if importances:
        figures["importance"] = (importance(importances, EVALUATOR_NAME), (
            "Computed within each family over its searched trials, since a family's parameters exist only in its "
            f"trials; families with fewer than {MIN_TRIALS} complete searched trials or one varying parameter are "
            "left out."))
    return figures


def importance_note(record: StudyRecord, figures: dict[str, Any]) -> str:
    """Why the page has no parameter-importance chart ("" when it has one, or when nothing searched completed)."""
    searched = sum(trial.state == "complete" and not trial.baseline for trial in record.trials)
    if "importance" in figures or not searched:
        return ""
    return (f"No parameter-importance chart: it needs a family with at least {MIN_TRIALS} complete searched trials "
            f"and two parameters that vary, and this study completed {searched} searched "
            f"trial{'s' if searched != 1 else ''} in all.")


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout = dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)), template="plotly_white",
        xaxis=dict(title=dict(text=x_title)), yaxis=dict(title=dict(text=y_title)),
        margin=dict(l=60, r=20, t=50, b=50), height=380, legend=dict(orientation="h", y=-0.2),
    )
    return {**layout, **extra}


def _round(value: float | None) -> float | None:
    """``value`` to DIGITS significant digits; None for missing or non-finite values (a gap)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, DIGITS - 1 - math.floor(math.log10(abs(value)))) if value else 0.0


def label(row: Any) -> str:
    """A ranking row's short name: ``#1 cosine (trial 12)`` or ``#3 baseline step``."""
    name = f"baseline {row['baseline']}" if row["baseline"] else str(row["family"])
    trial = "" if row["trial"] is None else f" (trial {row['trial']})"
    return f"#{row['rank']} {name}{trial}"


def lr_curves(ranking: Ranking, top: int = 5) -> go.Figure:
    """LR over training progress (fraction of the run) of the ``top`` ranked schedules, overlaid."""
    figure = go.Figure(layout=_layout(f"LR schedules of the top {top}", "training progress (fraction of run)", "LR"))
    progress = [step / (LR_CURVE_POINTS - 1) for step in range(LR_CURVE_POINTS)]
    for index, (_, row) in enumerate(ranking.table.head(top).iterrows()):
        spec = ScheduleSpec.from_dict(row["spec"])
        lrs = [_round(spec.lr_at(step, LR_CURVE_POINTS - 1)) for step in range(LR_CURVE_POINTS)]
        figure.add_scatter(x=progress, y=lrs, mode="lines", name=label(row),
                           line=dict(color=PALETTE[index % len(PALETTE)], width=3 if index == 0 else 1.8))
    return figure


def _epoch_indices(length: int) -> list[int]:
    """Epoch indices (0-based) kept for a curve: all, or MAX_EPOCH_POINTS spread evenly incl. the last."""
    if length <= MAX_EPOCH_POINTS:
        return list(range(length))
    return sorted({round(i * (length - 1) / (MAX_EPOCH_POINTS - 1)) for i in range(MAX_EPOCH_POINTS)})


def learning_curves(record: StudyRecord, ranking: Ranking, metric: str) -> go.Figure:
    """Validation score per epoch of every trial, by how it ended; the best trial on top.

    Up to MAX_CURVES trials are drawn one by one (each state one trace, curves separated by
    gaps); beyond that the best and an even sample by final score are drawn, and a band of
    the 10th-90th percentile and the median of all trials per epoch shows the rest.
    """
    curves = [trial for trial in record.trials if trial.val_curve]
    shown = _sample_curves(curves, ranking)
    title = "Learning curves of all trials" if len(shown) == len(curves) else (
        f"Learning curves: {len(shown)} of {len(curves)} trials drawn, band = all trials")
    figure = go.Figure(layout=_layout(title, "epoch", f"validation {metric}"))
    if len(shown) < len(curves):
        _add_percentile_band(figure, curves)
    for state, (colour, width, dash) in STATE_STYLES.items():
        members = [trial for trial in shown if trial.state == state]
        if not members:
            continue
        xs: list[int | None] = []
        ys: list[float | None] = []
        numbers: list[int | None] = []
        for trial in members:
            for epoch in _epoch_indices(len(trial.val_curve)):
                xs.append(epoch + 1)
                ys.append(_round(trial.val_curve[epoch]))
                numbers.append(trial.number)
            xs.append(None)  # a gap in the line between two trials
            ys.append(None)
            numbers.append(None)
        figure.add_scatter(x=xs, y=ys, customdata=numbers, mode="lines", name=f"{state} ({len(members)})",
                           line=dict(color=colour, width=width, dash=dash),
                           hovertemplate="trial %{customdata}<br>epoch %{x}: %{y}<extra>" + state + "</extra>")
    best = ranking.best
    if best is not None:
        trial = next((item for item in record.trials if item.number == best["trial"] and item.val_curve), None)
        if trial is not None:
            indices = _epoch_indices(len(trial.val_curve))
            figure.add_scatter(x=[i + 1 for i in indices], y=[_round(trial.val_curve[i]) for i in indices],
                               mode="lines+markers", name=f"recommended: {label(best)}",
                               line=dict(color="#d62728", width=3))
    return figure


def _sample_curves(curves: list, ranking: Ranking) -> list:
    """All curves if few; else the ranked ones first, then an even sample over final score."""
    if len(curves) <= MAX_CURVES:
        return curves
    ranked = set(ranking.table.head(MAX_CURVES // 4)["trial"])
    chosen = [trial for trial in curves if trial.number in ranked]
    rest = sorted((trial for trial in curves if trial.number not in ranked), key=lambda trial: trial.val_curve[-1])
    room = MAX_CURVES - len(chosen)
    chosen += [rest[round(i * (len(rest) - 1) / max(room - 1, 1))] for i in range(room)]
    return list({trial.number: trial for trial in chosen}.values())


def _add_percentile_band(figure: go.Figure, curves: list) -> None:
    longest = max(len(trial.val_curve) for trial in curves)
    epochs, low, median, high = [], [], [], []
    for epoch in _epoch_indices(longest):
        scores = sorted(score for trial in curves if len(trial.val_curve) > epoch
                        if math.isfinite(score := trial.val_curve[epoch]))
        if scores:
            epochs.append(epoch + 1)
            low.append(_round(scores[int(0.1 * (len(scores) - 1))]))
            median.append(_round(scores[(len(scores) - 1) // 2]))
            high.append(_round(scores[int(0.9 * (len(scores) - 1))]))
    band = "rgba(31,119,180,0.12)"
    figure.add_scatter(x=epochs, y=high, mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip")
    figure.add_scatter(x=epochs, y=low, mode="lines", line=dict(width=0), fill="tonexty", fillcolor=band,
                       name="10th-90th percentile (all trials)", hoverinfo="skip")
    figure.add_scatter(x=epochs, y=median, mode="lines", name="median (all trials)",
                       line=dict(color="rgba(31,119,180,0.9)", width=2, dash="dash"))


def family_scores(families: Any, metric: str) -> go.Figure:
    """Final validation scores of complete trials per family, as boxes from pre-computed quartiles."""
    rows = families[families["complete"] > 0]
    figure = go.Figure(layout=_layout(f"Validation {metric} by family (complete trials)", "family",
                                      f"final validation {metric}"))
    figure.add_box(
        x=list(rows["family"]), q1=[_round(v) for v in rows["q1"]], median=[_round(v) for v in rows["median"]],
        q3=[_round(v) for v in rows["q3"]], lowerfence=[_round(min(a, b)) for a, b in zip(rows["worst"], rows["best"])],
        upperfence=[_round(max(a, b)) for a, b in zip(rows["worst"], rows["best"])], name="spread",
        marker=dict(color=PALETTE[0]), hoverinfo="x+y",
    )
    figure.add_scatter(x=list(rows["family"]), y=[_round(v) for v in rows["best"]], mode="markers", name="best trial",
                       marker=dict(color="#d62728", size=9, symbol="star"),
                       customdata=list(rows["complete"]),
                       hovertemplate="%{x}: best %{y} of %{customdata} complete<extra></extra>")
    return figure


def importance(importances: dict[str, dict[str, float]], evaluator: str) -> go.Figure:
    """Parameter importance within each family: one bar panel per family."""
    families = list(importances)
    columns = min(3, len(families))
    rows = math.ceil(len(families) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=families, horizontal_spacing=0.18,
                           vertical_spacing=0.5 / rows)
    for index, family in enumerate(families):
        ranked = sorted(importances[family].items(), key=lambda item: item[1])
        figure.add_bar(x=[_round(value) for _, value in ranked], y=[name.removeprefix("params.") for name, _ in ranked],
                       orientation="h",
                       name=family, marker=dict(color=PALETTE[index % len(PALETTE)]), showlegend=False,
                       row=index // columns + 1, col=index % columns + 1)
    figure.update_layout(**_layout(f"Parameter importance within each family ({evaluator})", "", "",
                                   height=max(300, 230 * rows)))
    figure.update_xaxes(range=[0, 1])
    figure.update_yaxes(automargin=True)
    return figure


def range_test(result: dict[str, Any]) -> go.Figure:
    """Loss against LR (log axis) from the range test, with the suggestion and the searched interval.

    ``result`` is ``RangeTestResult.to_dict()``. The loss axis stops a little above the
    starting loss, so the blow-up at the end does not flatten the useful part of the curve.
    """
    lrs = result["lrs"]
    figure = go.Figure(layout=_layout("LR range test", "learning rate", "training loss"))
    figure.update_xaxes(type="log", dtick=1, exponentformat="power")
    figure.add_scatter(x=lrs, y=[_round(v) for v in result["losses"]], mode="lines", name="loss",
                       line=dict(color="rgba(120,120,120,0.5)", width=1))
    smoothed = [v for v in result.get("smoothed_losses") or [] if v is not None and math.isfinite(v)]
    if smoothed:
        figure.add_scatter(x=lrs, y=[_round(v) for v in result["smoothed_losses"]], mode="lines",
                           name="smoothed loss", line=dict(color=PALETTE[0], width=2.5))
        low_loss, start_loss = min(smoothed), smoothed[0]
        span = start_loss - low_loss
        figure.update_yaxes(range=[low_loss - 0.1 * span, start_loss + 0.5 * span])
    rules = result.get("suggestions") or {}
    if rules:
        figure.add_scatter(x=list(rules.values()), y=[_loss_at(result, lr) for lr in rules.values()],
                           mode="markers", name="rules", text=list(rules), marker=dict(size=8, color="#444"),
                           hovertemplate="%{text}: %{x:.3g}<extra></extra>")
    low, high = result["interval"]
    suggestion = result["suggestion"]
    figure.add_vrect(x0=low, x1=high, fillcolor="rgba(44,160,44,0.15)", line_width=0)
    figure.add_vline(x=suggestion, line=dict(color="#d62728", dash="dash"))
    # annotations on a log axis take log10 of the position (Plotly's convention)
    figure.add_annotation(x=math.log10(low), y=1, yref="paper", xanchor="left", yanchor="top", showarrow=False,
                          text=f"searched {low:.2g} to {high:.2g}", font=dict(color="#2a7a2a"))
    figure.add_annotation(x=math.log10(suggestion), y=0, yref="paper", xanchor="left", yanchor="bottom",
                          showarrow=False, text=f" suggestion {suggestion:.3g}", font=dict(color="#d62728"))
    return figure


def _loss_at(result: dict[str, Any], lr: float) -> float | None:
    """The smoothed (else raw) loss at the swept LR nearest to ``lr`` on a log scale."""
    losses = result.get("smoothed_losses") or result["losses"]
    nearest = min(range(len(result["lrs"])), key=lambda i: abs(math.log(result["lrs"][i] / lr)))
    return _round(losses[nearest])


def gains(items: list[Gain], metric: str) -> go.Figure:
    """Gain of the recommendation over each baseline with its confidence interval, per split."""
    figure = go.Figure(layout=_layout("Best searched minus each tuned baseline (95% interval)",
                                      f"{metric} gain (positive = searched better)", ""))
    for index, split in enumerate(("validation", "test")):
        chosen = [item for item in items if item.split == split]
        if not chosen:
            continue
        figure.add_scatter(
            x=[_round(item.gain) for item in chosen], y=[f"vs {item.baseline} ({split})" for item in chosen],
            mode="markers",
            name=split, marker=dict(size=10, color=PALETTE[index]),
            error_x=dict(type="data", symmetric=False,
                         array=[_round(item.high - item.gain) if item.high is not None else 0 for item in chosen],
                         arrayminus=[_round(item.gain - item.low) if item.low is not None else 0 for item in chosen]),
            customdata=[item.method for item in chosen], hovertemplate="%{y}: %{x}<br>%{customdata}<extra></extra>",
        )
    figure.add_vline(x=0, line=dict(color="#444", width=1))
    figure.update_yaxes(automargin=True, autorange="reversed")
    return figure
