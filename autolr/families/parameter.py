"""Parameter: one named, validated setting of a family, of warmup or of an optimizer.

A spec file's values are checked against these (``Parameter.check``); the reference table
in autolr/schedule/spec.py is generated from them.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

from autolr.errors import SpecError

REQUIRED = object()  # default of a parameter that has to be given


def show(value: Any) -> str:
    """A value as it would be written in a spec file (for error messages)."""
    return json.dumps(value, default=repr)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (booleans are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Parameter:
    """One named setting: its default, what it means and which values are valid.

    ``kind`` is float (in the interval ``low``..``high``, each end open or closed, ``high``
    None for no upper bound), int (``>= low``), bool, choice (one of ``choices``),
    fractions (an increasing non-empty list, each in the interval) or pair (two
    numbers, each in the interval).
    """

    name: str
    default: Any
    meaning: str
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()

    def interval(self) -> str:
        """The valid interval in mathematical notation, e.g. ``(0, 1]`` or ``>= 1``."""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def bound(self) -> str:
        """The valid interval as a phrase: ``>= 1`` without an upper end, else ``in (0, 1]``."""
        return self.interval() if self.high is None else f"in {self.interval()}"

    def valid(self) -> str:
        """The valid values in words, as shown in the reference table."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "int":
            return f"integer {self.bound()}"
        if self.kind == "fractions":
            return f"increasing, each in {self.interval()}"
        if self.kind == "pair":
            return f"two numbers in {self.interval()}"
        return self.interval()

    def _in_interval(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def check(self, value: Any, where: str) -> Any:
        """``value`` normalized (ints to floats where a float is meant), or SpecError naming ``where``."""
        got = f", got {show(value)}"
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(f"{where} must be true or false{got}")
            return value
        if self.kind == "choice":
            if value not in self.choices or isinstance(value, bool):
                raise SpecError(f"{where} must be one of {', '.join(self.choices)}{got}")
            return value
        if self.kind == "int":
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not self._in_interval(int(value)):
                raise SpecError(f"{where} must be an integer {self.bound()}{got}")
            return int(value)
        if self.kind == "fractions":
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(is_number(item) and self._in_interval(item) for item in value)
                    or any(later <= earlier for earlier, later in zip(value, value[1:]))):
                raise SpecError(f"{where} must be a non-empty list of increasing fractions in {self.interval()}{got}")
            return [float(item) for item in value]
        if self.kind == "pair":
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(is_number(item) and self._in_interval(item) for item in value)):
                raise SpecError(f"{where} must be two numbers in {self.interval()}{got}")
            return [float(item) for item in value]
        if not is_number(value):
            raise SpecError(f"{where} must be a number {self.bound()}{got}")
        if not self._in_interval(value):
            raise SpecError(f"{where} must be {self.bound()}{got}")
        return float(value)


def fraction(name: str, default: Any, meaning: str, *, low_open: bool = True, high: float = 1.0,
              high_open: bool = False) -> Parameter:
    """A float parameter in ``(0, high]`` (each end's openness adjustable): a fraction of the run or of lr."""
    return Parameter(name, default, meaning, low=0.0, high=high, low_open=low_open, high_open=high_open)


def choice(name: str, default: str, choices: tuple[str, ...], meaning: str) -> Parameter:
    """A parameter that takes one of ``choices``."""
    return Parameter(name, default, meaning, kind="choice", choices=choices)


def min_factor() -> Parameter:
    """The LR floor as a fraction of lr, in ``[0, 1)``."""
    return fraction("min_factor", 0.0, "floor / lr", low_open=False, high_open=True)


def momentum(name: str, default: float, meaning: str) -> Parameter:
    """A momentum (or Adam's beta1) in ``[0, 1)``."""
    return fraction(name, default, meaning, low_open=False, high_open=True)


def momentum_cycle(base: float, high: float, high_meaning: str) -> tuple[Parameter, ...]:
    """``cycle_momentum`` and the momenta it cycles between: ``base_momentum`` at the LR peak, ``max_momentum``."""
    return (Parameter("cycle_momentum", True, "cycle momentum (or Adam's beta1) opposite to the LR", kind="bool"),
            momentum("base_momentum", base, "momentum at the LR peak"),
            momentum("max_momentum", high, high_meaning))


def check_section(values: Any, parameters: tuple[Parameter, ...], where: str, owner: str) -> dict[str, Any]:
    """Validate one table of the spec against its parameters; fill in the defaults."""
    if not isinstance(values, dict):
        raise SpecError(f"{where} must be a table of keys to values, got {show(values)}")
    known = {p.name for p in parameters}
    for key in values:
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise SpecError(f"{where}.{key} is not a parameter of {owner} (its parameters: {names})")
    checked = {}
    for parameter in parameters:
        if parameter.name in values:
            checked[parameter.name] = parameter.check(values[parameter.name], f"{where}.{parameter.name}")
        elif parameter.default is REQUIRED:
            raise SpecError(f"{where}.{parameter.name} is missing")
        else:
            checked[parameter.name] = parameter.default
    return checked
