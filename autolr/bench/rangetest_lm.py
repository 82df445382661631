"""Benchmark: the range test on the transformer (fortunes, AdamW with the LM recipe) against a constant-LR grid.

The language-model part of ``autolr bench rangetest`` (issue #25, item 6). The settings
(``LM_SIZE``) were fixed in code and committed before they first ran: the fortunes study's
job (the default transformer, batch 32 windows of 64 bytes, AdamW betas 0.9/0.95 and weight
decay 0.1, gradient norm clipped at 1.0) at ``LENGTHS`` steps, on ``SEEDS``. Per seed, one
population of ``GRID_LRS`` constant LRs trains for the longest length, scored in bits per
byte on the fixed validation sample every ``eval_every`` steps; a constant LR's first N
steps do not depend on how long it goes on, so its score at each shorter length is read off
the same run. The grid's best LR per length is the vertex of a parabola in log LR (the image
bench's ``grid_best``, on the negated loss). The range tests run once per seed: the product's
CPU range test as the study calls it (``builtin_range_test``, sweep, 3 seeds, clipped) and
torch-lr-finder's steepest-slope suggestion on the same sweep (it cannot clip). Judging
(``judge_lm``): good within ``TARGET_FACTOR`` of the grid's best LR or within ``GOOD_BITS``
of its loss; collapse more than ``COLLAPSE_BITS`` worse, a diverged run counting
``DIVERGED_BITS``. The population range test and the sweep's check do not run on text yet
(their held-out split takes image rows): see the README's range-test section.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from autolr.bench.rangetest import TARGET_FACTOR, Judgement, _torch_lr_finder, grid_best
from autolr.data.load import load_text_splits
from autolr.rangetest.range_test import builtin_range_test
from autolr.schedule.spec import ScheduleSpec
from autolr.training.models import build_model
from autolr.training.population import train_population

LM_OPTIMIZER: dict[str, Any] = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}  # the LM recipe
GRAD_CLIP = 1.0  # the LM recipe's gradient-norm limit
# 13 constant LRs 1.78x apart, 1.8e-4 .. 0.18: from 5x below nanoGPT's small-model 1e-3 to where a 2-layer width-64
# model's AdamW steps are large enough to leave clipping no help (chosen before any grid ran).
GRID_LRS = tuple(10 ** (k / 4) for k in range(-15, -2))
GOOD_BITS = 0.05  # good: at most this many bits per byte worse than the grid's best ...
COLLAPSE_BITS = 0.5  # ... collapse: more than this many worse (or diverged)
DIVERGED_BITS = 8.0  # a diverged run counts as a uniform guess over 256 bytes
METHODS = ("autolr sweep", "torch-lr-finder")


@dataclass(frozen=True)
class LMSize:
    """The LM bench's settings: lengths (optimizer steps), seeds, the grid, the batch (windows), how often the grid
    is scored (steps), the window length (bytes) and where the text is (None: where autolr looks)."""

    lengths: tuple[int, ...] = (400, 800, 1600)  # the study's trial length, 2x, its 4x target
    seeds: tuple[int, ...] = (0, 1, 2)
    grid_lrs: tuple[float, ...] = GRID_LRS
    batch_size: int = 32
    eval_every: int = 50
    context: int = 64
    data_dir: str | None = None
    sweep_steps: int = 100  # the product's default sweep: 100 steps from 1e-7 to 10


LM_SIZE = LMSize()  # fixed before the first run (commit "bench rangetest-lm: the LM settings")
QUICK = LMSize(lengths=(10, 20), seeds=(0,), grid_lrs=tuple(10 ** (k / 2) for k in range(-8, -1)), batch_size=4,
               eval_every=5, context=16, sweep_steps=20)


@dataclass
class LMSeed:
    """One seed's runs: ``grid_bits[i]`` the validation bits per byte of ``grid_lrs[i]`` after each ``eval_every``
    steps (cut short where it diverged); the range tests' suggestions (method -> LR), the sweep's rules, and
    seconds per part."""

    seed: int
    grid_lrs: list[float]
    grid_bits: list[list[float]]
    suggestions: dict[str, float] = field(default_factory=dict)
    rules: dict[str, float] = field(default_factory=dict)
    seed_suggestions: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def bits_at(self, length: int, eval_every: int) -> list[float]:
        """Each grid LR's bits per byte after ``length`` steps; ``DIVERGED_BITS`` where it had diverged."""
        index = length // eval_every - 1
        return [curve[index] if index < len(curve) and math.isfinite(curve[index]) else DIVERGED_BITS
                for curve in self.grid_bits]


