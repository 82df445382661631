"""The `autolr` command line: parse, call the API, print. One module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from autolr.cli import bench, data, rangetest, report, schedule, search
from autolr.errors import UserError
from autolr.version import __version__

app = typer.Typer(
    name="autolr",
    help="Find the learning-rate schedule for a PyTorch training job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(schedule.app, name="schedule")
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.command("range-test")(rangetest.range_test)
app.command("search")(search.search)
app.command("report")(report.report)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"autolr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Find the learning-rate schedule for a PyTorch training job."""


def main() -> None:
    """Entry point: run the app; a UserError becomes one line on stderr and exit status 2."""
    try:
        app()
    except UserError as error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {error}", markup=False)
        sys.exit(2)
