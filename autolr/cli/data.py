"""`autolr data fetch|list`: provision built-in datasets and show what is on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, help="Provision built-in datasets and list what is available.")

DATA_DIR_HELP = ("Folder in torchvision's layout (e.g. DIR/MNIST/raw/train-images-idx3-ubyte[.gz]); "
                 "nothing else is tried.")


@app.command()
def fetch(
    name: str = typer.Argument(..., help="Dataset: mnist, fashion-mnist, digits, cifar10 or fortunes (text)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Find or fetch a dataset's files (nothing is loaded) and print where they came from."""
    from autolr.data import fetch_dataset

    info = fetch_dataset(name, data_dir)
    typer.echo(f"{info.name}: {info.source}")
    if info.root is not None:
        typer.echo(f"root: {info.root}")
    typer.echo(f"splits: train {info.train}, val {info.val}, test {info.test}")


@app.command("list")
def list_datasets(
    as_json: bool = typer.Option(False, "--json", help='Print [{"name", "root", "source", "train", "val", "test"}].'),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Show the datasets available now, where they came from and their split sizes (fetches nothing)."""
    from autolr.data import DATASET_NAMES, available_datasets

    present = {info.name: info for info in available_datasets(data_dir)}
    if as_json:
        typer.echo(json.dumps([info.to_dict() for info in present.values()], indent=2))
        return
    rows = [("dataset", "train", "val", "test", "root", "source")]
    for name in DATASET_NAMES:
        info = present.get(name)
        if info is None:
            rows.append((name, "-", "-", "-", "-", f"not available: run `autolr data fetch {name}`"))
        else:
            rows.append((name, str(info.train), str(info.val), str(info.test), str(info.root or "-"), info.source))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:4])]
        typer.echo("  ".join([*cells, row[4].ljust(widths[4]), row[5]]))
