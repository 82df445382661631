"""The optimizers a spec may name: their parameters, where their classes live, and their check.

torch's SGD, Adam and AdamW, the schedulefree package's schedule-free SGD and AdamW, and
prodigyopt's Prodigy. Pure data (no torch): ``autolr.schedule.schedulers.build_optimizer`` imports a
class only when it builds one.
"""

from __future__ import annotations

from typing import Any

from autolr.errors import SpecError
from autolr.families.parameter import REQUIRED, Parameter, check_section, momentum, show

_WEIGHT_DECAY = Parameter("weight_decay", 0.0, "L2 penalty", low=0.0)
_ADAM_BETAS = Parameter("betas", [0.9, 0.999], "Adam's beta1 and beta2", kind="pair", low=0.0, high=1.0,
                        high_open=True)
_ADAM_EPS = Parameter("eps", 1e-8, "Adam's epsilon", low=0.0, low_open=True)
_ADAM_PARAMETERS = (_ADAM_BETAS, _ADAM_EPS)
OPTIMIZER_PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "sgd": (
        momentum("momentum", 0.0, "SGD momentum"),
        Parameter("nesterov", False, "Nesterov momentum (needs momentum > 0)", kind="bool"),
        _WEIGHT_DECAY,
    ),
    "adam": (*_ADAM_PARAMETERS, _WEIGHT_DECAY),
    "adamw": (*_ADAM_PARAMETERS, Parameter("weight_decay", 0.01, "decoupled weight decay", low=0.0)),
    "schedulefree_sgd": (
        Parameter("momentum", 0.9, "interpolation between the SGD iterate and its average", low=0.0, high=1.0,
                  low_open=True, high_open=True),
        _WEIGHT_DECAY,
    ),
    "schedulefree_adamw": (
        Parameter("betas", [0.9, 0.999], "beta1 (interpolation, as momentum) and Adam's beta2", kind="pair",
                  low=0.0, high=1.0, low_open=True, high_open=True),
        _ADAM_EPS,
        Parameter("weight_decay", 0.0, "weight decay at the interpolated point", low=0.0),
    ),
    "prodigy": (
        _ADAM_BETAS,
        Parameter("weight_decay", 0.0, "decoupled weight decay", low=0.0),
        Parameter("d_coef", 1.0, "multiplier of Prodigy's step-size estimate d", low=0.0, low_open=True),
        Parameter("safeguard_warmup", False, "leave lr out of d's denominator (for LR warmup)", kind="bool"),
        Parameter("use_bias_correction", False, "Adam's bias correction", kind="bool"),
    ),
}
# Where an optimizer's class lives (module, class): torch's own, and the schedulefree and
# prodigyopt packages' (imported only when such an optimizer is built).
OPTIMIZER_CLASSES: dict[str, tuple[str, str]] = {
    "sgd": ("torch.optim", "SGD"), "adam": ("torch.optim", "Adam"), "adamw": ("torch.optim", "AdamW"),
    "schedulefree_sgd": ("schedulefree", "SGDScheduleFree"),
    "schedulefree_adamw": ("schedulefree", "AdamWScheduleFree"),
    "prodigy": ("prodigyopt", "Prodigy"),
}
# Optimizers that keep separate weights for training and evaluation: call ``optimizer.train()``
# before training steps and ``optimizer.eval()`` before evaluating or saving.
SCHEDULE_FREE_OPTIMIZERS = ("schedulefree_sgd", "schedulefree_adamw")
OPTIMIZER_NOTES = {  # what lr means where it is not a plain step size (shown in the reference table)
    "schedulefree_sgd": "lr: the SGD step of the iterate; needs optimizer.train() and .eval()",
    "schedulefree_adamw": "lr: the Adam step of the iterate; needs optimizer.train() and .eval()",
    "prodigy": "lr: a multiplier of Prodigy's own step-size estimate; 1.0 is the package's recommendation",
}
DEFAULT_OPTIMIZER = {"name": "sgd", "momentum": 0.9}  # the settings of a spec without ``optimizer``


def check_optimizer(optimizer: Any) -> dict[str, Any]:
    """``optimizer`` (a table with ``name``) checked against OPTIMIZER_PARAMETERS, defaults filled in;
    SpecError names the bad field."""
    if not isinstance(optimizer, dict):
        raise SpecError(f"optimizer must be a table of keys to values, got {show(optimizer)}")
    name = optimizer.get("name", REQUIRED)
    if name is REQUIRED:
        raise SpecError("optimizer.name is missing")
    name = name.lower() if isinstance(name, str) else name  # AdamW as torch spells it is fine too
    if name not in OPTIMIZER_PARAMETERS:
        raise SpecError(f"optimizer.name must be one of {', '.join(OPTIMIZER_PARAMETERS)}, got {show(name)}")
    settings = {key: value for key, value in optimizer.items() if key != "name"}
    checked = check_section(settings, OPTIMIZER_PARAMETERS[name], "optimizer", name)
    if checked.get("nesterov") and checked["momentum"] == 0:
        raise SpecError("optimizer.nesterov needs optimizer.momentum > 0, got momentum 0")
    return {"name": name, **checked}
