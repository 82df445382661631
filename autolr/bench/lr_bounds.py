"""Benchmark: where each schedule family's best peak LR lies relative to the LR range test.

For each setting (dataset x model x epochs x optimizer): run autolr's sweep range test on
the training rows, then, for each family (constant, cosine, one-cycle, linear decay, wsd),
train a log grid of peak LRs around the range test's loss minimum on two seeds at once
with the population trainer and score validation accuracy at the end (diverged: 0).
Settings are marked "calibration" or "held-out" in ``SETTINGS`` before any result was
seen: per-family bounds (factors of loss_min) are derived from the calibration settings
only, and the held-out settings check them. The "fresh" settings were added after the
bounds were fixed, mostly AdamW and a CNN on SGD (the weakest parts of the first set), and
check them again. Every per-seed score is saved, so the table and the bounds can be re-read
from the JSON without training again, and a stopped run resumes at the first setting it lacks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from autolr.bench.lr_bounds_analysis import GOOD_BAND, Bounds, GridBest, derive_bounds, grid_best
from autolr.bench.throughput import first_train_rows
from autolr.rangetest.range_test import builtin_range_test
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import lr_ladder
from autolr.space.search_space import BASELINES
from autolr.training.device import describe_hardware
from autolr.training.population import train_population

FAMILY_PARAMS: dict[str, dict[str, Any]] = {
    "constant": {},
    "cosine": {"min_factor": 0.0},  # down to 0
    "onecycle": {key.split(".", 1)[1]: value for key, value in BASELINES["onecycle"].items()},  # autolr's baseline
    "linear": {"start_factor": 1.0, "end_factor": 0.0, "duration": 1.0},  # linear decay to 0 over the run
    "wsd": {},  # spec defaults: last 20% decays linearly to 0
}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},  # as studies/mnist.toml
    "adamw": {"name": "adamw", "weight_decay": 0.01},  # torch's default betas (0.9, 0.999)
}
CALIBRATION, HELD_OUT, FRESH = "calibration", "held-out", "fresh"

# Per-family peak-LR bounds (lo, hi) as factors of the range test's loss minimum, derived by
# this benchmark from its calibration settings (reports/reference/lr-bounds.md; a test keeps
# them equal to what that run derives).
DERIVED_BOUNDS: dict[str, tuple[float, float]] = {
    "constant": (0.038, 1.9),
    "cosine": (0.062, 1.9),
    "onecycle": (0.1, 3.1),
    "linear": (0.062, 1.9),
    "wsd": (0.062, 1.9),
}


@dataclass(frozen=True)
class Setting:
    """One dataset x model x epochs x optimizer; ``train_rows`` keeps only the first that many training rows."""

    dataset: str
    model: str
    epochs: int
    optimizer: str  # a key of OPTIMIZERS
    role: str  # CALIBRATION, HELD_OUT or FRESH, fixed before the results were seen
    train_rows: int | None = None  # None: every training row

    @property
    def name(self) -> str:
        """A short label, e.g. ``mnist mlp 3ep sgd``."""
        return f"{self.dataset} {self.model} {self.epochs}ep {self.optimizer}"


SETTINGS: tuple[Setting, ...] = (
    Setting("digits", "mlp", 10, "sgd", CALIBRATION),
    Setting("digits", "cnn", 10, "adamw", CALIBRATION),
    Setting("mnist", "mlp", 9, "sgd", CALIBRATION),
    Setting("fashion-mnist", "mlp", 3, "adamw", CALIBRATION, train_rows=10_000),
    Setting("digits", "mlp", 30, "adamw", HELD_OUT),
    Setting("mnist", "mlp", 3, "sgd", HELD_OUT),
    Setting("fashion-mnist", "mlp", 3, "sgd", HELD_OUT, train_rows=10_000),
    Setting("mnist", "cnn", 3, "adamw", HELD_OUT, train_rows=3_000),
    # added after DERIVED_BOUNDS was fixed, before any of them ran:
    Setting("mnist", "mlp", 3, "adamw", FRESH),
    Setting("mnist", "mlp", 9, "adamw", FRESH),
    Setting("fashion-mnist", "mlp", 9, "adamw", FRESH, train_rows=10_000),
    Setting("digits", "cnn", 5, "sgd", FRESH),
)


@dataclass(frozen=True)
class BoundsSize:
    """What the benchmark runs: settings, the LR grid (factors of loss_min, log-spaced), seeds, batch."""

    settings: tuple[Setting, ...] = SETTINGS
    grid_points: int = 11
    grid_low: float = 1 / 16  # lowest grid LR / loss_min
    grid_high: float = 8.0  # highest grid LR / loss_min
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = 128

    @property
    def grid_step(self) -> float:
        """The factor between neighbouring grid LRs."""
        return (self.grid_high / self.grid_low) ** (1 / (self.grid_points - 1))

    def grid_factors(self) -> list[float]:
        """The grid LRs as factors of loss_min, lowest first."""
        return lr_ladder(self.grid_low, self.grid_high, self.grid_points)


QUICK = BoundsSize(settings=(Setting("digits", "mlp", 2, "sgd", CALIBRATION),
                             Setting("digits", "mlp", 2, "adamw", HELD_OUT)), grid_points=3)


@dataclass
class RangePoints:
    """The range test's points (LRs): its suggestion, loss minimum, where it stopped, and its search interval."""

    suggestion: float
    loss_min: float
    divergence: float  # the LR where the sweep stopped for divergence, else its last LR
    stop_reason: str
    interval: tuple[float, float]
    seconds: float


