"""`autolr bench`: trials per minute of the tutorial loop, single trials and populations, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from autolr.cli.rangetest import bench_rangetest
from autolr.cli.rangetest_lm import bench_rangetest_lm

app = typer.Typer(help="Benchmarks: `autolr bench` alone measures trainer throughput.")


@app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="The small CPU-sized run (about a minute on 2 cores)."),
    dataset: str | None = typer.Option(None, help="Dataset name (default: mnist on CPU, fashion-mnist on GPU)."),
    epochs: int | None = typer.Option(None, min=1, help="Epochs per trial."),
    trials: int | None = typer.Option(None, min=1, help="Trials of the single-trial and population rows."),
    tutorial_trials: int | None = typer.Option(None, min=1, help="Trials of the tutorial-loop row."),
    population_sizes: str | None = typer.Option(None, help="Comma-separated population sizes K, e.g. 4,16."),
    train_limit: int | None = typer.Option(None, min=1, help="Use only the first N training examples."),
    device: str | None = typer.Option(None, help="cpu or cuda (default: cuda when present)."),
    ray: bool = typer.Option(False, "--ray", help="Also run the same trials through the Ray Tune backend."),
    module_population: int | None = typer.Option(
        None, min=0, help="K of the SmallResNet (your-own-model) population row; 0 leaves out both SmallResNet rows."),
    module_trials: int | None = typer.Option(None, min=1, help="Trials of each SmallResNet row."),
    lm_population: int | None = typer.Option(
        None, min=0, help="K of the transformer (fortunes) population row; 0 leaves out both transformer rows."),
    lm_trials: int | None = typer.Option(None, min=1, help="Trials of each transformer row."),
    lm_data_dir: Path | None = typer.Option(None, help="Folder with the fortunes text (default: where autolr looks)."),
    out_dir: Path = typer.Option(Path("reports/bench"), help="Folder for latest.json, latest.csv, latest.md."),
) -> None:
    """Run the throughput benchmark and write the table under OUT_DIR."""
    if context.invoked_subcommand is not None:
        return
    from dataclasses import replace

    from autolr.bench.throughput import TABLE_COLUMNS, BenchConfig, run_bench, table_cells, write_bench
    from autolr.errors import UserError

    config = BenchConfig.for_device(device, quick)
    overrides: dict[str, Any] = {  # BenchConfig field -> the option's value (None: not given)
        "dataset": dataset, "epochs": epochs, "trials": trials, "tutorial_trials": tutorial_trials,
        "train_limit": train_limit, "ray": ray or None, "module_population": module_population,
        "module_trials": module_trials, "lm_population": lm_population, "lm_trials": lm_trials,
        "lm_data_dir": str(lm_data_dir) if lm_data_dir else None,
    }
    if population_sizes is not None:
        try:
            overrides["population_sizes"] = tuple(int(size) for size in population_sizes.split(","))
        except ValueError:
            raise UserError(f"--population-sizes must be comma-separated integers, got {population_sizes!r}") from None
    config = replace(config, **{key: value for key, value in overrides.items() if value is not None})
    console = Console()
    console.print(f"bench: {config.dataset}, {config.epochs} epochs, device {config.device}; "
                  "rows run one after another")
    report = run_bench(config,
                       on_row=lambda row: console.print(f"  {row.name}: {row.trials_per_minute:,.0f} trials/min"))
    table = Table(title=f"autolr bench on {report.device}")
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column == "row" else "right")
    for row in report.rows:
        table.add_row(*table_cells(row))
    console.print(table)
    for path in write_bench(report, out_dir):
        console.print(f"wrote {path}")


app.command("rangetest")(bench_rangetest)
app.command("rangetest-lm")(bench_rangetest_lm)


@app.command("verdict")
def bench_verdict(
    quick: bool = typer.Option(False, "--quick", help="One tiny digits study (for tests), not the reference settings."),
    runs_dir: Path = typer.Option(Path("reports/reference-runs"), "--runs-dir", help="Where the studies are stored."),
    out_dir: Path = typer.Option(Path("reports/reference"), "--out-dir",
                                 help="Folder for verdict.md and verdict.json."),
) -> None:
    """Reference results: each built-in setting's study, its verdict at 1x and 3x its epochs, and a plain loop's time.

    Written after each row; rerun the same command to resume a stopped run (rows written are kept)."""
    from autolr.bench.verdict import QUICK_SETTINGS, SETTINGS, run_reference, write_reference

    console = Console()
    report = run_reference(QUICK_SETTINGS if quick else SETTINGS, runs_dir, out_dir, quick=quick,
                           on_row=lambda row: console.print(f"{row['setting']} at {row['epochs']} epochs: "
                                                            f"{row['sentence']}", markup=False))
    for path in write_reference(report, out_dir):
        console.print(f"wrote {path}")


@app.command("lr-bounds")
def bench_lr_bounds(
    quick: bool = typer.Option(False, "--quick", help="Two tiny digits settings on a 3-point grid (seconds)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with the datasets' files."),
    out_dir: Path = typer.Option(Path("reports/bench"), "--out-dir",
                                 help="Folder for lr-bounds.md and lr-bounds.json."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
    resume: bool = typer.Option(False, "--resume",
                                help="Keep the settings OUT_DIR/lr-bounds.json holds; run only the missing ones."),
) -> None:
    """Where each family's best peak LR lies relative to the range test; per-family bounds from calibration settings."""
    import time
    from dataclasses import replace

    from autolr.bench import lr_bounds as bench
    from autolr.errors import UserError
    from autolr.training.device import torch_threads

    size = bench.QUICK if quick else bench.BoundsSize()
    hardware = bench.hardware()
    stored = out_dir / "lr-bounds.json"
    done: list[bench.SettingRun] = []
    earlier_seconds = 0.0
    if resume and stored.exists():
        done, stored_size, earlier_seconds = bench.read(stored)
        if replace(stored_size, settings=size.settings) != size:
            raise UserError(f"{stored} was run with another grid, seeds or batch size; resume it with the same "
                            "options, or write to another --out-dir")
    started = time.perf_counter()

    def progress(runs: list) -> None:
        run = runs[-1]
        typer.echo(f"{run.setting.name}: loss_min {run.range_test.loss_min:.3g}, best / loss_min "
                   + ", ".join(f"{family} {run.ratio(family):.2f}x" for family in run.families))
        bench.write(runs, size, out_dir, hardware, earlier_seconds + time.perf_counter() - started)  # survives a stop

    with torch_threads("cpu", threads):  # restored after: a caller in this process keeps its own setting
        runs = bench.run_bench(size, data_dir=str(data_dir) if data_dir else None, done=done, on_setting=progress)
    json_path, md_path = bench.write(runs, size, out_dir, hardware, earlier_seconds + time.perf_counter() - started)
    typer.echo(md_path.read_text())
    typer.echo(f"wrote {md_path}, {json_path}")


