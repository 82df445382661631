"""ScheduleSpec: a learning-rate schedule as plain, versioned data with a closed form (no torch).

A schedule is a function of training progress ``p = step / total_steps`` times the
initial (peak) LR, optionally preceded by linear warmup. Parameters that depend on
the run length are stored as fractions of the run, so a spec transfers to a run of
any length. A "step" is whatever unit the scheduler is stepped in (batches or epochs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from autolr.errors import SpecError

SPEC_VERSION = 1
FAMILIES = (
    "constant", "step", "multistep", "exponential", "inverse_time", "polynomial", "linear",
    "cosine", "cosine_restarts", "cyclic", "onecycle", "plateau", "inverse_sqrt", "wsd",
)


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule: family, initial/peak LR, family parameters, warmup.

    ``optimizer`` holds the optimizer settings the schedule was tuned with and
    ``provenance`` where it came from (study, dataset, model, score); both plain dicts.
    """

    family: str
    lr: float
    params: dict[str, Any] = field(default_factory=dict)
    warmup: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise SpecError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise SpecError(f"lr must be a positive number, got {self.lr!r}")

    def lr_at(self, step: int, total_steps: int) -> float:
        """The LR after ``step`` scheduler steps of a run of ``total_steps`` steps."""
        if self.family == "constant":
            return float(self.lr)
        if self.family == "cosine":
            floor = self.lr * self.params.get("min_factor", 0.0)
            t = min(step, total_steps)
            return floor + (self.lr - floor) * (1 + math.cos(math.pi * t / total_steps)) / 2
        raise NotImplementedError(self.family)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the plain dict that is written to JSON, YAML or TOML."""
        data: dict[str, Any] = {"autolr_spec": SPEC_VERSION, "family": self.family, "lr": self.lr}
        for key in ("params", "warmup", "optimizer", "provenance"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScheduleSpec":
        """Validate a plain dict (as loaded from a file) and build the spec."""
        return cls(
            family=data["family"], lr=data["lr"], params=dict(data.get("params") or {}),
            warmup=data.get("warmup"), optimizer=data.get("optimizer"),
            provenance=data.get("provenance"),
        )
