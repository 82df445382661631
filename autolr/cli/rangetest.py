"""`autolr range-test` (the LR range test on a built-in dataset and model) and `autolr bench rangetest`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from autolr.errors import UserError

if TYPE_CHECKING:
    from autolr.bench.rangetest import BenchSize, SeedRun


def range_test(
    dataset: str = typer.Option("mnist", "--dataset", help="Built-in dataset: mnist, fashion-mnist, digits, cifar10."),
    model: str = typer.Option("cnn", "--model", help="Built-in model: mlp or cnn."),
    method: str = typer.Option("auto", "--method", help="sweep (one model, LR grows every step), population "
                               "(K constant LRs at once) or auto (population on a GPU, sweep on CPU)."),
    num_steps: Optional[int] = typer.Option(None, "--num-steps",
                                            help="Training steps (default 100 sweep, 200 population)."),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    seed: int = typer.Option(0, "--seed", help="Seed of the model's weights and the batch order (the test runs on "
                             "--seeds seeds derived from it)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds the sweep and the check run on; the suggestion is "
                              "their robust pick and the spread across them is shown."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs you will train for: the check judges "
                                         "each LR's stability over that length."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Or your training length in steps."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when present)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset's files."),
    out: Path = typer.Option(Path("reports/range-test"), "--out", help="Folder for range_test.png/.html/.json."),
    as_json: bool = typer.Option(False, "--json", help='Print only {"suggestion", "interval", ...} as JSON.'),
    check: bool = typer.Option(True, "--check/--no-check", help="After the sweeps, train 7 constant LRs at and below "
                               "their loss minimum on each seed, for your length up to 200 steps (100 without one); "
                               "the best of them is the suggestion."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch threads on a CPU (default: the cores that other work leaves free, "
        "measured at the start)."),
) -> None:
    """Run the LR range test with SGD (momentum 0.9) and print the suggested LR and search interval."""
    import torch

    from autolr.data import load_splits
    from autolr.rangetest.range_test import builtin_range_test
    from autolr.training.device import torch_threads
    from autolr.training.models import check_model_name
    from autolr.training.threads import thread_choice

    check_model_name(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    splits = load_splits(dataset, data_dir=data_dir, device=device, seed=seed)
    choice = thread_choice(threads) if device == "cpu" else None
    if choice is not None and not as_json:
        typer.echo(choice.describe())
    with torch_threads(device, choice.threads if choice else 1):  # restored after, for a caller in this process
        result = builtin_range_test(model, splits, method=method, num_steps=num_steps, batch_size=batch_size,
                                    seed=seed, seeds=seeds, check=check, epochs=epochs, steps=steps)
    out.mkdir(parents=True, exist_ok=True)
    result.plot(out / "range_test.png")
    (out / "range_test.html").write_text(result.plot_html())
    (out / "range_test.json").write_text(json.dumps(result.to_dict(), indent=1))
    if as_json:
        spread = None if result.suggestion_spread is None else list(result.suggestion_spread)
        typer.echo(json.dumps({"suggestion": result.suggestion, "interval": list(result.interval),
                               "suggestion_spread": spread, "warnings": result.warnings,
                               "seed_suggestions": result.seed_suggestions,
                               "length": result.settings.get("length"),
                               "suggestions": result.suggestions, "method": result.method,
                               "stop_reason": result.stop_reason, "dataset": dataset, "model": model,
                               "data_source": splits.source}))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"LR range test: {dataset} / {model} ({result.method}, {result.stopped_at} steps, "
                  f"{result.stop_reason})")
    console.print(f"data from {splits.source}", markup=False)
    table = Table()
    table.add_column("rule")
    table.add_column("LR", justify="right")
    for rule, lr in result.suggestions.items():
        table.add_row(rule, f"{lr:.4g}")
    console.print(table)
    checked = result.settings.get("check")
    if checked is not None:
        console.print(f"check: {len(checked['lrs'])} constant LRs x {len(checked['seeds'])} seeds, "
                      f"{checked['num_steps']} steps each, judged at {checked['length']} steps; its best LR is "
                      f"the suggestion (the sweep's alone: {checked['sweep_suggestion']:.4g})")
    console.print(f"suggestion: [bold]{result.suggestion:.4g}[/bold]   "
                  f"search interval: [{result.interval[0]:.4g}, {result.interval[1]:.4g}]")
    if result.suggestion_spread is not None:
        what = "(the LRs the check cannot rank apart)" if checked is not None else "over the curve's noise (5-95%)"
        console.print(f"spread of the suggestion {what}: "
                      f"[{result.suggestion_spread[0]:.4g}, {result.suggestion_spread[1]:.4g}]", markup=False)
    if result.seed_spread is not None:
        console.print(f"across {len(result.seed_suggestions)} seeds: " + ", ".join(
            f"{lr:.4g}" for lr in result.seed_suggestions) + f" ({result.seed_spread[1] / result.seed_spread[0]:.2f}x "
            "apart)", markup=False)
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    console.print(f"wrote {out / 'range_test.png'}, {out / 'range_test.html'}, {out / 'range_test.json'}")


def bench_rangetest(
    quick: bool = typer.Option(False, "--quick", help="One dataset, model and seed, tiny grid (CI-sized)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds (default 0,1,2)."),
    population_models: str = typer.Option("mlp", "--population-models", help="Comma-separated models that also get "
                                          "the population range test (costly on CPU: mlp only by default)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the datasets' files."),
    out_dir: Path = typer.Option(Path("reports/bench"), "--out-dir",
                                 help="Folder for rangetest.md and rangetest.json."),
    reanalyse: bool = typer.Option(False, "--reanalyse", help="Re-read OUT_DIR/rangetest.json under the current "
                                   "rules instead of training again."),
    resume: bool = typer.Option(False, "--resume", help="Keep the cases already in OUT_DIR/rangetest.json."),
    roles: Optional[str] = typer.Option(None, "--roles", help="Comma-separated roles whose settings run (tuning, "
                                        "held-out, fresh; default all), e.g. the fresh ones first, the rest later "
                                        "with --resume."),
    grids_from: Optional[Path] = typer.Option(None, "--grids-from", help="A rangetest.json whose cases lend their "
                                              "constant-LR grids (same setting and seed): only the range tests run "
                                              "again."),
    seed_spread: bool = typer.Option(False, "--seed-spread", help="Instead of the grid and the cases: per setting, "
                                     "one data subset (seed 0's) and the range test under each of --seeds, stored in "
                                     "OUT_DIR/rangetest-seeds.json (--resume keeps its settings); the cases of "
                                     "OUT_DIR/rangetest.json lend their seed-0 runs and fill the table."),
) -> None:
    """Judge range-test suggestions against a constant-LR grid: the settings the rules were tuned on, held-out ones
    (digits, MNIST and Fashion-MNIST, mlp and cnn, SGD and AdamW, batch 16-1024, 3-40 epochs), fresh ones and a
    least-squares problem."""
    from dataclasses import replace

    from autolr.bench import rangetest as bench
    from autolr.training.device import describe_hardware

    cases_path, seeds_path = out_dir / "rangetest.json", out_dir / "rangetest-seeds.json"
    seed_runs = bench.read_seed_runs(seeds_path) if (reanalyse or resume) and seeds_path.exists() else []
    if reanalyse:
        cases, size, hardware = bench.read(cases_path)
        cases = bench.reanalyse(cases)
    else:
        size = bench.QUICK if quick else bench.BenchSize()
        size = replace(size, population_models=tuple(population_models.split(",")))
        if roles is not None:
            chosen = roles.split(",")
            if not set(chosen) <= set(bench.ROLES):
                raise UserError(f"--roles must name some of {', '.join(bench.ROLES)}, got {roles!r}")
            size = replace(size, settings=tuple(s for s in size.settings if s.role in chosen),
                           least_squares=size.least_squares and bench.HELD_OUT_ROLE in chosen)
        if seeds is not None:
            try:
                size = replace(size, seeds=tuple(int(seed) for seed in seeds.split(",")))
            except ValueError:
                raise UserError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
        hardware = describe_hardware("cpu")
        if seed_spread:
            _seed_spread(size, cases_path, seeds_path, seed_runs, str(data_dir) if data_dir else None, hardware)
            return

        def progress(cases: list, case: bench.BenchCase) -> None:
            typer.echo(f"{case.setting.label} seed {case.seed}: grid best {case.grid_best:.3g}, " + ", ".join(
                f"{name} {lr / case.grid_best:.2f}x" for name, lr in case.suggestions.items()))
            bench.write(cases, size, out_dir, hardware)  # partial results survive an interruption

        done = bench.read(cases_path)[0] if resume and cases_path.exists() else []
        if grids_from is not None and not grids_from.is_file():
            raise UserError(f"--grids-from {grids_from} is not a file")
        grids = bench.read(grids_from)[0] if grids_from is not None else None
        cases = bench.run_bench(size, data_dir=str(data_dir) if data_dir else None, done=done, on_case=progress,
                                grids=grids)
    json_path, md_path = bench.write(cases, size, out_dir, hardware, seed_runs)
    typer.echo(md_path.read_text())
    typer.echo(f"wrote {md_path}, {json_path}")


def _seed_spread(size: BenchSize, cases_path: Path, seeds_path: Path, done: list[SeedRun], data_dir: Optional[str],
                 hardware: str) -> None:
    """``bench rangetest --seed-spread``: the seed runs of ``size``'s settings, stored after each setting, and the
    table of the stored cases (if any) with them."""
    from autolr.bench import rangetest as bench

    cases, stored_size, stored_hardware = (bench.read(cases_path) if cases_path.exists() else ([], size, hardware))
    lending = cases if stored_size.check_steps == size.check_steps else []  # a seed-0 run at this check's steps

    def progress(runs: list[SeedRun]) -> None:
        label = runs[-1].label
        typer.echo(f"{label}: " + ", ".join(f"seed {r.seed} {r.suggestion:.3g}" for r in runs if r.label == label))
        bench.write_seed_runs(runs, seeds_path)
        bench.write(cases, stored_size, cases_path.parent, stored_hardware, runs)

    runs = bench.run_seed_spread(size, data_dir, done, lending, progress)
    bench.write_seed_runs(runs, seeds_path)
    _, md_path = bench.write(cases, stored_size, cases_path.parent, stored_hardware, runs)
    typer.echo(md_path.read_text())
    typer.echo(f"wrote {md_path}, {seeds_path}")