@dataclass
class FamilyGrid:
    """One family's grid: ``scores[i][j]`` is the final validation accuracy at ``lrs[i]``, seed j (None: diverged)."""

    family: str
    lrs: list[float]
    scores: list[list[float | None]]
    seconds: float

    def best(self) -> GridBest:
        """The grid's best LR, good band and edge flag."""
        return grid_best(self.lrs, self.scores)


@dataclass
class SettingRun:
    """A setting's range test and its grids, one per family."""

    setting: Setting
    training_rows: int
    range_test: RangePoints
    families: dict[str, FamilyGrid] = field(default_factory=dict)

    def ratio(self, family: str) -> float:
        """The family's best LR / loss_min."""
        return self.families[family].best().best_lr / self.range_test.loss_min


def run_setting(setting: Setting, splits: Any, size: BoundsSize) -> SettingRun:
    """The range test and every family's grid of ``setting`` on ``splits``."""
    data = first_train_rows(splits, setting.train_rows)
    optimizer = OPTIMIZERS[setting.optimizer]
    started = time.perf_counter()
    found = builtin_range_test(setting.model, data, method="sweep", batch_size=size.batch_size,
                               optimizer=optimizer, seed=size.seeds[0], check=False)  # as a study runs it
    points = RangePoints(found.suggestion, found.suggestions["loss_min"], found.lrs[-1], found.stop_reason,
                         found.interval, time.perf_counter() - started)
    run = SettingRun(setting, len(data.train_y), points)
    lrs = [points.loss_min * factor for factor in size.grid_factors()]
    for family, params in FAMILY_PARAMS.items():
        started = time.perf_counter()
        specs = [ScheduleSpec(family, lr, params=params, optimizer=optimizer) for lr in lrs for _ in size.seeds]
        members = train_population(specs, setting.model, data, epochs=setting.epochs, batch_size=size.batch_size,
                                   seeds=list(size.seeds) * len(lrs), data_seed=size.seeds[0])
        finals = [m.final_score if m.status == "complete" else None for m in members]
        scores = [finals[i:i + len(size.seeds)] for i in range(0, len(finals), len(size.seeds))]
        run.families[family] = FamilyGrid(family, lrs, scores, time.perf_counter() - started)
    return run


def run_bench(size: BoundsSize, data_dir: str | None = None, done: list[SettingRun] | None = None,
              on_setting: Callable[[list[SettingRun]], None] | None = None) -> list[SettingRun]:
    """Every setting of ``size`` in order, taken from ``done`` where it ran already; ``on_setting`` gets the runs
    so far after each one it runs."""
    from autolr.data import load_splits

    finished = {run.setting: run for run in done or []}
    splits: dict[str, Any] = {}
    runs: list[SettingRun] = []
    for setting in size.settings:
        if setting in finished:
            runs.append(finished[setting])
            continue
        if setting.dataset not in splits:
            splits[setting.dataset] = load_splits(setting.dataset, data_dir=data_dir, seed=0)
        runs.append(run_setting(setting, splits[setting.dataset], size))
        if on_setting is not None:
            on_setting(runs)
    return runs