def run_seed(splits: Any, seed: int, size: LMSize) -> LMSeed:
    """The grid (trained for the longest length), the product's sweep and torch-lr-finder for ``seed``."""
    started = time.perf_counter()
    specs = [ScheduleSpec("constant", lr, optimizer=LM_OPTIMIZER) for lr in size.grid_lrs]
    members = train_population(specs, "transformer", splits, epochs=max(size.lengths) // size.eval_every,
                               batch_size=size.batch_size, seeds=[seed] * len(specs), data_seed=seed, metric="loss",
                               grad_clip=GRAD_CLIP)
    record = LMSeed(seed, list(size.grid_lrs), [[loss / math.log(2) for loss in m.val_losses] for m in members])
    record.seconds["grid"] = time.perf_counter() - started
    started = time.perf_counter()
    sweep = builtin_range_test("transformer", splits, method="sweep", check=False, num_steps=size.sweep_steps,
                               batch_size=size.batch_size, optimizer=LM_OPTIMIZER, seed=seed, grad_clip=GRAD_CLIP)
    record.seconds["autolr sweep"] = time.perf_counter() - started
    record.suggestions["autolr sweep"] = sweep.suggestion
    record.rules, record.seed_suggestions = dict(sweep.suggestions), list(sweep.seed_suggestions)
    started = time.perf_counter()
    network = build_model("transformer", splits.input_shape, splits.num_classes, seed)
    optimizer = ScheduleSpec("constant", 0.01, optimizer=LM_OPTIMIZER).build_optimizer(network.parameters())
    finder = _torch_lr_finder(network, optimizer, splits.train_x, splits.train_y, torch.nn.CrossEntropyLoss(),
                              size.batch_size, seed)
    record.seconds["torch-lr-finder"] = time.perf_counter() - started
    if finder is not None:
        record.suggestions["torch-lr-finder"] = finder
    return record


def lm_grid_best(lrs: list[float], bits: list[float]) -> float:
    """The grid's best LR: ``grid_best`` (parabola vertex in log LR) on the negated bits per byte."""
    return grid_best(lrs, [-b for b in bits])


def bits_at_lr(lrs: list[float], bits: list[float], lr: float) -> float:
    """The grid's bits per byte at ``lr``: linear in log LR between its neighbours (the edge's value outside)."""
    return float(np.interp(math.log(lr), np.log(lrs), bits))


def judge_lm(lrs: list[float], bits: list[float], lr: float) -> Judgement:
    """Good: within ``TARGET_FACTOR`` of the grid's best LR, or training at ``lr`` (read off the grid) within
    ``GOOD_BITS`` of the grid's best bits per byte; collapse: more than ``COLLAPSE_BITS`` worse."""
    ratio = lr / lm_grid_best(lrs, bits)
    gap = bits_at_lr(lrs, bits, lr) - min(bits)
    return Judgement(ratio, max(ratio, 1 / ratio) <= TARGET_FACTOR or gap <= GOOD_BITS, gap > COLLAPSE_BITS)


def run_lm_bench(size: LMSize, done: list[LMSeed] | None = None,
                 on_seed: Callable[[list[LMSeed]], None] | None = None) -> list[LMSeed]:
    """Every seed of ``size`` not in ``done``, in order; ``on_seed(seeds so far)`` after each one."""
    splits = load_text_splits("fortunes", context=size.context, epoch_steps=size.eval_every, data_dir=size.data_dir)
    records = list(done or [])
    for seed in size.seeds:
        if seed not in {r.seed for r in records}:
            records.append(run_seed(splits, seed, size))
            if on_seed is not None:
                on_seed(records)
    return records


def summary(records: list[LMSeed], size: LMSize) -> dict[str, dict[int, dict[str, int]]]:
    """Per method and length: cases, good and collapses."""
    out: dict[str, dict[int, dict[str, int]]] = {}
    for length in size.lengths:
        for record in records:
            bits = record.bits_at(length, size.eval_every)
            for name, lr in record.suggestions.items():
                verdict = judge_lm(record.grid_lrs, bits, lr)
                cell = out.setdefault(name, {}).setdefault(length, {"cases": 0, "good": 0, "collapses": 0})
                cell["cases"] += 1
                cell["good"] += verdict.good
                cell["collapses"] += verdict.collapse
    return out


