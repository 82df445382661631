"""`autolr schedule show|export`: look at a schedule spec file, or print it in another format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from autolr.families import FAMILIES

app = typer.Typer(no_args_is_help=True, help="Show a schedule spec or export it to another format.")

BLOCKS = " ▁▂▃▄▅▆▇█"  # eighths of a character cell, for the terminal plot


def terminal_plot(values: list[float], width: int = 64, height: int = 10) -> list[str]:
    """Rows of a block-character chart of ``values`` (top row first), scaled from 0 to max."""
    columns = min(width, len(values))
    samples = [values[round(column * (len(values) - 1) / max(columns - 1, 1))] for column in range(columns)]
    top = max(samples) or 1.0
    eighths = [round(value / top * height * 8) for value in samples]
    rows = []
    for row in range(height - 1, -1, -1):
        rows.append("".join(BLOCKS[min(max(level - row * 8, 0), 8)] for level in eighths))
    return rows


@app.command()
def show(
    spec_file: Path = typer.Argument(..., help="Spec file: .json, .yaml, .yml or .toml."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Length of the run to show, in scheduler steps."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write the LR curve to this PNG file."),
) -> None:
    """Print the schedule's key LRs and a terminal plot over a run of --steps steps."""
    from rich.console import Console
    from rich.table import Table

    from autolr.schedule.spec import load_spec

    spec = load_spec(spec_file)
    lrs = [spec.lr_at(step, steps) for step in range(steps)]
    console = Console(highlight=False)
    warmup = f", warmup {spec.warmup['fraction']:g} of the run" if spec.warmup else ""
    console.print(f"{spec.family} schedule, lr {spec.lr:g}{warmup}, over {steps} steps", markup=False)
    if spec.params:
        console.print("params: " + ", ".join(f"{key}={value}" for key, value in spec.params.items()), markup=False)
    table = Table("point", "step", "lr")
    for label, fraction in (("start", 0.0), ("25%", 0.25), ("50%", 0.5), ("75%", 0.75), ("end", 1.0)):
        step = round(fraction * (steps - 1))
        table.add_row(label, str(step), f"{lrs[step]:.6g}")
    table.add_row("min", str(lrs.index(min(lrs))), f"{min(lrs):.6g}")
    table.add_row("max", str(lrs.index(max(lrs))), f"{max(lrs):.6g}")
    console.print(table)
    rows = terminal_plot(lrs)
    console.print(f"{max(lrs):.3g} ┤" + rows[0], markup=False)
    for row in rows[1:]:
        console.print(" " * len(f"{max(lrs):.3g}") + " │" + row, markup=False)
    console.print(" " * len(f"{max(lrs):.3g}") + " └" + "─" * len(rows[0]) + f" step {steps - 1}", markup=False)
    if (note := FAMILIES[spec.family].curve_note) is not None:
        console.print(f"{spec.family}: {note}", markup=False)
    if png is not None:
        _write_png(spec, lrs, png)
        console.print(f"wrote {png}", markup=False)


def _write_png(spec, lrs: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from autolr.errors import UserError

    figure, axes = pyplot.subplots(figsize=(7, 3.5), dpi=120)
    axes.plot(range(len(lrs)), lrs, color="tab:blue")
    axes.set(xlabel="step", ylabel="learning rate", title=f"{spec.family} (lr {spec.lr:g})")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        pyplot.close(figure)


@app.command("export")
def export_spec(
    spec_file: Path = typer.Argument(..., help="Spec file: .json, .yaml, .yml or .toml."),
    export_format: str = typer.Option(..., "--format", help="json, yaml, toml, python or lightning."),
) -> None:
    """Print the spec as JSON, YAML, TOML, a dependency-free Python lr_at, or Lightning code."""
    from autolr.schedule.export import export
    from autolr.schedule.spec import load_spec

    typer.echo(export(load_spec(spec_file), export_format), nl=False)