@app.command("cost")
def bench_cost(
    quick: bool = typer.Option(False, "--quick", help="The shipped smoke study (digits, seconds), not mnist and "
                                                      "fashion-mnist."),
    study: list[str] | None = typer.Option(None, "--study", help="A shipped study to measure; repeatable "
                                                                 "(default: mnist and fashion-mnist)."),
    target_epochs: int | None = typer.Option(None, "--target-epochs", min=1,
                                             help="An image study's second length (default: 3x its epochs)."),
    target_steps: int | None = typer.Option(None, "--target-steps", min=1,
                                            help="A language model's second length (default: 4x its steps)."),
    target_only: bool = typer.Option(False, "--target-only", help="Measure the target length only, not also the "
                                                                  "trial length."),
    runs_dir: Path = typer.Option(Path("reports/bench/cost-runs"), "--runs-dir", help="Where the studies are stored."),
    out_dir: Path = typer.Option(Path("reports/bench"), "--out-dir",
                                 help="Folder for cost.json, cost.md and cost-parts.json (the parts done so far)."),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Measure each row's study and grid this many times, "
                                                            "alternating, and take each side's median."),
) -> None:
    """A study against the plain 12-LR grid at the same length: both wall times, their ratio, the verdict and the
    tuned baselines. Rerun the same command to resume a stopped run (parts done are kept)."""
    import signal

    from autolr.bench import cost
    from autolr.interrupts import termination_as_ctrl_c

    names = study or ([cost.QUICK_STUDY] if quick else list(cost.STUDIES))
    configs = cost.study_lengths(names, target_epochs, target_steps, target_only)  # all checked before one runs
    terminated: list[int] = []
    try:
        with termination_as_ctrl_c() as terminated:
            report = cost.run_cost(configs, runs_dir, out_dir, repeats=repeats, on_row=lambda row: typer.echo(
                f"{row.study} at {row.verdict_length} {row.unit}: study {row.study_s:.1f} s, plain grid "
                f"{row.grid_s:.1f} s, {row.ratio:.1f}x"))
    except KeyboardInterrupt:
        typer.echo(f"Stopped. The parts done are stored in {out_dir / cost.PARTS_FILE}; rerun the same command to "
                   "resume.")
        raise typer.Exit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None
    json_path, md_path = cost.write_cost(report, out_dir)
    typer.echo(md_path.read_text())
    typer.echo(f"wrote {md_path}, {json_path}")


@app.command("load")
def bench_load(
    storage: list[str] = typer.Option(["journal"], "--storage", help="journal, sqlite or a database URL; repeatable."),
    workers: int = typer.Option(4, "--workers", min=1, help="Worker processes sharing one study."),
    trials: int = typer.Option(400, "--trials", min=1, help="Trials the study should hold."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Scores each trial reports (one storage write each)."),
) -> None:
    """Load test: WORKERS processes on one storage; trials recorded, lost and duplicated."""
    from autolr.bench.load import format_result, run_loads

    for result in run_loads(storage, workers, trials, epochs):
        typer.echo(format_result(result))


@app.command("threads")
def bench_threads(
    quick: bool = typer.Option(False, "--quick", help="One epoch per trial, two runs per row."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with MNIST's files."),
    out: Path = typer.Option(Path("reports/bench/bench-threads.md"), "--out", help="The Markdown page to write."),
) -> None:
    """The same LR grid beside a neighbour running torch with 2 threads: torch's thread count against autolr's."""
    from autolr.bench.threads import QUICK, GridSize, run_threads_bench, write_threads_bench

    result = run_threads_bench(QUICK if quick else GridSize(), data_dir=str(data_dir) if data_dir else None)
    path = write_threads_bench(result, out)
    typer.echo(path.read_text())
    typer.echo(f"wrote {path}")