def _cell(lrs: list[float], bits: list[float], lr: float | None) -> str:
    if lr is None:
        return "-"
    verdict = judge_lm(lrs, bits, lr)
    mark = " collapse" if verdict.collapse else "" if verdict.good else " miss"
    return f"{lr:.3g} ({verdict.ratio:.2f}x, +{bits_at_lr(lrs, bits, lr) - min(bits):.3f}){mark}"


def markdown(records: list[LMSeed], size: LMSize, hardware: str) -> str:
    """The LM bench as Markdown: one row per length and seed, then good / cases per method and length."""
    lines = [
        "# LR range test on the transformer (fortunes, AdamW) against a constant-LR grid",
        "",
        f"Job: the fortunes study's (the default transformer, batch {size.batch_size} windows of {size.context} "
        f"bytes, AdamW betas 0.9/0.95, weight decay 0.1, gradient norm clipped at {GRAD_CLIP:g}). Grid: "
        f"{len(size.grid_lrs)} constant LRs from {size.grid_lrs[0]:.2g} to {size.grid_lrs[-1]:.2g}, one population "
        f"per seed trained {max(size.lengths)} steps and scored every {size.eval_every} steps in bits per byte on "
        "the fixed validation sample (256 windows); the grid's best LR is the vertex of a parabola in log LR through "
        "the best point and two neighbours each side. autolr sweep: the study's range test on CPU (3 seeds, "
        f"{size.sweep_steps} steps from 1e-7 to 10, clipped; the loss minimum / 4). torch-lr-finder: steepest slope "
        "of the same sweep, one seed, not clipped"
        + ("" if any("torch-lr-finder" in r.suggestions for r in records) else " (\"-\": not installed here)")
        + f". Hardware: {hardware}.",
        "",
        f"Cells: suggested LR (ratio to the grid's best LR, bits per byte above the grid's best). Good: within "
        f"{TARGET_FACTOR:g}x or within {GOOD_BITS:g} bits per byte; \"miss\": not good; \"collapse\": more than "
        f"{COLLAPSE_BITS:g} bits per byte worse (a diverged run counts {DIVERGED_BITS:g}). The sweep's loss minimum "
        "(ratio to the grid's best LR) is what the study's search anchors its peak-LR intervals on.",
        "",
        "| steps | seed | grid best LR | grid best bits/byte | " + " | ".join(METHODS) + " | sweep's loss minimum |",
        "|---|---|---|---|" + "---|" * (len(METHODS) + 1),
    ]
    for length in size.lengths:
        for r in records:
            bits = r.bits_at(length, size.eval_every)
            best, loss_min = lm_grid_best(r.grid_lrs, bits), r.rules["loss_min"]
            lines.append(f"| {length} | {r.seed} | {best:.3g} | {min(bits):.3f} | "
                         + " | ".join(_cell(r.grid_lrs, bits, r.suggestions.get(m)) for m in METHODS)
                         + f" | {loss_min:.3g} ({loss_min / best:.2f}x) |")
    stats = summary(records, size)
    lines += ["", "| method | " + " | ".join(f"good at {n} steps" for n in size.lengths) + " | collapses |",
              "|---|" + "---|" * (len(size.lengths) + 1)]
    for name, parts in stats.items():
        lines.append(f"| {name} | " + " | ".join(f"{parts[n]['good']}/{parts[n]['cases']}" for n in size.lengths)
                     + f" | {sum(p['collapses'] for p in parts.values())} |")
    return "\n".join(lines) + "\n"


def write_lm(records: list[LMSeed], size: LMSize, out_dir: Path, hardware: str) -> tuple[Path, Path]:
    """Write ``rangetest-lm.json`` (every grid curve) and ``rangetest-lm.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "rangetest-lm.json", out_dir / "rangetest-lm.md"
    payload = {"size": asdict(size), "hardware": hardware, "torch_threads": torch.get_num_threads(),
               "summary": summary(records, size), "seeds": [asdict(r) for r in records]}
    json_path.write_text(json.dumps(payload, indent=1))
    md_path.write_text(markdown(records, size, hardware))
    return json_path, md_path


def read_lm(json_path: Path) -> tuple[list[LMSeed], str]:
    """The seeds and the hardware line ``write_lm`` stored."""
    payload = json.loads(json_path.read_text())
    return [LMSeed(**record) for record in payload["seeds"]], payload["hardware"]
