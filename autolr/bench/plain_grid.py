"""The plain loops of `autolr bench cost`: what a user trains without autolr, one peak LR at a time.

- **An image study** (``Recipe.CLASSIFIER``): the study's data as tensors in memory, its model and
  optimizer (torch's own class with the study's settings), torch's ``CosineAnnealingLR`` to zero
  stepped per batch, a seeded permutation each epoch; scored by validation accuracy (a fraction).
- **A language model** (``Recipe.LM``): the study's byte windows and transformer,
  ``torch.optim.AdamW`` with the study's betas and weight decay, the gradient norm clipped to the
  study's ``grad_clip``, a linear warmup from 0 over ``LM_WARMUP`` of the run then cosine to
  ``LM_FLOOR`` of the peak (nanoGPT's ``get_lr`` as a ``LambdaLR``) stepped per optimizer step,
  ``batch_size`` windows drawn per step from a generator seeded with the study's seed; scored by
  validation loss in bits per byte (nats / ln 2) on the fixed validation sample.

Both train one seed (the study's) and score once at the end; a run whose final loss is not
finite scores None.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from autolr.data.text import TextSplits
from autolr.families.base import steps_for
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import LM_WARMUP
from autolr.study.config import StudyConfig
from autolr.study.definition import Recipe
from autolr.training.models import build_model
from autolr.training.train import Splits, evaluate

LM_FLOOR = 0.1  # the LM recipe's cosine ends at 10% of the peak LR
PlainRun = Callable[[StudyConfig, Splits, str, float], "float | None"]  # (config, splits, device, peak LR) -> score


def model_and_optimizer(config: StudyConfig, splits: Splits, device: str, lr: float
                        ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The study's model (initialised from its seed) on ``device`` and its optimizer at ``lr``: torch's own class
    with the study's settings (``torch.optim.AdamW`` for the LM recipe)."""
    model = build_model(config.model, splits.input_shape, splits.num_classes, config.seed).to(device)
    return model, ScheduleSpec("constant", lr, optimizer=config.optimizer).build_optimizer(model.parameters())


def plain_cosine_run(config: StudyConfig, splits: Splits, device: str, lr: float) -> float | None:
    """One image run at peak LR ``lr`` for the verdict's epochs under cosine to zero; its final validation
    accuracy (None when the loss is not finite)."""
    model, optimizer = model_and_optimizer(config, splits, device, lr)
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
    return float(val_accuracy) if torch.isfinite(val_loss).all() else None


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """The LM recipe's LR at ``step`` as a fraction of the peak: linear from 0 over ``warmup_steps``, then
    cosine from 1 down to ``LM_FLOOR`` at ``total_steps``."""
    if step < warmup_steps:
        return step / warmup_steps
    progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return LM_FLOOR + (1 - LM_FLOOR) * (1 + math.cos(math.pi * progress)) / 2


def plain_lm_run(config: StudyConfig, splits: Splits, device: str, lr: float) -> float | None:
    """One language-model run at peak LR ``lr`` for the verdict's steps; its final validation loss in bits per
    byte (None when it is not finite)."""
    assert isinstance(splits, TextSplits), "a language model's study loads text splits"
    assert config.eval_every is not None, "a text study always has eval_every"
    total_steps = config.verdict_epochs * config.eval_every
    warmup_steps = min(steps_for(LM_WARMUP["fraction"], total_steps), total_steps - 1)
    model, optimizer = model_and_optimizer(config, splits, device, lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps))
    train_x, train_y = splits.train_x, splits.train_y
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(total_steps):
        batch = torch.randint(train_x.shape[0], (config.batch_size,), generator=generator).to(device)
        loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        val_loss = float(F.cross_entropy(model(splits.val_x), splits.val_y))
    return val_loss / math.log(2) if math.isfinite(val_loss) else None


PLAIN_RUNS: dict[Recipe, PlainRun] = {Recipe.CLASSIFIER: plain_cosine_run, Recipe.LM: plain_lm_run}
