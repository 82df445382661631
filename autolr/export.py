"""A ScheduleSpec exported as JSON, YAML, TOML, a dependency-free Python function, or Lightning code.

``export(spec, "python")`` writes a readable ``lr_at(step, total_steps)`` in the spirit of
nanoGPT's ``get_lr``: the numbers inlined, only the spec's family, warmup as a first
``if``; it computes exactly what ``spec.lr_at`` does. ``export(spec, "lightning")``
writes a ``configure_optimizers`` for a LightningModule (it needs autolr installed,
because the scheduler is autolr's).
"""

from __future__ import annotations

import pprint
from typing import Callable

from autolr.errors import UserError
from autolr.spec import OPTIMIZER_CLASSES, SCHEDULE_FREE_OPTIMIZERS, ScheduleSpec

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


def _steps(fraction: float) -> str:
    """Source of ``steps_for(fraction, total_steps)`` (the spec's one fraction-to-steps rule)."""
    return f"max(1, round({fraction!r} * total_steps))"


def _cosine_return(min_factor: float, lr: float, cycle: str) -> list[str]:
    return [f"min_lr = {min_factor!r} * {lr!r}",
            f"return min_lr + ({lr!r} - min_lr) * (1 + math.cos(math.pi * step / {cycle})) / 2"]


def _constant(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r}"]


def _plateau(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r}  # reduce-on-plateau: the LR while the metric keeps improving"]


def _step(spec: ScheduleSpec) -> list[str]:
    return [f"step_size = {_steps(spec.params['step_size'])}  # steps between decays",
            f"return {spec.lr!r} * {spec.params['gamma']!r} ** (step // step_size)"]


def _multistep(spec: ScheduleSpec) -> list[str]:
    return [f"milestones = [max(1, round(f * total_steps)) for f in {spec.params['milestones']!r}]",
            f"return {spec.lr!r} * {spec.params['gamma']!r} ** sum(1 for m in milestones if m <= step)"]


def _exponential(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r} * {spec.params['final_factor']!r} ** (step / total_steps)"]


def _inverse_time(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r} / (1 + {spec.params['decay_rate']!r} * step / total_steps)"]


def _polynomial(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r} * (1.0 - step / total_steps) ** {spec.params['power']!r}"]


def _linear(spec: ScheduleSpec) -> list[str]:
    start, end = spec.params["start_factor"], spec.params["end_factor"]
    return [f"ramp_steps = {_steps(spec.params['duration'])}",
            "done = min(step, ramp_steps) / ramp_steps",
            f"return {spec.lr!r} * ({start!r} * (1 - done) + {end!r} * done)"]


def _cosine(spec: ScheduleSpec) -> list[str]:
    return _cosine_return(spec.params["min_factor"], spec.lr, "total_steps")


def _cosine_restarts(spec: ScheduleSpec) -> list[str]:
    mult = spec.params["cycle_mult"]
    lines = [f"cycle_steps = {_steps(spec.params['first_cycle'])}  # length of the first cycle"]
    if mult == 1:
        lines.append("step %= cycle_steps  # steps into the current cycle")
    else:
        lines += [f"while step >= cycle_steps:  # skip finished cycles, each {mult}x longer than the last",
                  "    step -= cycle_steps",
                  f"    cycle_steps *= {mult}"]
    return lines + _cosine_return(spec.params["min_factor"], spec.lr, "cycle_steps")


def _cyclic(spec: ScheduleSpec) -> list[str]:
    mode = spec.params["mode"]
    height = {"triangular": "rise * 1.0",
              "triangular2": "rise * (1 / (2.0 ** (cycle - 1)))  # halved every cycle",
              "exp_range": f"rise * {spec.params['final_scale']!r} ** (step / total_steps)"}[mode]
    return [f"cycle_steps = 2.0 * {_steps(spec.params['step_size_up'])}  # one rise and one fall",
            "cycle = math.floor(1 + step / cycle_steps)",
            "position = 1.0 + step / cycle_steps - cycle  # 0 -> 1 through the cycle",
            "rise = position / 0.5 if position <= 0.5 else (position - 1) / (0.5 - 1)",
            f"height = {height}",
            f"base_lr = {spec.params['base_factor']!r} * {spec.lr!r}",
            f"return base_lr + ({spec.lr!r} - base_lr) * height"]


