"""Throughput benchmark: the tutorial loop, device-resident single trials and populations, side by side.

All rows run in one process on one device, on the same data, with the same search
(Optuna TPE + median pruner over the initial LR of SGD+momentum with a cosine schedule),
so their trials per minute can be compared directly:

- ``tutorial_loop``: a torchvision-style dataset (a PIL image and ``ToTensor`` +
  ``Normalize`` per example) read through a ``DataLoader``, one model per trial, torch's
  ``CosineAnnealingLR`` stepped per batch.
- ``single_trial``: ``autolr.training.train.train_trial``, one model per trial, data on the device.
- ``population_K<k>``: ``autolr.training.population.train_population``, k trials at once.
- ``resnet_single_trial`` and ``resnet_population_K<k>``: a model that is not built in
  (``SmallResNet``, two residual blocks with BatchNorm) on the first ``module_train_limit``
  training rows, one ``train_trial`` per trial against ``train_module_population`` (torch.func)
  with k trials at once.
- ``transformer_single_trial`` and ``transformer_population_K<k>``: the built-in transformer on
  the ``fortunes`` text (the LM study's model, AdamW recipe and gradient clipping; an epoch is
  ``LM_EPOCH_STEPS`` steps, scored by next-byte accuracy), one ``train_trial`` per trial
  against ``train_population`` with k trials at once; its own LR range (``LM_LR_RANGE``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset

from autolr.backends.optuna.bench_search import Report, SearchOutcome, tpe_median_search
from autolr.data import Splits, load_splits
from autolr.data.load import load_text_splits
from autolr.data.text import TextSplits
from autolr.errors import UserError
from autolr.schedule.spec import ScheduleSpec
from autolr.training.device import describe_device
from autolr.training.models import build_model
from autolr.training.module_population import build_member, train_module_population
from autolr.training.population import train_population
from autolr.training.train import evaluate, train_trial

LR_RANGE = (1e-3, 1.0)  # the searched initial LR (log scale)
MODEL = "mlp"
OPTIMIZER: dict[str, Any] = {"name": "sgd", "momentum": 0.9}  # a spec's optimizer table
LM_LR_RANGE = (1e-4, 3e-2)  # the transformer rows' searched peak LR (AdamW)
LM_OPTIMIZER: dict[str, Any] = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}  # the LM recipe
LM_GRAD_CLIP = 1.0
LM_EPOCH_STEPS = 50  # optimizer steps per epoch of the transformer rows
LM_BATCH_SIZE = 32  # windows of 64 bytes per step, as the fortunes study


@dataclass(frozen=True)
class BenchConfig:
    """What ``autolr bench`` runs. ``trials`` per row (a population row runs at least K);
    ``train_limit`` keeps only the first that many training examples (None: all)."""

    dataset: str = "mnist"
    epochs: int = 2
    batch_size: int = 128
    trials: int = 16
    tutorial_trials: int = 16
    population_sizes: tuple[int, ...] = (4, 8, 16)
    train_limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    ray: bool = False  # also run the Ray Tune rows (autolr.backends.ray.bench)
    module_trials: int = 8  # trials of each SmallResNet row
    module_population: int = 8  # K of the SmallResNet population row (0: no SmallResNet rows)
    module_train_limit: int | None = 2000  # training rows of the SmallResNet rows (None: all)
    lm_trials: int = 4  # trials of each transformer row
    lm_population: int = 0  # K of the transformer population row (0: no transformer rows)
    lm_data_dir: str | None = None  # where the fortunes text is (None: where autolr looks)

    @classmethod
    def for_device(cls, device: str | None = None, quick: bool = False) -> "BenchConfig":
        """The issue's configuration for ``device`` (default: CUDA when present, else CPU).

        CPU: MNIST (10,000 digits offline), MLP 784-256-10, batch 128, 2 epochs, 16 trials.
        GPU: Fashion-MNIST, 3 epochs, 8 tutorial trials, 32 single trials, K up to 256.
        ``quick`` is the CPU configuration with populations of 4 and 16 on any device.
        SmallResNet rows: 8 trials, K = 8, 2,000 training rows on a CPU; 64 trials, K = 32,
        every row on a GPU. Transformer rows (fortunes): none on a CPU; 32 trials, K = 32 on a GPU.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if quick or not device.startswith("cuda"):
            return cls(device=device, population_sizes=(4, 16) if quick else (4, 8, 16))
        return cls(
            dataset="fashion-mnist", epochs=3, trials=32, tutorial_trials=8,
            population_sizes=(16, 64, 256), device=device, module_trials=64, module_population=32,
            module_train_limit=None, lm_trials=32, lm_population=32,
        )


