"""A ScheduleSpec exported as JSON, YAML, TOML, a dependency-free Python function, or Lightning code.

``export(spec, "python")`` writes a readable ``lr_at(step, total_steps)`` in the spirit of
nanoGPT's ``get_lr``: the numbers inlined, only the spec's family, warmup as a first
``if``; it computes exactly what ``spec.lr_at`` does. ``export(spec, "lightning")``
writes a ``configure_optimizers`` for a LightningModule (it needs autolr installed,
because the scheduler is autolr's).
"""

from __future__ import annotations

import pprint

from autolr import families
from autolr.errors import UserError
from autolr.families.base import steps_source
from autolr.schedule.optimizers import OPTIMIZER_CLASSES, SCHEDULE_FREE_OPTIMIZERS
from autolr.schedule.spec import ScheduleSpec

EXPORT_FORMATS = ("json", "yaml", "toml", "python", "lightning")


def export(spec: ScheduleSpec, export_format: str) -> str:
    """The spec as text in ``export_format`` (one of ``EXPORT_FORMATS``)."""
    if export_format in ("json", "yaml", "toml"):
        return spec.to_text(export_format)
    if export_format == "python":
        return to_python(spec)
    if export_format == "lightning":
        return to_lightning(spec)
    raise UserError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {export_format!r}")


def _package_optimizer(spec: ScheduleSpec, parameters: str) -> tuple[str, str] | None:
    """(import line, constructor call on ``parameters``) of the spec's optimizer when a package
    other than torch provides it (schedulefree, prodigyopt), else None."""
    settings = spec.optimizer_settings()
    module, class_name = OPTIMIZER_CLASSES[settings.pop("name")]
    if module == "torch.optim":
        return None
    arguments = "".join(f", {key}={tuple(value) if key == 'betas' else value!r}" for key, value in settings.items())
    return f"import {module}", f"{module}.{class_name}({parameters}, lr={spec.lr!r}{arguments})"


_SCHEDULE_FREE_NOTE = ("Schedule-free: call optimizer.train() before training steps and optimizer.eval() before "
                       "evaluating or saving.")


def _optimizer_function(spec: ScheduleSpec) -> tuple[list[str], list[str]]:
    """Import lines and a ``make_optimizer(parameters)`` for a package optimizer (none for torch's)."""
    construction = _package_optimizer(spec, "parameters")
    if construction is None:
        return [], []
    import_line, call = construction
    docstring = ['    """The optimizer the schedule was tuned with; before each step, set every group\'s "lr" '
                 'to lr_at.']
    if spec.optimizer_settings()["name"] in SCHEDULE_FREE_OPTIMIZERS:
        docstring += ["", f"    {_SCHEDULE_FREE_NOTE}"]
    return [import_line], ["", "", "def make_optimizer(parameters):", *docstring, '    """', f"    return {call}"]


def to_python(spec: ScheduleSpec) -> str:
    """Source of a dependency-free ``lr_at(step, total_steps)`` equal to ``spec.lr_at``."""
    body = []
    if spec.warmup is not None:
        start = spec.warmup["start_factor"]
        body += [f"warmup_steps = min({steps_source(spec.warmup['fraction'])}, total_steps - 1)",
                 "if step < warmup_steps:  # linear warmup",
                 f"    return {spec.first_lr()!r} * ({start!r} + (1 - {start!r}) * step / warmup_steps)",
                 "step, total_steps = step - warmup_steps, total_steps - warmup_steps  # the rest of the run"]
    body.append("step = min(step, total_steps)  # past the end the LR stays")
    body += families.FAMILIES[spec.family].python_body(spec.lr, spec.params)
    if spec.momentum_at(0, 1) is not None:
        body.insert(0, "# This schedule also cycles momentum; autolr's spec.momentum_at gives it.")
    imports, optimizer_function = _optimizer_function(spec)
    if any("math." in line for line in body):
        imports.insert(0, "import math")
    lines = [f'"""The learning-rate schedule {spec.family} (lr {spec.lr!r}), exported by autolr."""', ""]
    if imports:
        lines += [*imports, ""]
    lines += ["", "def lr_at(step, total_steps):",
              '    """LR for the step after `step` scheduler steps (0 = first) of a `total_steps`-step run."""']
    lines += [f"    {line}" for line in body]
    return "\n".join(lines + optimizer_function) + "\n"


def to_lightning(spec: ScheduleSpec) -> str:
    """Source of a LightningModule ``configure_optimizers`` for this spec.

    Stepped per batch over ``trainer.estimated_stepping_batches``; a schedule stepped on a
    metric per epoch over ``trainer.max_epochs``, watching the logged ``val_loss``.
    """
    if spec.on_metric:  # stepped with the epoch's validation metric
        total_steps, interval = "self.trainer.max_epochs", '"epoch",  # stepped once per epoch'
        monitor = '\n            "monitor": "val_loss",  # the logged metric the schedule watches'
    else:
        total_steps, monitor = "self.trainer.estimated_stepping_batches", ""
        interval = '"step",  # stepped once per batch'
    data = pprint.pformat(spec.to_dict(), sort_dicts=False, width=88)
    construction = _package_optimizer(spec, "self.parameters()")
    import_line, call = construction if construction is not None else ("", "SPEC.build_optimizer(self.parameters())")
    return f'''"""configure_optimizers for a LightningModule, exported by autolr (paste into your module)."""

{import_line + chr(10) if import_line else ""}from autolr import ScheduleSpec

SPEC = ScheduleSpec.from_dict({data})


def configure_optimizers(self):
    optimizer = {call}
    scheduler = SPEC.build(optimizer, total_steps={total_steps})
    return {{
        "optimizer": optimizer,
        "lr_scheduler": {{
            "scheduler": scheduler,
            "interval": {interval}
            "frequency": 1,{monitor}
        }},
    }}
{_SCHEDULE_FREE_HOOKS if spec.optimizer_settings()["name"] in SCHEDULE_FREE_OPTIMIZERS else ""}'''


_SCHEDULE_FREE_HOOKS = f'''

# {_SCHEDULE_FREE_NOTE} These hooks do it (paste them too).
def on_train_batch_start(self, batch, batch_idx):
    self.optimizers(use_pl_optimizer=False).train()  # steps are taken at the training weights


def on_validation_epoch_start(self):
    self.optimizers(use_pl_optimizer=False).eval()  # score (and checkpoint) the averaged weights


def on_train_end(self):
    self.optimizers(use_pl_optimizer=False).eval()  # the trained model keeps the averaged weights
'''
