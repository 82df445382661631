"""`autolr bench cost`: a study's wall time against the plain LR grid a user would run anyway, side by side.

For each shipped study, at its trial length and at a target length (``target_epochs``; a
language model's ``target_steps``), one process on one device with the same torch threads times:

- **the study**: the whole pipeline ``autolr search`` runs (data, range test, tuned baselines,
  search, re-scoring at the verdict's length, report), stored under its own folder of the runs
  folder, one per length;
- **the plain grid**: the loop a user writes without autolr (``autolr.bench.plain_grid``: the
  study's data and model, torch's optimizer with the study's settings, cosine per step; a
  language model's: AdamW, clipping, warmup then cosine to 10%), after the study on the same
  device, one seed, ``GRID_POINTS`` peak LRs log-spaced over the LR range the study searched
  (a language model's: over ``INDEPENDENT_GRID``, a fixed range, so that the check does not share
  the range test's anchor), each trained for the verdict's length and scored on validation once at the end.

Before timing either, :func:`warm_up_torch` pays once what every torch training script pays on its
first step (a torch optimizer's construction, which imports ``torch._dynamo`` lazily: seconds on a
CPU; one forward and backward pass), so that whichever runs first does not pay it for both. What only
autolr needs (Optuna, SQLAlchemy, scipy, plotly) is not warmed up: it is the study's cost.

A row holds both wall times, the study's verdict and export, each tuned baseline's LR and scores
(means over the verdict's fresh seeds, in the study's unit: accuracy, or bits per byte) and the
grid's best LR and score. Both times include loading the data; the ratio is study seconds over
grid seconds.

Repeats: on a small CPU a dozen short runs vary by up to 40% in wall time from one run to the next
(a 12-point grid took 3.4 s and 4.9 s, back to back). With ``repeats`` above 1 each row measures
the study and its grid that many times, alternating (a fresh study each time, in its own folder),
and its seconds are each side's median, with every repeat's kept; the row's verdict and export are
the first repeat's, and the table says where a later repeat's differed (the budget is sized from
wall times measured during the study, so its plan can differ).

Resuming: each part is stored in ``cost-parts.json`` as it finishes (the study's attempts,
the grid's data loading and every grid point, with their wall seconds), so a stopped run
continues where it stopped, the study from its storage, and a row's seconds are the sums of
its parts' (an attempt stopped by Ctrl-C or SIGTERM counts up to the stop; a killed one is lost).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from autolr.bench.plain_grid import PLAIN_RUNS
from autolr.errors import UserError
from autolr.jobs.builtin import BuiltinJob
from autolr.pipeline.budget import GRID_POINTS
from autolr.pipeline.run import run_study
from autolr.pipeline.steps import resolve_device, study_space, study_threads
from autolr.rangetest.range_test import RangeTestResult
from autolr.report.rank import in_score_unit, metric_name, stored_verdict
from autolr.space.baselines import lr_ladder
from autolr.study.config import StudyConfig, packaged_study
from autolr.study.definition import Recipe
from autolr.study.records import StudyRecord, maximizes
from autolr.study.verdict import counted, describe, failure_score, mean
from autolr.training.device import describe_hardware, torch_threads

STUDIES = ("mnist", "fashion-mnist")  # the shipped studies a full run measures
QUICK_STUDY = "smoke"  # the shipped seconds-long study (digits) of ``--quick``
TARGET_FACTOR = {Recipe.CLASSIFIER: 3, Recipe.LM: 4}  # the default target length, times the trial length
# A grid range fixed per recipe (None: the study's searched range). AdamW on a small transformer trains well
# around 1e-3 (nanoGPT's 6e-4 to 1e-3); its range test anchors the search ~200x higher (bench rangetest-lm).
INDEPENDENT_GRID: dict[Recipe, tuple[float, float] | None] = {Recipe.CLASSIFIER: None, Recipe.LM: (1e-4, 0.1)}
PARTS_FILE = "cost-parts.json"


@dataclass(frozen=True)
class CostRow:
    """One study at one verdict length: its wall time and the plain grid's (seconds), and what each found.

    Lengths are in ``unit`` (epochs, or a language model's optimizer steps); scores are named by
    ``score_name`` (validation accuracy, or loss in bits per byte). ``baselines``: each tuned
    baseline kind's ``lr`` and mean ``val``/``test`` score over the verdict's fresh seeds.
    ``hardware``, ``torch`` and ``threads``: what it was measured on. ``study_s`` and ``grid_s`` are
    medians over ``study_runs_s`` and ``grid_runs_s``, one per repeat; ``repeat_exports`` each
    repeat's outcome and export.
    """

    study: str
    unit: str
    length: int  # the study's trial length
    verdict_length: int  # the verdict's length, and the grid's
    trials: int  # the study's trials, tuned baselines included
    study_s: float
    grid_s: float
    grid_lrs: tuple[float, float]  # the grid's lowest and highest peak LR (INDEPENDENT_GRID, else the searched range)
    grid_best_lr: float | None  # None: every grid run failed
    grid_best_score: float | None
    score_name: str
    outcome: str
    verdict: str
    exported: str
    exported_val: float
    exported_test: float
    baselines: dict[str, dict[str, float]]
    hardware: str  # what the row's study ran on (a resumed row: its first part's machine)
    torch: str
    threads: int
    study_runs_s: tuple[float, ...] = ()
    grid_runs_s: tuple[float, ...] = ()
    repeat_exports: tuple[str, ...] = ()

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


def study_lengths(names: Sequence[str], target_epochs: int | None = None, target_steps: int | None = None,
                  target_only: bool = False) -> list[StudyConfig]:
    """Each named shipped study at its trial length (unless ``target_only``) and at its target length
    (``target_epochs``, a language model's ``target_steps``; default ``TARGET_FACTOR`` times its trial
    length), checked before anything runs; UserError names a study that is not shipped or a length in the
    wrong unit (epochs for a language model, steps for an image study)."""
    configs = []
    for name in names:
        config = packaged_study(name).replace(name=f"bench-cost-{name}")
        target = config.replace(target_epochs=target_epochs, target_steps=target_steps)
        if target_epochs is None and target_steps is None:
            factor = TARGET_FACTOR[config.recipe]
            target = (config.replace(target_steps=factor * config.steps) if config.steps is not None
                      else config.replace(target_epochs=factor * config.epochs))
        if not target_only and target.verdict_epochs != config.epochs:
            configs.append(config)
        configs.append(target)
    return configs


def unit_of(config: StudyConfig) -> tuple[str, int]:
    """The unit a study's length is given in and epochs per unit-less count: (``steps``, eval_every) for a
    language model, (``epochs``, 1) otherwise."""
    return ("steps", config.eval_every or 1) if config.steps is not None else ("epochs", 1)


def row_key(config: StudyConfig) -> str:
    """The row's name in the parts file and its study's folder: the study and its verdict length, e.g.
    ``fortunes-1600steps``."""
    unit, per_epoch = unit_of(config)
    return f"{study_name(config)}-{config.verdict_epochs * per_epoch}{unit}"


def study_name(config: StudyConfig) -> str:
    """The shipped study's name."""
    return config.name.removeprefix("bench-cost-")


class Parts:
    """``cost-parts.json``: every finished part of every row, written after each one (so a stop loses at most
    the part in progress); the torch threads the run chose, kept for its resumption."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"rows": {}}

    def row(self, key: str) -> dict[str, Any]:
        """The parts stored for row ``key`` (an empty dict, stored from now on, when there are none)."""
        return self.data["rows"].setdefault(key, {})

    def repeats(self, key: str) -> list[dict[str, Any]]:
        """Row ``key``'s repeats, one dict of parts each (a row stored before repeats: its parts are the first)."""
        row = self.row(key)
        if "study_attempts_s" in row or "grid_points" in row:
            first = {name: row.pop(name) for name in ("study_attempts_s", "study", "grid_data_s", "grid_points")
                     if name in row}
            row["repeats"] = [first]
        return row.setdefault("repeats", [])

    def save(self) -> None:
        """Write every part stored so far."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1), encoding="utf-8")


def run_cost(configs: Sequence[StudyConfig], runs_dir: Path, out_dir: Path,
             on_row: Callable[[CostRow], None] | None = None, repeats: int = 1) -> CostReport:
    """Every study in ``configs`` (stored under ``runs_dir``), then its plain grid at the same length, one after
    another, ``repeats`` times per row; parts stored in ``out_dir``/``PARTS_FILE`` as they finish, and those
    already stored are kept."""
    devices = {resolve_device(config.device) for config in configs}
    if len(devices) != 1:
        raise UserError(f"the studies of one cost run must share a device, got {', '.join(sorted(devices))}")
    (device,) = devices
    parts = Parts(out_dir / PARTS_FILE)
    # chosen once: the study and its grid run with the same threads, a resumed run with the stored ones
    threads = parts.data.setdefault("threads", study_threads(configs[0], 1).threads)
    warm_up_torch(device)
    rows = []
    for config in configs:
        row = cost_row(config.replace(threads=threads), device, runs_dir, parts, repeats)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return CostReport(tuple(rows), describe_hardware(device), torch.__version__,
                      threads if device == "cpu" else torch.get_num_threads())


def warm_up_torch(device: str) -> None:
    """What any torch training script pays once, paid before either side is timed: a torch optimizer's first
    construction (its lazy ``torch._dynamo`` import) and one forward and backward pass on ``device``."""
    layer = torch.nn.Linear(4, 2).to(device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(torch.ones(3, 4, device=device)).sum().backward()
    optimizer.step()


def cost_row(config: StudyConfig, device: str, runs_dir: Path, parts: Parts, repeats: int = 1) -> CostRow:
    """One row: ``repeats`` times (at least those already stored), the study's stored summary, else the study run
    (or resumed) now, then each grid point not yet stored; the row's seconds are each side's median."""
    key = row_key(config)
    parts.row(key).setdefault("measured_on", {
        "hardware": describe_hardware(device), "torch": torch.__version__,
        "threads": config.threads if device == "cpu" else torch.get_num_threads()})
    stored = parts.repeats(key)
    while len(stored) < repeats:
        stored.append({})
    measured = [_measure(config, device, runs_dir / (key if index == 0 else f"{key}-r{index}"), repeat, parts)
                for index, repeat in enumerate(stored)]
    first = stored[0]
    study = first["study"]
    unit, per_epoch = unit_of(config)
    points = first["grid_points"]
    scored = [point for point in points if point["score"] is not None]
    sign = 1.0 if config.direction.maximize else -1.0
    best = max(scored, key=lambda point: sign * point["score"], default=None)
    study_runs, grid_runs = tuple(m[0] for m in measured), tuple(m[1] for m in measured)
    lrs = _grid_lrs(config, study)
    return CostRow(
        study_name(config), unit, config.epochs * per_epoch, config.verdict_epochs * per_epoch, study["trials"],
        statistics.median(study_runs), statistics.median(grid_runs), (lrs[0], lrs[-1]),
        best and best["lr"], best and best["score"], study["score_name"], study["outcome"],
        study["verdict"], study["exported"], study["exported_val"], study["exported_test"], study["baselines"],
        **parts.row(key)["measured_on"], study_runs_s=study_runs, grid_runs_s=grid_runs,
        repeat_exports=tuple(f"{r['study']['outcome']}, {r['study']['exported']}" for r in stored))


def _grid_lrs(config: StudyConfig, study: dict[str, Any]) -> list[float]:
    """The plain grid's peak LRs: ``INDEPENDENT_GRID``'s range, else the study's searched one."""
    low, high = INDEPENDENT_GRID[config.recipe] or study["lr_range"]
    return lr_ladder(low, high, GRID_POINTS)


def _measure(config: StudyConfig, device: str, folder: Path, stored: dict[str, Any],
             parts: Parts) -> tuple[float, float]:
    """One repeat: the study (stored in ``folder``) unless ``stored`` holds its summary, then the grid points
    ``stored`` lacks; the study's and the grid's wall seconds (sums of their parts)."""
    if "study" not in stored:
        stored.setdefault("study_attempts_s", [])
        started = time.perf_counter()
        try:
            run = run_study(config, out=folder)
        finally:  # Ctrl-C or SIGTERM: the stopped attempt's seconds count
            stored["study_attempts_s"].append(time.perf_counter() - started)
            parts.save()
        stored["study"] = study_summary(run.record, config)
        parts.save()
    lrs = _grid_lrs(config, stored["study"])
    points = stored.setdefault("grid_points", [])
    plain_run = PLAIN_RUNS[config.recipe]
    with torch_threads(device, config.threads or 1):
        if len(points) < len(lrs):
            started = time.perf_counter()
            splits = BuiltinJob(config, device).splits
            stored.setdefault("grid_data_s", time.perf_counter() - started)  # the first load: a resume loads again
        for lr in lrs[len(points):]:
            started = time.perf_counter()
            score = plain_run(config, splits, device, lr)
            points.append({"lr": lr, "score": score, "seconds": time.perf_counter() - started})
            parts.save()
    return sum(stored["study_attempts_s"]), stored["grid_data_s"] + sum(point["seconds"] for point in points)


def study_summary(record: StudyRecord, config: StudyConfig) -> dict[str, Any]:
    """What a row keeps of a finished study: its trials, searched LR range, verdict, export and tuned baselines
    (LR, and mean validation and test scores over the verdict's seeds, in the study's score unit)."""
    assert record.range_test is not None, "a finished study stores its range test"
    space = study_space(config, RangeTestResult.from_dict(record.range_test))
    shown = in_score_unit(record)
    verdict = stored_verdict(shown)
    if verdict is None:
        raise RuntimeError(f"study {record.name!r} has no verdict: nothing was re-scored")
    maximize = maximizes(shown)
    val_failed = failure_score([item.val_scores for item in shown.rescored], maximize)
    test_failed = failure_score([item.test_scores for item in shown.rescored], maximize)

    def scores(index: int) -> dict[str, float]:
        item = shown.rescored[index]
        return {"lr": item.spec["lr"], "val": mean(counted(item.val_scores, val_failed)),
                "test": mean(counted(item.test_scores, test_failed))}

    exported = scores(verdict.exported)
    return {
        "trials": len(record.trials), "lr_range": [space.lr_low, space.lr_high],
        "score_name": f"validation {metric_name(shown)}", "outcome": verdict.outcome, "verdict": verdict.sentence,
        "exported": describe(shown.rescored[verdict.exported]), "exported_val": exported["val"],
        "exported_test": exported["test"],
        "baselines": {item.baseline: scores(index) for index, item in enumerate(shown.rescored) if item.baseline},
    }


def _score(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.4f}"


def _seconds(median: float, runs: Sequence[float]) -> str:
    """A median wall time, with the repeats' lowest and highest when there were several: ``6.8 (6.7–7.0)``."""
    return f"{median:.1f}" if len(runs) < 2 else f"{median:.1f} ({min(runs):.1f}–{max(runs):.1f})"


def markdown(report: CostReport) -> str:
    """The cost table, then each row's verdict and tuned baselines."""
    lines = [
        "# What a study costs against the plain grid",
        "",
        f"`autolr bench cost` on {report.hardware}, torch {report.torch}, {report.threads} torch threads. "
        f"Study: `autolr search` of the shipped study (data, range test, tuned baselines, search, "
        f"re-scoring at the verdict's length, report). Plain grid: {GRID_POINTS} peak LRs log-spaced over the "
        "study's searched LR range (a language model's: a fixed range, the grid LRs column), one seed, trained one "
        "after another for the verdict's length, scored once on "
        "validation: an image study with torch's optimizer at the study's settings and `CosineAnnealingLR` to zero "
        "per batch; a language model with `torch.optim.AdamW` at the study's betas and weight decay, its gradient "
        "norm clipped, linear warmup from 0 over 5% then cosine to 10% of the peak (`LambdaLR`) per optimizer step. "
        "Both include loading the data; they ran one after another in one process (a resumed row sums its parts), "
        "after a warm-up of what any torch script pays once (a torch optimizer's first construction, which imports "
        "`torch._dynamo`, and one forward and backward pass); autolr's own imports (Optuna, SQLAlchemy, scipy, "
        "plotly) count in the study's time. With several repeats (the repeats column), each side was measured that "
        "many times, alternating, a fresh study each time: the seconds are medians (lowest–highest), the ratio is "
        "theirs, and the verdict and export are the first repeat's.",
        "",
        "| study | trial length | verdict length | trials | repeats | study (s) | plain grid (s) | study / grid "
        "| grid LRs | grid best LR (score) | verdict | exported (val, test) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        best = "all failed" if row.grid_best_lr is None else f"{row.grid_best_lr:.3g} ({_score(row.grid_best_score)})"
        lines.append(
            f"| {row.study} | {row.length} {row.unit} | {row.verdict_length} {row.unit} | {row.trials} "
            f"| {max(len(row.study_runs_s), 1)} | {_seconds(row.study_s, row.study_runs_s)} "
            f"| {_seconds(row.grid_s, row.grid_runs_s)} | {row.ratio:.1f}x "
            f"| {row.grid_lrs[0]:.3g}–{row.grid_lrs[1]:.3g} | {best} | {row.outcome} "
            f"| {row.exported} ({_score(row.exported_val)}, {_score(row.exported_test)}) |")
    differing = [f"- {row.study} at {row.verdict_length} {row.unit}: a later repeat's study answered otherwise ("
                 + "; ".join(f"repeat {index + 1}: {answer}" for index, answer in enumerate(row.repeat_exports))
                 + ")." for row in report.rows if len(set(row.repeat_exports)) > 1]
    if differing:
        lines += ["", *differing]
    lines += ["", "## Verdicts and tuned baselines", ""]
    for row in report.rows:
        lines.append(f"- **{row.study}, {row.verdict_length} {row.unit}** ({row.score_name}): {row.verdict} "
                     "Tuned baselines (LR: val, test): " + "; ".join(
                         f"{kind} {scores['lr']:.3g}: {_score(scores['val'])}, {_score(scores['test'])}"
                         for kind, scores in row.baselines.items()) + ".")
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