def _onecycle(spec: ScheduleSpec) -> list[str]:
    params = spec.params
    pct = params["pct_start"]
    if params["three_phase"]:
        ends = f"[{pct!r} * total_steps - 1, 2 * {pct!r} * total_steps - 2, total_steps - 1]"
        lrs = "[(initial_lr, peak_lr), (peak_lr, initial_lr), (initial_lr, final_lr)]"
    else:
        ends = f"[{pct!r} * total_steps - 1, total_steps - 1]"
        lrs = "[(initial_lr, peak_lr), (peak_lr, final_lr)]"
    if params["anneal_strategy"] == "cos":
        anneal = "return lr_end + (lr_start - lr_end) / 2.0 * (math.cos(math.pi * progress) + 1)"
    else:
        anneal = "return (lr_end - lr_start) * progress + lr_start"
    return [f"peak_lr = {spec.lr!r}",
            f"initial_lr = peak_lr / {params['div_factor']!r}",
            f"final_lr = initial_lr / {params['final_div_factor']!r}",
            f"phase_ends = {ends}  # last step of each phase",
            f"phase_lrs = {lrs}",
            "step = min(step, total_steps - 1)  # the last phase ends at step total_steps - 1",
            "start = 0.0",
            "for index, end in enumerate(phase_ends):",
            "    if step <= end or index == len(phase_ends) - 1:",
            "        progress = (step - start) / (end - start) if end != start else 1.0",
            "        lr_start, lr_end = phase_lrs[index]",
            f"        {anneal}",
            "    start = end"]


def _inverse_sqrt(spec: ScheduleSpec) -> list[str]:
    return [f"return {spec.lr!r} / math.sqrt(1 + step / total_steps / {spec.params['timescale']!r})"]


def _wsd(spec: ScheduleSpec) -> list[str]:
    shape = {"linear": "(1 - progress)", "cosine": "(1 + math.cos(math.pi * progress)) / 2",
             "sqrt": "(1 - math.sqrt(progress))"}[spec.params["decay_shape"]]
    return [f"decay_steps = {_steps(spec.params['decay_fraction'])}",
            "decay_start = total_steps - decay_steps",
            "if step <= decay_start:  # stable",
            f"    return {spec.lr!r}",
            "progress = (step - decay_start) / decay_steps  # 0 -> 1 through the decay",
            f"min_lr = {spec.params['min_factor']!r} * {spec.lr!r}",
            f"return min_lr + ({spec.lr!r} - min_lr) * {shape}"]


_BODIES: dict[str, Callable[[ScheduleSpec], list[str]]] = {
    "constant": _constant, "step": _step, "multistep": _multistep, "exponential": _exponential,
    "inverse_time": _inverse_time, "polynomial": _polynomial, "linear": _linear, "cosine": _cosine,
    "cosine_restarts": _cosine_restarts, "cyclic": _cyclic, "onecycle": _onecycle, "plateau": _plateau,
    "inverse_sqrt": _inverse_sqrt, "wsd": _wsd,
}


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
        body += [f"warmup_steps = min({_steps(spec.warmup['fraction'])}, total_steps - 1)",
                 "if step < warmup_steps:  # linear warmup",
                 f"    return {spec.first_lr()!r} * ({start!r} + (1 - {start!r}) * step / warmup_steps)",
                 "step, total_steps = step - warmup_steps, total_steps - warmup_steps  # the rest of the run"]
    body.append("step = min(step, total_steps)  # past the end the LR stays")
    body += _BODIES[spec.family](spec)
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

    Stepped per batch over ``trainer.estimated_stepping_batches``; plateau per epoch over
    ``trainer.max_epochs``, watching the logged ``val_loss``.
    """
    if spec.family == "plateau":  # stepped with the epoch's validation metric
        total_steps, interval = "self.trainer.max_epochs", '"epoch",  # stepped once per epoch'
        monitor = '\n            "monitor": "val_loss",  # the logged metric the plateau schedule watches'
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
