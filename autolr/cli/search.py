"""`autolr search`: run (or resume) a study, with a live progress display, and print where the result is."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from autolr.errors import UserError
from autolr.interrupts import termination_as_ctrl_c


def search(
    dataset: Optional[str] = typer.Option(None, "--dataset",
                                          help="Built-in dataset; its defaults are studies/<dataset>.toml."),
    study: Optional[Path] = typer.Option(None, "--study", help="A study TOML file (flags override it)."),
    name: Optional[str] = typer.Option(None, "--name", help="The study's name (names the report folder)."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Built-in model: mlp or cnn (images), transformer (text)."),
    optimizer: Optional[str] = typer.Option(
        None, "--optimizer", help="sgd, adam or adamw. The study's optimizer settings are kept where they mean the "
        "same for it (weight decay between sgd and adam; betas and eps between adam and adamw); the others (sgd's "
        "momentum and nesterov for adam or adamw) take its defaults."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Training batch size."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs per trial (image datasets)."),
    target_epochs: Optional[int] = typer.Option(
        None, "--target-epochs", help="Your training length: the verdict re-scores and picks the exported LR at it "
        "(default: --epochs)."),
    steps: Optional[int] = typer.Option(
        None, "--steps", help="Optimizer steps per trial (text datasets: a language model; a multiple of the "
        "study's eval_every)."),
    target_steps: Optional[int] = typer.Option(
        None, "--target-steps", help="Text datasets: your training length in steps, at which the verdict re-scores "
        "(default: --steps)."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Trials the study should hold, baselines included."),
    budget: Optional[float] = typer.Option(
        None, "--budget", help="Minutes the whole study should take: after the baselines' first LRs it sizes the "
        "search, the refined baseline LRs and the re-scoring to fit, and says what it cut (optuna only)."),
    full: bool = typer.Option(
        False, "--full", help="The whole study, without a budget: every trial and the whole re-scoring (the shipped "
        "image studies otherwise fit 2 plain 12-LR grids at the verdict's length and say what they cut)."),
    families: Optional[str] = typer.Option(None, "--families", help="Comma-separated schedule families to search."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="tpe, random, cmaes, gp or qmc."),
    pruner: Optional[str] = typer.Option(None, "--pruner", help="hyperband, median, successive-halving or none."),
    storage: Optional[str] = typer.Option(None, "--storage",
                                          help="Optuna storage URL (default: <out>/<name>/study.db)."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder of run folders: writes <out>/<name>/."),
    workers: int = typer.Option(1, "--workers", help="Local processes training trials at once on one study."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the sampler, the weights and the batch order."),
    population: Optional[int] = typer.Option(None, "--population",
                                             help="Trials trained at once (default: from the device)."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch threads per training process on a CPU (default: the cores that other "
        "work leaves free, measured at the start)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="optuna (embedded) or ray."),
    address: Optional[str] = typer.Option(
        None, "--address", help="Ray backend: auto, ray://HOST:PORT or a cluster address (default: a local Ray)."),
    gpus_per_trial: float = typer.Option(
        0.0, "--gpus-per-trial", help="Ray backend: GPUs per trial, fractions allowed (0.25: four trials per GPU)."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray backend: CPUs per trial."),
    rescore_top: Optional[int] = typer.Option(
        None, "--rescore-top", help="Best configurations re-trained on fresh seeds after the search (0: none)."),
    rescore_seeds: Optional[int] = typer.Option(
        None, "--rescore-seeds", help="Fresh seeds per re-scored configuration (at least 2; 0: no re-scoring)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset's files."),
    quiet: bool = typer.Option(False, "--quiet", help="No live progress; print only where the result is."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end, nothing else."),
) -> None:
    """Search for the best learning-rate schedule of a study; rerun the same command to resume."""
    from autolr.study.config import default_study, load_study

    if study is not None:
        config = load_study(study)
    elif dataset is not None:
        config = default_study(dataset)
    else:
        raise UserError("give --dataset NAME (e.g. mnist) or --study FILE")
    config = config.with_optimizer(optimizer).replace(
        name=name, dataset=dataset if study is not None else None, model=model, batch_size=batch_size,
        epochs=epochs, target_epochs=target_epochs, steps=steps, target_steps=target_steps, trials=trials,
        budget=budget, rescore_top=rescore_top, rescore_seeds=rescore_seeds,
        families=[item.strip() for item in families.split(",") if item.strip()] if families is not None else None,
        sampler=sampler, pruner=pruner, storage=storage, device=device, seed=seed, population=population,
        threads=threads, backend=backend, data_dir=str(data_dir) if data_dir is not None else None,
    )
    if full and budget is not None:
        raise UserError("give --budget MINUTES or --full (no budget), not both")
    if full:
        config = config.whole()
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    from autolr.pipeline.run import run_study
    from autolr.pipeline.steps import resolve_device, study_threads

    choice = study_threads(config, workers, cpus_per_trial)  # measured once, before anything starts
    config = config.replace(threads=choice.threads)
    on_cpu = resolve_device(config.device) == "cpu"
    display = None if quiet or as_json else _Display(console, config.trials, choice.describe() if on_cpu else None)

    terminated: list[int] = []
    try:
        with termination_as_ctrl_c() as terminated:
            run = run_study(config, out=out, workers=workers, on_progress=display.progress if display else None,
                            on_phase=display.phase if display else None,
                            backend_options={"address": address, "gpus_per_trial": gpus_per_trial,
                                             "cpus_per_trial": cpus_per_trial} if config.backend == "ray" else None)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM
        if display:
            display.stop()
        console.print(f"Stopped. Finished trials are stored; rerun the same command to resume study {config.name!r}.",
                      markup=False)
        raise typer.Exit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None
    finally:
        if display:
            display.stop()
    _print_result(run, as_json)


def _print_result(run: Any, as_json: bool) -> None:
    from autolr.redact import redact_text
    from autolr.report.rank import in_score_unit, metric_name, rank, state_counts
    from autolr.report.write import best_spec

    paths = run.report_paths
    record = in_score_unit(run.record)  # scores as the report shows them: a language model's in bits per byte
    ranking = rank(record)
    spec, verdict = best_spec(record, ranking), ranking.verdict
    provenance = (spec.provenance or {}) if spec else {}
    if as_json:
        typer.echo(json.dumps({
            "study": run.name, "run_dir": str(run.run_dir), "storage": redact_text(run.storage_url),
            "report": str(paths.index_html), "best_schedule": str(paths.best_schedule) if paths.best_schedule else None,
            "trials_csv": str(paths.trials_csv), "best_spec": spec.to_dict() if spec else None,
            "best_score": provenance.get("val_mean"), "test_score": provenance.get("test_mean"),
            "metric": metric_name(record), "counts": state_counts(run.record),
            "wall_time_s": round(run.wall_time_s, 1), "data_source": run.record.meta.get("data_source"),
            "verdict": _verdict_json(verdict), "budget": run.record.meta.get("budget"),
        }))
        return
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"Data:          {run.record.config.get('dataset')} from {run.record.meta.get('data_source')}",
              markup=False)
    out.print(f"Report:        {paths.index_html}", markup=False)
    if spec is None:
        out.print("No trial completed, so there is no best schedule yet.", markup=False)
        return
    score = f"val {metric_name(record)} {provenance.get('val_mean', float('nan')):.4f}"
    if provenance.get("val_std") is not None:
        score += (f" ± {provenance['val_std']:.4f} over {provenance.get('seeds')} seeds, "
                  f"test {provenance.get('test_mean', float('nan')):.4f}")
    if run.record.meta.get("budget"):
        out.print(f"Budget:        {run.record.meta['budget']}", markup=False)
    if verdict is not None:
        out.print(f"Verdict:       {verdict.sentence}", markup=False)
    out.print(f"Best schedule: {paths.best_schedule}  ({spec.family}, {score})", markup=False)
    length, when = (("total_steps", "optimizer step") if run.record.config.get("steps") is not None
                    else ("epochs", "epoch"))
    out.print(f'Use it:        scheduler = autolr.load_spec("{paths.best_schedule}").build(optimizer, {length})'
              f"  # then scheduler.step() once per {when}", markup=False)
    if (spec.optimizer or {}).get("name", "").startswith("schedulefree"):
        out.print("               # schedule-free: optimizer = spec.build_optimizer(model.parameters()); call "
                  "optimizer.train() before training steps and optimizer.eval() before evaluating", markup=False)


def _verdict_json(verdict: Any) -> dict[str, Any] | None:
    """The verdict as plain data: outcome, sentence, and the paired gains (searched minus best baseline)."""
    if verdict is None:
        return None

    def gain(paired: Any) -> dict[str, Any] | None:
        return None if paired is None else {"mean": paired.mean, "low": paired.low, "high": paired.high,
                                            "seeds": paired.seeds}

    return {"outcome": verdict.outcome, "sentence": verdict.sentence,
            "val_gain": gain(verdict.val_gain), "test_gain": gain(verdict.test_gain)}


class _Display:
    """The live progress: the phase, trials done/pruned/failed, best so far, trials/min, ETA; ``note``
    (the threads line) before the first phase.

    On a terminal one live bar; otherwise (a log file, CI) one line per phase and per update."""

    def __init__(self, console: Console, target: int, note: str | None = None) -> None:
        self.console = console
        self.note = note  # one line printed as the study starts (once its settings were accepted)
        self.live = console.is_terminal
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), console=console, transient=False)
        self.task = self.bar.add_task("starting", total=target, status="")

    def phase(self, name: str) -> None:
        if self.note:
            self.console.print(self.note, markup=False)
            self.note = None
        if self.live:
            self.bar.start()  # on the first phase: nothing is drawn before the study opened
        else:
            self.console.print(f"{name}...", markup=False)
        self.bar.update(self.task, description=f"{name:<10}")

    def progress(self, progress: Any) -> None:
        counts = progress.counts
        parts = [f"{counts['complete']} done", f"{counts['pruned']} pruned",
                 f"{counts['failed'] + counts['diverged']} failed"]
        if progress.best_value is not None:
            parts.append(f"best {progress.best_value:.4f} ({progress.best_family}, #{progress.best_number})")
        if progress.trials_per_minute is not None:
            parts.append(f"{progress.trials_per_minute:.1f} trials/min")
        if progress.eta_s is not None:
            parts.append(f"ETA {int(progress.eta_s // 60)}:{int(progress.eta_s % 60):02d}")
        self.bar.update(self.task, completed=min(progress.finished, progress.target), total=progress.target,
                        status=" · ".join(parts))
        if not self.live:
            self.console.print(f"  {progress.finished}/{progress.target} trials: " + " · ".join(parts), markup=False)

    def stop(self) -> None:
        self.bar.stop()
