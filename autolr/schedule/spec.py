"""ScheduleSpec: a learning-rate schedule as plain, versioned data with a closed form (no torch).

A schedule is a function of training progress times the initial (peak) LR ``lr``,
optionally preceded by linear warmup. Every parameter that depends on the run length
is a FRACTION of the run, so a spec transfers to runs of any length. A "step" is
whatever unit the scheduler is stepped in: once per batch, or once per epoch with
``total_steps`` = epochs. ``lr_at(step, total_steps)`` is the LR used for the step
after ``step`` scheduler steps: step 0 is the first training step, and the run's last
training step is ``total_steps - 1``. Past ``total_steps`` the LR stays at its value at
``total_steps`` (torch's own classes may go on cycling there).

Run-length fractions become whole step counts in one place, ``steps_for``:
``max(1, round(fraction * total_steps))`` (zero for a zero fraction). Warmup takes
``steps_for(warmup.fraction, total_steps)`` steps (at most ``total_steps - 1``) and
ramps linearly from ``start_factor`` times the family's first LR up to it; the family
then runs over the remaining steps (its own ``total_steps``). The family's first LR is
``lr``, except linear (``start_factor * lr``), cyclic (``base_factor * lr``) and onecycle
(``lr / div_factor``).

A spec file (JSON, YAML or TOML) has the keys ``autolr_spec`` (must be 1), ``family``,
``lr`` (in ``(0, MAX_LR]``: an LR above 1e3 is a typo, not a schedule), ``params``,
``warmup``, ``optimizer`` and ``provenance``. Missing parameters take their defaults;
unknown keys are rejected by name. ``provenance`` is a free table (study, dataset, model,
score, ...) of strings, numbers, booleans, lists and tables. Without ``optimizer`` a spec
means SGD with momentum 0.9 (``DEFAULT_OPTIMIZER``).

Every family's formula and the reference table of every parameter (names, defaults, valid
ranges, meanings; ``describe_parameters()``'s output, kept equal by a test) are in
``docs/spec-reference.md``.
"""

from __future__ import annotations

import json
import numbers
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from autolr import families
from autolr.errors import SpecError, UserError
from autolr.families.base import Stepping, steps_for
from autolr.families.parameter import REQUIRED, Parameter, check_section, fraction, is_number, show
from autolr.schedule.optimizers import (
    DEFAULT_OPTIMIZER,
    OPTIMIZER_NOTES,
    OPTIMIZER_PARAMETERS,
    SCHEDULE_FREE_OPTIMIZERS,
    check_optimizer,
)

SPEC_VERSION = 1
TOP_LEVEL_KEYS = ("autolr_spec", "family", "lr", "params", "warmup", "optimizer", "provenance")
FILE_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}

# Each family's parameters, from its module in autolr/families/ (the registry is the one definition).
FAMILY_PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    name: family.parameters for name, family in families.FAMILIES.items()}
FAMILIES = tuple(FAMILY_PARAMETERS)

WARMUP_PARAMETERS: tuple[Parameter, ...] = (
    fraction("fraction", REQUIRED, "fraction of the run spent warming up", low_open=False, high_open=True),
    fraction("start_factor", 0.0, "first warmup LR / the family's first LR", low_open=False, high_open=True),
)

MAX_LR = 1e3  # the highest LR a spec may hold: above it is a typo, and lr times a family's factors could overflow
_LR = Parameter("lr", REQUIRED, "initial (or peak) LR", low=0.0, low_open=True, high=MAX_LR)


def describe_parameters() -> str:
    """The reference table of every family's, warmup's and optimizer's parameters."""
    def rows(parameters: tuple[Parameter, ...]) -> list[str]:
        return [f"  {p.name:<19} {'(required)' if p.default is REQUIRED else show(p.default):<20} "
                f"{p.valid():<27} {p.meaning}" for p in parameters]

    lines = []
    for family in families.FAMILIES.values():
        lines.append(f"params of {family.name}:" + ("" if family.parameters else " (none)"))
        lines.extend(rows(family.parameters))
    lines.append("warmup:")
    lines.extend(rows(WARMUP_PARAMETERS))
    for name, parameters in OPTIMIZER_PARAMETERS.items():
        note = f" ({OPTIMIZER_NOTES[name]})" if name in OPTIMIZER_NOTES else ""
        lines.append(f"optimizer with name {name}{note}:")
        lines.extend(rows(parameters))
    return "\n".join(lines)


