"""FamilySpace: the searched range of one family's parameters, sampled define-by-run.

``Param.sample`` calls only ``trial.suggest_float / suggest_int / suggest_categorical``, so
it works with an Optuna trial, Ray Tune's ``OptunaSearch`` define-by-run function, or a
fixed trial. A parameter is asked for under the name ``<family>.<param>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Trial(Protocol):
    """What ``SearchSpace.sample`` needs from a trial: Optuna's three suggest methods."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One searched parameter of a family: a float or int range (inclusive), or choices.

    ``when=(other, value)`` samples it only when the family's earlier parameter ``other``
    took ``value`` (e.g. the exp_range amplitude only for ``mode == "exp_range"``).
    """

    name: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[str, Any] | None = None

    def sample(self, trial: Trial, family: str) -> Any:
        """Ask ``trial`` for this parameter under its prefixed name ``<family>.<name>``."""
        key = f"{family}.{self.name}"
        if self.choices:
            return trial.suggest_categorical(key, list(self.choices))
        if self.integer:
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(key, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class FamilySpace:
    """A family's searched parameters, the values it always gets, and how to assemble them."""

    params: tuple[Param, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    assemble: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    allows_warmup: bool = True
