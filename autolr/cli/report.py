"""`autolr report`: rebuild a study's report from its storage, at any time, even mid-search."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def report(
    source: str = typer.Argument(
        ..., metavar="STUDY_OR_STORAGE",
        help="A study name under reports/, a study.db or study.log file, a study or Ray Tune result "
             "folder, or an Optuna storage URL.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the report (default: the study's folder, else reports/<study>)."
    ),
    study: str | None = typer.Option(None, "--study", help="The study's name when the storage holds several."),
) -> None:
    """Rebuild the HTML report, trials.csv and best_schedule.json of a study."""
    from autolr.report import write_report
    from autolr.report.rank import state_counts
    from autolr.report.source import REPORTS_DIR, folder_name, locate, read_record

    located = locate(source)
    record = read_record(located, study_name=study)
    out_dir = out or located.out_dir or REPORTS_DIR / folder_name(record.name)
    paths = write_report(record, out_dir)
    counts = ", ".join(f"{count} {state}" for state, count in state_counts(record).items() if count)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"Report of study {record.name!r} ({counts or 'no trials'}):", markup=False)
    console.print(f"  {paths.index_html}", markup=False)
    if paths.best_schedule is not None:
        console.print(f"  best schedule: {paths.best_schedule}", markup=False)
    if record.meta.get("finished") is not True:
        console.print("  partial: the search had not finished; rebuild the report when it has.", markup=False)