@dataclass
class BenchRow:
    """One row of the table: a trainer, how many trials it ran and how fast."""

    name: str
    trials: int
    seconds: float
    trials_per_minute: float
    best_val_accuracy: float | None
    completed: int
    pruned: int
    diverged: int
    population_size: int = 1
    ratio_to_tutorial: float | None = None
    ratio_to_single: float | None = None  # to the single-trial row of the same model


@dataclass
class BenchReport:
    """The whole benchmark: the device, the configuration and one row per trainer."""

    device: str
    config: dict[str, Any]
    rows: list[BenchRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The dict written to ``latest.json``."""
        return {"device": self.device, "config": self.config, "rows": [asdict(row) for row in self.rows]}


def run_bench(config: BenchConfig, on_row: Callable[[BenchRow], None] | None = None) -> BenchReport:
    """Run every row of the benchmark in this process; ``on_row`` sees each row as it finishes."""
    if config.epochs < 1 or config.trials < 1 or config.tutorial_trials < 1 or not config.population_sizes:
        raise UserError("bench needs at least 1 epoch, 1 trial, 1 tutorial trial and one population size")
    if min(config.population_sizes) < 1:
        raise UserError(f"population sizes must be positive, got {list(config.population_sizes)}")
    if config.module_population < 0 or config.module_trials < 1:
        raise UserError("bench needs a SmallResNet population of 0 (no such rows) or more "
                        "and at least 1 SmallResNet trial")
    splits = first_train_rows(load_splits(config.dataset, device=config.device, seed=config.seed), config.train_limit)
    report = BenchReport(device=describe_device(config.device),
                         config={**asdict(config), "dataset_source": splits.source})
    rows: list[tuple[str, int, int, Callable[[list[float], Report], list[tuple[str, float | None]]]]] = [
        ("tutorial_loop", config.tutorial_trials, 1, lambda lrs, report: _tutorial_group(lrs, report, splits, config)),
        ("single_trial", config.trials, 1, lambda lrs, report: _single_group(lrs, report, splits, config)),
    ]
    lm_rows = []
    for size in config.population_sizes:
        rows.append((
            f"population_K{size}", max(config.trials, size), size,
            lambda lrs, report: _population_group(lrs, report, splits, config),
        ))
    if config.module_population:
        module_splits = first_train_rows(splits, config.module_train_limit)
        rows.append(("resnet_single_trial", config.module_trials, 1,
                     lambda lrs, report: _single_group(lrs, report, module_splits, config,
                                                       build_member(_resnet_factory(module_splits), config.seed))))
        rows.append((f"resnet_population_K{config.module_population}",
                     max(config.module_trials, config.module_population), config.module_population,
                     lambda lrs, report: _resnet_population_group(lrs, report, module_splits, config)))
    if config.lm_population:
        text = load_text_splits("fortunes", epoch_steps=LM_EPOCH_STEPS, data_dir=config.lm_data_dir,
                                device=config.device)
        lm_rows = [("transformer_single_trial", config.lm_trials, 1,
                    lambda lrs, report: _lm_group(lrs, report, text, config)),
                   (f"transformer_population_K{config.lm_population}", max(config.lm_trials, config.lm_population),
                    config.lm_population, lambda lrs, report: _lm_group(lrs, report, text, config))]
    for name, trials, size, run_group in rows + lm_rows:
        started = time.perf_counter()
        lr_range = LM_LR_RANGE if name.startswith("transformer_") else LR_RANGE
        outcome = tpe_median_search(run_group, trials, size, *lr_range, seed=config.seed)
        row = _row(name, size, outcome, time.perf_counter() - started)
        report.rows.append(row)
        if on_row is not None:
            on_row(row)
    if config.ray:
        from autolr.backends.ray.bench import ray_searches

        for size, outcome, seconds in ray_searches(config, splits, LR_RANGE, max(config.population_sizes)):
            row = _row(f"ray_tune_K{size}", size, outcome, seconds)
            report.rows.append(row)
            if on_row is not None:
                on_row(row)
    tutorial = report.rows[0].trials_per_minute
    single = {row.name.removesuffix("single_trial"): row.trials_per_minute for row in report.rows
              if row.name.endswith("single_trial")}
    for row in report.rows:
        row.ratio_to_tutorial = row.trials_per_minute / tutorial
        family = next((prefix for prefix in ("resnet_", "transformer_") if row.name.startswith(prefix)), "")
        row.ratio_to_single = row.trials_per_minute / single[family] if family in single else None
    return report


def write_bench(report: BenchReport, out_dir: Path) -> list[Path]:
    """Write ``latest.json``, ``latest.csv`` and ``latest.md`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, markdown_path = (out_dir / f"latest.{ext}" for ext in ("json", "csv", "md"))
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    rows = [asdict(row) for row in report.rows]
    with csv_path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    markdown_path.write_text(markdown_table(report) + "\n")
    return [json_path, csv_path, markdown_path]


TABLE_COLUMNS = ("row", "trials", "trials/min", "best val accuracy", "x tutorial loop", "x single trial")


def table_cells(row: BenchRow) -> tuple[str, ...]:
    """The row as the table's text cells, in TABLE_COLUMNS order."""
    accuracy = "-" if row.best_val_accuracy is None else f"{row.best_val_accuracy:.4f}"
    ratio = "-" if row.ratio_to_tutorial is None else f"{row.ratio_to_tutorial:.1f}"
    to_single = "-" if row.ratio_to_single is None else f"{row.ratio_to_single:.2f}"
    return row.name, str(row.trials), f"{row.trials_per_minute:,.0f}", accuracy, ratio, to_single


def markdown_table(report: BenchReport) -> str:
    """The report as a Markdown table headed by the device and configuration."""
    config = report.config
    lines = [
        f"Device: {report.device}. Data: {config['dataset']} ({config['dataset_source']}), "
        f"model {MODEL}, {config['epochs']} epochs, batch {config['batch_size']}, SGD momentum 0.9, cosine. "
        f"resnet rows: SmallResNet (not built in) on {config['module_train_limit'] or 'all'} training rows; "
        f"torch {torch.__version__}.",
        "",
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    lines += ["| " + " | ".join(table_cells(row)) + " |" for row in report.rows]
    return "\n".join(lines)


def _row(name: str, size: int, outcome: SearchOutcome, seconds: float) -> BenchRow:
    return BenchRow(
        name=name, trials=outcome.trials, seconds=round(seconds, 3),
        trials_per_minute=outcome.trials * 60 / seconds, best_val_accuracy=outcome.best_val_accuracy,
        completed=outcome.completed, pruned=outcome.pruned, diverged=outcome.diverged, population_size=size,
    )


def first_train_rows(splits: Splits, train_limit: int | None) -> Splits:
    """``splits`` with only its first ``train_limit`` training rows (all of them when None)."""
    if train_limit is None:
        return splits
    return replace(splits, train_x=splits.train_x[:train_limit], train_y=splits.train_y[:train_limit])


def _spec(lr: float) -> ScheduleSpec:
    return ScheduleSpec("cosine", lr, optimizer=OPTIMIZER)


def _single_group(
    lrs: list[float], report: Report, splits: Splits, config: BenchConfig, model: str | nn.Module = MODEL,
) -> list[tuple[str, float | None]]:
    (lr,) = lrs
    result = train_trial(
        _spec(lr), model, splits, config.epochs, config.batch_size, seed=config.seed,
        on_epoch=lambda epoch, score: report(0, epoch, score), device=config.device,
    )
    return [(result.status, result.final_score)]


def _population_group(
    lrs: list[float], report: Report, splits: Splits, config: BenchConfig
) -> list[tuple[str, float | None]]:
    results = train_population(
        [_spec(lr) for lr in lrs], MODEL, splits, config.epochs, config.batch_size,
        seeds=[config.seed] * len(lrs), data_seed=config.seed, on_epoch=report, device=config.device,
    )
    return [(result.status, result.final_score) for result in results]


def _lm_group(
    lrs: list[float], report: Report, splits: TextSplits, config: BenchConfig
) -> list[tuple[str, float | None]]:
    """The transformer under the LM recipe's AdamW and clipping: one ``train_trial`` for one LR, else a population."""
    specs = [ScheduleSpec("cosine", lr, optimizer=LM_OPTIMIZER) for lr in lrs]
    if len(specs) == 1:
        results = [train_trial(specs[0], "transformer", splits, config.epochs, LM_BATCH_SIZE, seed=config.seed,
                               on_epoch=lambda epoch, score: report(0, epoch, score), device=config.device,
                               grad_clip=LM_GRAD_CLIP)]
    else:
        results = train_population(specs, "transformer", splits, config.epochs, LM_BATCH_SIZE,
                                   seeds=[config.seed] * len(specs), data_seed=config.seed, on_epoch=report,
                                   device=config.device, grad_clip=LM_GRAD_CLIP)
    return [(result.status, result.final_score) for result in results]


class SmallResNet(nn.Module):
    """A ResNet-style CNN that autolr does not build in: a stem and two residual blocks with BatchNorm.

    Widths ``RESNET_WIDTHS``; the second block halves the resolution (stride 2, 1x1
    projection on the skip path); global average pooling, then a linear classifier.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        narrow, wide = RESNET_WIDTHS
        self.stem = nn.Sequential(nn.Conv2d(channels, narrow, 3, padding=1, bias=False), nn.BatchNorm2d(narrow),
                                  nn.ReLU())
        self.block1 = _residual_branch(narrow, narrow, stride=1)
        self.block2 = _residual_branch(narrow, wide, stride=2)
        self.project = nn.Sequential(nn.Conv2d(narrow, wide, 1, stride=2, bias=False), nn.BatchNorm2d(wide))
        self.head = nn.Linear(wide, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        out = (out + self.block1(out)).relu()
        out = (self.project(out) + self.block2(out)).relu()
        return self.head(out.mean((2, 3)))


RESNET_WIDTHS = (8, 16)  # channels of SmallResNet's first and second residual block


def _residual_branch(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
    )


def _resnet_factory(splits: Splits) -> Callable[[], nn.Module]:
    return lambda: SmallResNet(splits.input_shape[0], splits.num_classes)


def _resnet_population_group(
    lrs: list[float], report: Report, splits: Splits, config: BenchConfig
) -> list[tuple[str, float | None]]:
    results = train_module_population(
        _resnet_factory(splits), [_spec(lr) for lr in lrs], splits, config.epochs, config.batch_size,
        seeds=[config.seed] * len(lrs), data_seed=config.seed, on_epoch=report, device=config.device,
    )
    return [(result.status, result.final_score) for result in results]


class TutorialImages(VisionDataset):
    """A torchvision-style image dataset: each item is a PIL image passed through ``transform``.

    Built from normalized split tensors by undoing the normalization back to the 8-bit
    pixels of the files (``mean`` and ``std`` are in pixel units), so the tutorial loop pays
    what ``torchvision.datasets.MNIST`` pays per example and sees the same inputs.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> None:
        normalize = transforms.Normalize([m / 255 for m in mean], [s / 255 for s in std])  # ToTensor divides by 255
        super().__init__(root="", transform=transforms.Compose([transforms.ToTensor(), normalize]))
        scale, shift = torch.tensor(std).view(1, -1, 1, 1), torch.tensor(mean).view(1, -1, 1, 1)
        pixels = (x.cpu() * scale + shift).round().clamp(0, 255).to(torch.uint8)
        self.images = pixels.permute(0, 2, 3, 1).squeeze(-1).numpy()  # N x H x W (x C)
        self.labels = y.cpu().tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def _tutorial_group(lrs: list[float], report: Report, splits: Splits,
                    config: BenchConfig) -> list[tuple[str, float | None]]:
    """One trial the way the PyTorch and Optuna tutorials write it."""
    (lr,) = lrs
    device = torch.device(config.device)
    train_loader: DataLoader[tuple[torch.Tensor, int]] = DataLoader(
        TutorialImages(splits.train_x, splits.train_y, splits.mean, splits.std),
        batch_size=config.batch_size, shuffle=True, generator=torch.Generator().manual_seed(config.seed),
    )
    val_images = TutorialImages(splits.val_x, splits.val_y, splits.mean, splits.std)
    val_loader: DataLoader[tuple[torch.Tensor, int]] = DataLoader(val_images, batch_size=1000)
    model = build_model(MODEL, splits.input_shape, splits.num_classes, config.seed).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=OPTIMIZER["momentum"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(train_loader))
    accuracy = None
    for epoch in range(config.epochs):
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = 0.0
        for images, labels in val_loader:
            _, batch_accuracy = evaluate(model, images.to(device), labels.to(device))
            correct += float(batch_accuracy) * len(labels)
        accuracy = correct / len(val_images)
        if not torch.isfinite(loss):
            return [("diverged", None)]
        if report(0, epoch, accuracy) and epoch + 1 < config.epochs:
            return [("pruned", accuracy)]
    return [("complete", accuracy)]