PROVENANCE_DEPTH = 16  # levels of lists and tables allowed inside provenance


def _check_provenance(value: Any, where: str, depth: int = 0) -> None:
    """Provenance holds only what JSON, YAML and TOML can all store (so no nulls), nested a little."""
    if isinstance(value, (dict, list)) and depth == PROVENANCE_DEPTH:
        raise SpecError(f"provenance is nested too deeply (more than {PROVENANCE_DEPTH} levels)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(f"{where} keys must be strings, got {show(key)}")
            _check_provenance(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_provenance(item, f"{where}[{index}]", depth + 1)
    elif not (isinstance(value, (str, bool)) or is_number(value)):
        raise SpecError(f"{where} must be a string, finite number, boolean, list or table, got {show(value)}")


def _check_steps(step: int, total_steps: int) -> None:
    if not isinstance(total_steps, numbers.Integral) or isinstance(total_steps, bool) or total_steps < 1:
        raise UserError(f"total_steps must be an integer >= 1, got {total_steps!r}")
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
        raise UserError(f"step must be an integer >= 0, got {step!r}")


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule: family, initial (or peak) LR, family parameters, warmup.

    ``lr``: the initial (or peak) LR of a parameter group created with ``lr=spec.lr`` (as
    ``build_optimizer`` does). ``build`` scales each group's own initial LR by
    ``lr_at(step) / lr``, as torch's schedulers do, so groups created with other LRs (a
    backbone at a tenth of the head's LR) keep their ratios.

    ``params``: the family's parameters (see the module's table); missing ones are filled
    with their defaults. ``warmup``: ``{"fraction", "start_factor"}`` or None.
    ``optimizer``: the settings the schedule was tuned with (``name`` one of
    ``OPTIMIZER_PARAMETERS`` and that optimizer's settings) or None; schedule-free
    optimizers take no cycled momentum. ``provenance``: where it came from (study,
    dataset, model, score, ...) or None. Invalid values raise SpecError naming the field.
    """

    family: str
    lr: float
    params: dict[str, Any] = field(default_factory=dict)
    warmup: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.family not in families.FAMILIES:
            raise SpecError(f"family must be one of {', '.join(families.FAMILIES)}, got {show(self.family)}")
        object.__setattr__(self, "lr", _LR.check(self.lr, "lr"))
        params = check_section(self.params, families.FAMILIES[self.family].parameters, "params", self.family)
        if "base_momentum" in params and params["base_momentum"] > params["max_momentum"]:
            raise SpecError(f"params.base_momentum must be <= params.max_momentum ({params['max_momentum']}), "
                            f"got {params['base_momentum']}")
        object.__setattr__(self, "params", params)
        if self.warmup is not None:
            object.__setattr__(self, "warmup", check_section(self.warmup, WARMUP_PARAMETERS, "warmup", "warmup"))
        if self.optimizer is not None:
            object.__setattr__(self, "optimizer", check_optimizer(self.optimizer))
            if params.get("cycle_momentum") and self.optimizer["name"] in SCHEDULE_FREE_OPTIMIZERS:
                raise SpecError(f"params.cycle_momentum must be false with optimizer {self.optimizer['name']}, "
                                f"whose momentum converts its training weights to its evaluation weights")
        if self.provenance is not None:
            if not isinstance(self.provenance, dict):
                raise SpecError(f"provenance must be a table of keys to values, got {show(self.provenance)}")
            _check_provenance(self.provenance, "provenance")
            object.__setattr__(self, "provenance", dict(self.provenance))

    def warmup_steps(self, total_steps: int) -> int:
        """Steps of linear warmup in a run of ``total_steps`` (0 without warmup; at most total_steps - 1)."""
        if self.warmup is None:
            return 0
        return min(steps_for(self.warmup["fraction"], total_steps), total_steps - 1)

    def _family_position(self, step: int, total_steps: int) -> tuple[int, int]:
        """(step, total_steps) counted within the family, after warmup, step clamped to the end."""
        _check_steps(step, total_steps)
        warmup_steps = self.warmup_steps(total_steps)
        family_steps = total_steps - warmup_steps
        return min(max(step - warmup_steps, 0), family_steps), family_steps

    def lr_at(self, step: int, total_steps: int) -> float:
        """The LR for the step after ``step`` scheduler steps (step 0 = first) of a ``total_steps`` run.

        Pure Python. A schedule stepped on a metric (``on_metric``): the LR of a run whose
        metric keeps improving.
        """
        family_step, family_steps = self._family_position(step, total_steps)
        warmup_steps = self.warmup_steps(total_steps)
        if self.warmup is not None and step < warmup_steps:  # warmup_steps is 0 without warmup
            start = self.warmup["start_factor"]
            return self.first_lr() * (start + (1 - start) * step / warmup_steps)
        return families.FAMILIES[self.family].lr_at(self.lr, self.params, family_step, family_steps)

    @property
    def stepping(self) -> Stepping:
        """How the spec's torch scheduler is stepped (its family's ``Stepping``)."""
        return families.FAMILIES[self.family].stepping

    @property
    def on_metric(self) -> bool:
        """Whether the scheduler steps once per epoch on the epoch's validation metric, not per batch."""
        return self.stepping is Stepping.PER_EPOCH_ON_METRIC

    def first_lr(self) -> float:
        """The family's LR at its first step, which warmup ramps up to (``lr`` for most families)."""
        return families.FAMILIES[self.family].first_lr(self.lr, self.params)

    def momentum_at(self, step: int, total_steps: int) -> float | None:
        """The momentum (SGD momentum or Adam's beta1) the schedule sets at ``step``, or None.

        Only cyclic and onecycle with ``cycle_momentum`` set it; during warmup it stays at
        the family's first value.
        """
        family_step, family_steps = self._family_position(step, total_steps)
        momentum_of = families.FAMILIES[self.family].momentum_at
        return None if momentum_of is None else momentum_of(self.params, family_step, family_steps)

    def optimizer_settings(self) -> dict[str, Any]:
        """Every optimizer setting, defaults filled in; ``DEFAULT_OPTIMIZER`` (SGD, momentum 0.9) if none."""
        return check_optimizer(self.optimizer if self.optimizer is not None else DEFAULT_OPTIMIZER)

    def build(self, optimizer: Any, total_steps: int) -> Any:
        """A torch LRScheduler for ``optimizer`` over ``total_steps`` (see autolr.schedule.schedulers.build).

        Each parameter group gets its own initial LR times ``lr_at(step) / lr``.
        """
        from autolr.schedule.schedulers import build

        return build(self, optimizer, total_steps)

    def build_optimizer(self, parameters: Any) -> Any:
        """A torch optimizer over ``parameters`` with this spec's settings and LR (see autolr.schedule.schedulers)."""
        from autolr.schedule.schedulers import build_optimizer

        return build_optimizer(self, parameters)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain dict written to JSON, YAML or TOML (absent sections left out)."""
        data: dict[str, Any] = {"autolr_spec": SPEC_VERSION, "family": self.family, "lr": self.lr}
        if self.params:
            data["params"] = json.loads(json.dumps(self.params))
        for key in ("warmup", "optimizer", "provenance"):
            value = getattr(self, key)
            if value is not None:
                data[key] = json.loads(json.dumps(value))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ScheduleSpec:
        """Validate a plain dict (as loaded from a file) and build the spec."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a table of keys to values, got {show(data)}")
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise SpecError(f"{show(key)} is not a spec key (expected {', '.join(TOP_LEVEL_KEYS)})")
        if "autolr_spec" not in data:
            raise SpecError(f"autolr_spec is missing (a spec starts with autolr_spec: {SPEC_VERSION})")
        if data["autolr_spec"] != SPEC_VERSION or isinstance(data["autolr_spec"], bool):
            raise SpecError(f"autolr_spec must be {SPEC_VERSION}, got {show(data['autolr_spec'])}")
        for key in ("family", "lr"):
            if key not in data:
                raise SpecError(f"{key} is missing")
        return cls(family=data["family"], lr=data["lr"], params=data.get("params", {}),
                   warmup=data.get("warmup"), optimizer=data.get("optimizer"),
                   provenance=data.get("provenance"))

    def to_text(self, file_format: str) -> str:
        """The spec as JSON, YAML or TOML text."""
        data = self.to_dict()
        if file_format == "json":
            return json.dumps(data, indent=2) + "\n"
        if file_format == "yaml":
            return yaml.dump(data, Dumper=_SpecYamlDumper, sort_keys=False)
        if file_format == "toml":
            return tomli_w.dumps(data)
        raise SpecError(f"spec format must be json, yaml or toml, got {show(file_format)}")

    @classmethod
    def from_text(cls, text: str, file_format: str, source: str = "spec") -> ScheduleSpec:
        """Parse JSON, YAML or TOML text (safe loaders only) and validate it; ``source`` names it in errors."""
        try:
            if file_format == "json":
                data = json.loads(text)
            elif file_format == "yaml":
                data = yaml.load(text, Loader=_SpecYamlLoader)  # a SafeLoader: builds plain data only
            elif file_format == "toml":
                data = tomllib.loads(text)
            else:
                raise SpecError(f"spec format must be json, yaml or toml, got {show(file_format)}")
        except (ValueError, yaml.YAMLError) as error:
            detail = " ".join(str(error).split())
            raise SpecError(f"{source} is not valid {file_format.upper()} ({detail})") from None
        except RecursionError:
            raise SpecError(f"{source} is nested too deeply to be a spec") from None
        try:
            return cls.from_dict(data)
        except SpecError as error:
            raise SpecError(f"{source}: {error}") from None

    def save(self, path: str | Path) -> Path:
        """Write the spec to ``path`` in the format its extension names (.json, .yaml, .yml, .toml)."""
        path = Path(path)
        path.write_text(self.to_text(_file_format(path)), encoding="utf-8")
        return path


