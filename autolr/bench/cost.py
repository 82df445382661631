"""`autolr bench cost`: a study's wall time against the plain LR grid a user would run anyway, side by side.

For each shipped study, at its trial length and at a target length (``target_epochs``),
one process on one device with the same torch threads times:

- **the study**: fresh (its own temporary storage), the whole pipeline ``autolr search``
  runs: data, range test, tuned baselines, search, re-scoring at the verdict's length, report;
- **the plain grid**: the loop a user writes without autolr, after the study on the same
  device: the study's data as tensors in memory, the study's model and optimizer (torch's
  own class with the study's settings), torch's ``CosineAnnealingLR`` stepped per batch,
  one seed, ``GRID_POINTS`` peak LRs log-spaced over the LR range the study searched, each
  trained one after another for the verdict's epochs and scored on validation once at the end.

Both times include loading the data. The ratio is study seconds over grid seconds.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from autolr.errors import UserError
from autolr.jobs.builtin import BuiltinJob
from autolr.pipeline.budget import GRID_POINTS
from autolr.pipeline.run import run_study
from autolr.pipeline.steps import resolve_device, study_space, study_threads
from autolr.rangetest.range_test import RangeTestResult
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import lr_ladder
from autolr.study.config import StudyConfig, packaged_study
from autolr.training.device import describe_hardware, torch_threads
from autolr.training.models import build_model
from autolr.training.train import Splits, evaluate

STUDIES = ("mnist", "fashion-mnist")  # the shipped studies a full run measures
QUICK_STUDY = "smoke"  # the shipped seconds-long study (digits) of ``--quick``
TARGET_FACTOR = 3  # the target length, as a multiple of the study's epochs, when none is given


@dataclass(frozen=True)
class CostRow:
    """One study at one verdict length: its wall time and the plain grid's (seconds)."""

    study: str
    epochs: int  # the study's trial length
    verdict_epochs: int  # the verdict's length, and the grid's
    trials: int  # the study's trials, tuned baselines included
    study_s: float
    grid_s: float
    grid_lrs: tuple[float, float]  # the grid's lowest and highest peak LR (the study's searched range)
    grid_best_lr: float
    grid_best_val_accuracy: float

    @property
    def ratio(self) -> float:
        """How many times the grid's wall time the study took."""
        return self.study_s / self.grid_s


@dataclass(frozen=True)
class CostReport:
    """All rows and what they ran on."""

    rows: tuple[CostRow, ...]
    hardware: str
    torch: str
    threads: int


def study_lengths(names: Sequence[str], target_epochs: int | None) -> list[StudyConfig]:
    """Each named shipped study at its trial length and at ``target_epochs`` (default ``TARGET_FACTOR`` times
    its epochs), checked before anything runs; UserError names a study that is not shipped."""
    configs = []
    for name in names:
        config = packaged_study(name).replace(name=f"bench-cost-{name}")
        target = target_epochs or TARGET_FACTOR * config.epochs
        configs.append(config)
        if target != config.epochs:
            configs.append(config.replace(target_epochs=target))
    return configs


def run_cost(configs: Sequence[StudyConfig], on_row: Callable[[CostRow], None] | None = None) -> CostReport:
    """Time every study in ``configs`` fresh, then its plain grid at the same length, one after another."""
    rows = []
    devices = {resolve_device(config.device) for config in configs}
    if len(devices) != 1:
        raise UserError(f"the studies of one cost run must share a device, got {', '.join(sorted(devices))}")
    (device,) = devices
    threads = study_threads(configs[0], 1).threads  # chosen once: the study and its grid run with the same threads
    for config in configs:
        with tempfile.TemporaryDirectory(prefix="autolr-bench-cost-") as runs_dir:
            run = run_study(config.replace(threads=threads), out=runs_dir)
        assert run.record.range_test is not None, "a finished study stores its range test"
        space = study_space(config, RangeTestResult.from_dict(run.record.range_test))
        lrs = lr_ladder(space.lr_low, space.lr_high, GRID_POINTS)
        with torch_threads(device, threads):
            started = time.perf_counter()
            splits = BuiltinJob(config, device).splits
            accuracies = [plain_cosine_run(config, splits, device, lr) for lr in lrs]
            grid_s = time.perf_counter() - started
        best = max(range(len(lrs)), key=lambda index: (accuracies[index], -index))
        row = CostRow(config.name.removeprefix("bench-cost-"), config.epochs, config.verdict_epochs,
                      len(run.record.trials), run.wall_time_s, grid_s, (lrs[0], lrs[-1]), lrs[best], accuracies[best])
        rows.append(row)
        if on_row is not None:
            on_row(row)
    with torch_threads(device, threads):
        hardware = describe_hardware(device)
    return CostReport(tuple(rows), hardware, torch.__version__, threads if device == "cpu" else torch.get_num_threads())


def plain_cosine_run(config: StudyConfig, splits: Splits, device: str, lr: float) -> float:
    """One run of the plain loop at peak LR ``lr`` for the verdict's epochs; its final validation accuracy
    (0 when the loss is not finite)."""
    model = build_model(config.model, splits.input_shape, splits.num_classes, config.seed).to(device)
    optimizer = ScheduleSpec("constant", lr, optimizer=config.optimizer).build_optimizer(model.parameters())
    rows = splits.train_x.shape[0]
    steps = -(-rows // config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.verdict_epochs * steps)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.verdict_epochs):
        order = torch.randperm(rows, generator=generator).to(device)
        for start in range(0, rows, config.batch_size):
            batch = order[start:start + config.batch_size]
            loss = F.cross_entropy(model(splits.train_x[batch]), splits.train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    val_loss, val_accuracy = evaluate(model, splits.val_x, splits.val_y)
    return float(val_accuracy) if torch.isfinite(val_loss).all() else 0.0


def markdown(report: CostReport) -> str:
    """The cost table."""
    lines = [
        "# What a study costs against the plain grid",
        "",
        f"`autolr bench cost` on {report.hardware}, torch {report.torch}, {report.threads} torch threads. "
        f"Study: a fresh `autolr search` of the shipped study (data, range test, tuned baselines, search, "
        f"re-scoring at the verdict's length, report). Plain grid: {GRID_POINTS} peak LRs log-spaced over the "
        "study's searched LR range, torch's optimizer with the study's settings and `CosineAnnealingLR` stepped "
        "per batch, tensors in memory, one seed, trained one after another for the verdict's epochs. Both "
        "include loading the data; they ran one after another in one process.",
        "",
        "| study | trial epochs | verdict epochs | trials | study (s) | plain grid (s) | study / grid "
        "| grid LRs | grid best LR (val accuracy) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        lines.append(
            f"| {row.study} | {row.epochs} | {row.verdict_epochs} | {row.trials} | {row.study_s:.1f} "
            f"| {row.grid_s:.1f} | {row.ratio:.1f}x | {row.grid_lrs[0]:.3g}–{row.grid_lrs[1]:.3g} "
            f"| {row.grid_best_lr:.3g} ({row.grid_best_val_accuracy:.4f}) |")
    return "\n".join(lines) + "\n"


def write_cost(report: CostReport, out_dir: Path) -> tuple[Path, Path]:
    """``cost.json`` and ``cost.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "cost.json", out_dir / "cost.md"
    payload = {"hardware": report.hardware, "torch": report.torch, "threads": report.threads,
               "rows": [{**asdict(row), "ratio": row.ratio} for row in report.rows]}
    json_path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path