@dataclass(frozen=True)
class FamilyBounds:
    """A family's bounds from the calibration runs, and how many held-out and fresh best LRs fall inside them."""

    bounds: Bounds
    calibration_ratios: list[float]
    held_out_inside: int
    held_out_total: int
    fresh_inside: int
    fresh_total: int


def family_bounds(runs: list[SettingRun], margin: float) -> dict[str, FamilyBounds]:
    """Per family: bounds (factors of loss_min) holding every calibration best LR with ``margin`` each side."""
    out = {}
    for family in FAMILY_PARAMS:
        calibration = [run.ratio(family) for run in runs if run.setting.role == CALIBRATION]
        held_out = [run.ratio(family) for run in runs if run.setting.role == HELD_OUT]
        fresh = [run.ratio(family) for run in runs if run.setting.role == FRESH]
        if not calibration:
            continue
        bounds = derive_bounds(calibration, margin)
        out[family] = FamilyBounds(bounds, calibration, sum(map(bounds.contains, held_out)), len(held_out),
                                   sum(map(bounds.contains, fresh)), len(fresh))
    return out


def hardware() -> str:
    """The CPU's model, its cores and torch's version and threads."""
    return f"{describe_hardware('cpu')}, torch {torch.__version__}"


def markdown(runs: list[SettingRun], size: BoundsSize, hardware: str, wall_seconds: float) -> str:
    """The tables: range-test points and best LRs per setting, every family's detail, and the derived bounds."""
    factors = size.grid_factors()
    families = list(FAMILY_PARAMS)
    lines = [
        "# Where each family's best peak LR lies relative to the LR range test",
        "",
        f"Per setting: autolr's sweep range test (100 steps, 1e-7 to 10, seed {size.seeds[0]}) on the training rows, "
        f"then per family {size.grid_points} peak LRs from loss_min x {factors[0]:.3g} to loss_min x {factors[-1]:.3g} "
        f"({size.grid_step:.2f}x apart), seeds {', '.join(map(str, size.seeds))} (model initialisation; one batch "
        f"order), batch {size.batch_size}, validation accuracy after the last epoch (diverged: 0). Families: "
        + "; ".join(f"{family} {params or '(defaults)'}" for family, params in FAMILY_PARAMS.items())
        + f". Optimizers: {'; '.join(f'{name} {settings}' for name, settings in OPTIMIZERS.items())}. "
        f"Best LR: the grid point with the highest mean accuracy over seeds; good band: the grid points within "
        f"{GOOD_BAND * 100:.1f} points of it; **edge**: the best is the grid's first or last point, so the true best "
        f"may lie beyond. Calibration/held-out was fixed in code before the run; the fresh settings were added "
        f"after the bounds were derived, before they ran.",
        "",
        f"Hardware: {hardware}. Total wall time: {wall_seconds / 60:.1f} min.",
        "",
        "| setting | role | train rows | suggestion | loss_min | divergence LR (stop) | "
        + " | ".join(f"{f} best (x loss_min)" for f in families) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(families),
    ]
    for run in runs:
        points = run.range_test
        cells = []
        for family in families:
            best = run.families[family].best()
            cells.append(f"{best.best_lr:.3g} ({run.ratio(family):.2f}x){' edge' if best.edge else ''}")
        rows = f"{run.training_rows}{' (subsampled)' if run.setting.train_rows else ''}"
        lines.append(f"| {run.setting.name} | {run.setting.role} | {rows} | {points.suggestion:.3g} | "
                     f"{points.loss_min:.3g} | {points.divergence:.3g} ({points.stop_reason}) | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Every family in detail", "",
              "| setting | family | best LR | mean val acc | / suggestion | / loss_min | / divergence LR | "
              "good band (x loss_min) | edge |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        points = run.range_test
        for family in families:
            best = run.families[family].best()
            band = ", ".join(f"{lr / points.loss_min:.2g}" for lr in best.good_lrs)
            lines.append(f"| {run.setting.name} | {family} | {best.best_lr:.3g} "
                         f"| {best.mean_scores[best.best_index]:.4f} "
                         f"| {best.best_lr / points.suggestion:.2f} | {run.ratio(family):.2f} | "
                         f"{best.best_lr / points.divergence:.3g} | {band} | {'edge' if best.edge else ''} |")
    lines += _bounds_lines(runs, size)
    return "\n".join(lines) + "\n"


def _bounds_lines(runs: list[SettingRun], size: BoundsSize) -> list[str]:
    """The derived bounds and their held-out check; also how often the former interval
    [suggestion/10, loss_min] holds the best."""
    derived = family_bounds(runs, size.grid_step)
    lines = ["", "## Derived bounds (factors of loss_min)", "",
             f"From the calibration settings only: the narrowest [lo, hi] holding every calibration best LR / "
             f"loss_min, widened by one grid step ({size.grid_step:.2f}x) each side and rounded outwards to two "
             f"digits; then counted on the held-out and the fresh settings. Last column: how many best LRs (all "
             f"settings) lie inside the interval the search sampled before these bounds, [suggestion/10, loss_min].",
             "", "| family | calibration best / loss_min | lo_f | hi_f | held-out inside | fresh inside "
             "| the former interval holds |", "|---|---|---|---|---|---|---|"]
    for family, found in derived.items():
        former = sum(run.range_test.interval[0] <= run.families[family].best().best_lr <= run.range_test.interval[1]
                     for run in runs)
        edges = sum(run.families[family].best().edge for run in runs if run.setting.role == CALIBRATION)
        lines.append(f"| {family} | {', '.join(f'{r:.2f}' for r in found.calibration_ratios)}"
                     f"{f' ({edges} at the grid edge)' if edges else ''} | {found.bounds.lo:g} | {found.bounds.hi:g} "
                     f"| {found.held_out_inside}/{found.held_out_total} | {found.fresh_inside}/{found.fresh_total} "
                     f"| {former}/{len(runs)} |")
    return lines


def to_json(runs: list[SettingRun], size: BoundsSize, hardware: str, wall_seconds: float) -> dict[str, Any]:
    """Every raw number (per-seed scores of every grid point), each grid's best and good band, and the bounds."""
    settings = []
    for run in runs:
        record = asdict(run)
        for family, grid in run.families.items():
            best = grid.best()
            record["families"][family].update(mean_scores=best.mean_scores, best_lr=best.best_lr,
                                               best_over_loss_min=run.ratio(family), good_lrs=best.good_lrs,
                                               edge=best.edge)
        settings.append(record)
    bounds = {family: {"lo_factor": found.bounds.lo, "hi_factor": found.bounds.hi,
                       "calibration_ratios": found.calibration_ratios, "held_out_inside": found.held_out_inside,
                       "held_out_total": found.held_out_total, "fresh_inside": found.fresh_inside,
                       "fresh_total": found.fresh_total}
              for family, found in family_bounds(runs, size.grid_step).items()}
    return {"size": asdict(size), "hardware": hardware, "wall_seconds": wall_seconds, "good_band": GOOD_BAND,
            "settings": settings, "derived_bounds": bounds}


def write(runs: list[SettingRun], size: BoundsSize, out_dir: Path, hardware: str,
          wall_seconds: float) -> tuple[Path, Path]:
    """Write ``lr-bounds.json`` and ``lr-bounds.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "lr-bounds.json", out_dir / "lr-bounds.md"
    json_path.write_text(json.dumps(to_json(runs, size, hardware, wall_seconds), indent=1))
    md_path.write_text(markdown(runs, size, hardware, wall_seconds))
    return json_path, md_path


def read(json_path: Path) -> tuple[list[SettingRun], BoundsSize, float]:
    """The runs, size and wall time (s) that ``write`` saved (derived fields are recomputed, not read)."""
    payload = json.loads(json_path.read_text())
    size_fields = dict(payload["size"])
    size = BoundsSize(**{**size_fields, "settings": tuple(Setting(**s) for s in size_fields["settings"]),
                         "seeds": tuple(size_fields["seeds"])})
    runs = []
    for record in payload["settings"]:
        points = RangePoints(**{**record["range_test"], "interval": tuple(record["range_test"]["interval"])})
        families = {name: FamilyGrid(grid["family"], grid["lrs"], grid["scores"], grid["seconds"])
                    for name, grid in record["families"].items()}
        runs.append(SettingRun(Setting(**record["setting"]), record["training_rows"], points, families))
    return runs, size, payload["wall_seconds"]
