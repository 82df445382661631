"""The `autolr` command line: parse, call the API, print. One module per command group."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer's own click, which raises them

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
    """Entry point: run the app. A UserError, or a usage error of the command line itself (an option
    that is not an integer, a value below its minimum, an unknown option), becomes one line on stderr
    and exit status 2, as the README promises; the usage box typer would draw is not printed."""
    try:
        code = app(standalone_mode=False)
    except UserError as error:
        _error(str(error))
    except NoArgsIsHelpError as error:  # `autolr` or `autolr schedule` alone: the help is printed already
        sys.exit(error.exit_code)
    except UsageError as error:
        where = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        _error(" ".join(error.format_message().split()).rstrip(".") + where, error.exit_code)
    except typer.Abort:
        _error("aborted", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _error(sentence: str, code: int = 2) -> None:
    """Print ``error: <sentence>`` on stderr and exit with ``code``."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {sentence}", markup=False)
    sys.exit(code)