class _SpecYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a number (as YAML 1.2 does) and refusing aliases.

    A spec never needs aliases, and they can expand a small file into a huge (or cyclic) one.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a spec", mark)
        return super().compose_node(parent, index)


class _SpecYamlDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting strings such as ``"1e5"`` that the loader reads as numbers."""


_FLOAT_WITH_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_SpecYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITH_EXPONENT, list("-+0123456789"))
_SpecYamlDumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITH_EXPONENT, list("-+0123456789"))


def _file_format(path: Path) -> str:
    file_format = FILE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise SpecError(f"{path} must end in .json, .yaml, .yml or .toml to say its format")
    return file_format


def flatten_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec dict as flat columns: ``family``, ``lr``, ``params.*``, ``warmup.*``, ``optimizer.*``.

    Lists (multistep milestones, Adam betas) become JSON text so each cell is one value.
    """
    flat: dict[str, Any] = {"family": spec.get("family"), "lr": spec.get("lr")}
    for group in ("params", "warmup", "optimizer"):
        for key, value in sorted((spec.get(group) or {}).items()):
            flat[f"{group}.{key}"] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value
    return flat


def load_spec(path: str | Path) -> ScheduleSpec:
    """Read and validate a spec file (.json, .yaml, .yml or .toml); never runs code from it."""
    path = Path(path)
    file_format = _file_format(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise SpecError(f"cannot read spec file {path}: {reason}") from None
    return ScheduleSpec.from_text(text, file_format, source=str(path))
