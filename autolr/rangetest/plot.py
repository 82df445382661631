"""Pictures of a range-test result: a PNG (matplotlib, Agg) and an offline HTML fragment (Plotly)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autolr.rangetest.range_test import RangeTestResult


TITLE_WIDTH = 100  # characters per title line, so that a long warning is wrapped, not cut off


def _title(result: "RangeTestResult", line_break: str = "\n") -> str:
    """The suggestion, interval and spread, then each warning, wrapped at ``TITLE_WIDTH`` characters."""
    low, high = result.interval
    title = f"LR range test ({result.method}): suggestion {result.suggestion:.3g}, interval [{low:.3g}, {high:.3g}]"
    if result.suggestion_spread is not None:
        title += f", spread [{result.suggestion_spread[0]:.3g}, {result.suggestion_spread[1]:.3g}]"
    if result.seed_spread is not None:
        low, high = result.seed_spread
        title += f", across {len(result.seed_suggestions)} seeds [{low:.3g}, {high:.3g}]"
    lines = [title, *(f"warning: {warning}" for warning in result.warnings)]
    return line_break.join(wrapped for line in lines for wrapped in textwrap.wrap(line, TITLE_WIDTH))


def _loss_label(result: "RangeTestResult") -> str:
    if result.method == "population":
        return f"held-out loss after {result.stopped_at} steps at that LR"
    return "training loss"


def _check_points(result: "RangeTestResult") -> tuple[list[float], list[float], str]:
    """The population check's (LRs, mean held-out losses over the seeds) where no seed diverged (stored as None),
    and their label; empty without a check."""
    from autolr.rangetest.check import mean_curve

    check = result.settings.get("check")
    if not check:
        return [], [], ""
    curve = mean_curve([[math.nan if loss is None else loss for loss in seed] for seed in check["losses"]])
    kept = [(lr, loss) for lr, loss in zip(check["lrs"], curve) if math.isfinite(loss)]
    label = (f"check: held-out loss, mean of {len(check['losses'])} seeds, {check['num_steps']} steps "
             f"judged at {check['length']}")
    return [lr for lr, _ in kept], [loss for _, loss in kept], label


def write_png(result: "RangeTestResult", path: Path) -> Path:
    """Loss against LR (log axis), raw and smoothed, with the suggestion and interval marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    finite = [(lr, loss) for lr, loss in zip(result.lrs, result.losses) if math.isfinite(loss)]
    axes.plot(*zip(*finite), color="0.7", linewidth=1, label="loss")
    smoothed = [(lr, loss) for lr, loss in zip(result.lrs, result.smoothed_losses) if math.isfinite(loss)]
    axes.plot(*zip(*smoothed), color="C0", linewidth=2, label="smoothed",
              marker="o" if result.method == "population" else None)
    axes.axvspan(*result.interval, color="C2", alpha=0.12, label="search interval")
    if result.suggestion_spread is not None:
        axes.axvspan(*result.suggestion_spread, color="C3", alpha=0.25, label="suggestion spread")
    axes.axvline(result.suggestion, color="C3", linewidth=2, label=f"suggestion {result.suggestion:.3g}")
    for index, lr in enumerate(result.seed_suggestions):
        axes.axvline(lr, color="C3", linewidth=1, linestyle=":", label="each seed's suggestion" if index == 0 else None)
    for (rule, lr), style in zip(sorted(result.suggestions.items()), (":", "--", "-.", (0, (1, 4)), (0, (3, 1, 1, 1)))):
        axes.axvline(lr, color="0.3", linestyle=style, linewidth=1, label=f"{rule} {lr:.3g}")
    axes.set_xscale("log")
    lowest = min(loss for _, loss in finite + smoothed)
    top = min(max(loss for _, loss in smoothed), 2 * smoothed[0][1])
    margin = 0.05 * (top - lowest) if top > lowest else 0.05
    axes.set_ylim(lowest - margin, top + margin)
    axes.set_xlabel("learning rate")
    axes.set_ylabel(_loss_label(result))
    axes.set_title(_title(result), fontsize=9)
    handles, labels = axes.get_legend_handles_labels()
    check_lrs, check_losses, check_label = _check_points(result)
    if check_lrs:
        right = axes.twinx()
        handles += right.plot(check_lrs, check_losses, color="C1", marker="s", linewidth=1, label=check_label)
        labels.append(check_label)
        right.set_ylabel("check's held-out loss", color="C1")
    axes.legend(handles, labels, fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def html_fragment(result: "RangeTestResult", include_plotlyjs: bool | str = False) -> str:
    """A ``<div>`` with the interactive curve; plotly.js is left out unless asked (never a CDN link)."""
    import plotly.graph_objects as go

    if include_plotlyjs == "cdn":
        raise ValueError("the range-test fragment must work offline: embed plotly.js (True) or leave it out (False)")
    figure = go.Figure()
    figure.add_scatter(x=result.lrs, y=result.losses, mode="lines", name="loss", line={"color": "#bbbbbb"})
    figure.add_scatter(x=result.lrs, y=result.smoothed_losses, name="smoothed",
                       mode="lines+markers" if result.method == "population" else "lines",
                       line={"color": "#1f77b4", "width": 3})
    figure.add_vrect(x0=result.interval[0], x1=result.interval[1], fillcolor="green", opacity=0.12,
                     line_width=0, annotation_text="search interval")
    if result.suggestion_spread is not None:
        figure.add_vrect(x0=result.suggestion_spread[0], x1=result.suggestion_spread[1], fillcolor="red", opacity=0.2,
                         line_width=0, annotation_text="suggestion spread", annotation_position="bottom left")
    figure.add_vline(x=result.suggestion, line_color="red", annotation_text=f"suggestion {result.suggestion:.3g}")
    for lr in result.seed_suggestions:
        figure.add_vline(x=lr, line_dash="dot", line_color="red", line_width=1)
    for rule, lr in sorted(result.suggestions.items()):
        figure.add_vline(x=lr, line_dash="dot", line_color="#555555")
    figure.update_xaxes(type="log", title="learning rate")
    figure.update_yaxes(title=_loss_label(result))
    check_lrs, check_losses, check_label = _check_points(result)
    if check_lrs:
        figure.add_scatter(x=check_lrs, y=check_losses, name=check_label, mode="lines+markers", yaxis="y2",
                           line={"color": "#ff7f0e"}, marker={"symbol": "square"})
        figure.update_layout(yaxis2={"title": "check's held-out loss", "overlaying": "y", "side": "right"})
    figure.update_layout(title=_title(result, "<br>"), template="plotly_white", height=420)
    return figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs)
