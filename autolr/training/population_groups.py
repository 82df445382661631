"""How ``train_population`` splits its members: one stacked population per optimizer kind.

The stacked trainer writes the update of every optimizer a spec may name on stacked
tensors (torch's SGD, Adam and AdamW; the schedulefree package's SGD and AdamW;
prodigyopt's Prodigy); a stacked population trains one kind (the name, and for SGD the
Nesterov setting).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from autolr.schedule.spec import ScheduleSpec

R = TypeVar("R")  # a trainer's result per member


def stacked_kind(spec: ScheduleSpec) -> tuple[str, bool]:
    """The stacked optimizer kind of ``spec``: (name, Nesterov)."""
    settings = spec.optimizer_settings()
    return settings["name"], bool(settings.get("nesterov", False))


def member_groups(specs: Sequence[ScheduleSpec]) -> list[tuple[int, ...]]:
    """The members (indices into ``specs``) of each optimizer kind, kinds in order of their first member."""
    groups: dict[tuple[str, bool], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(stacked_kind(spec), []).append(index)
    return [tuple(members) for members in groups.values()]


def group_callback(
    on_epoch: Callable[[int, int, float], bool] | None, members: tuple[int, ...]
) -> Callable[[int, int, float], bool] | None:
    """``on_epoch`` as a group's trainer calls it: its k-th member is population member ``members[k]``."""
    if on_epoch is None:
        return None
    return lambda row, epoch, score: on_epoch(members[row], epoch, score)


def member_callback(
    on_epoch: Callable[[int, int, float], bool] | None, member: int
) -> Callable[[int, float], bool] | None:
    """``on_epoch`` as ``train_trial`` calls it for population member ``member`` trained alone."""
    if on_epoch is None:
        return None
    return lambda epoch, score: on_epoch(member, epoch, score)


def train_in_groups(
    specs: Sequence[ScheduleSpec],
    on_epoch: Callable[[int, int, float], bool] | None,
    stacked: Callable[[list[int], Callable[[int, int, float], bool] | None], list[R]],
) -> list[R] | None:
    """Train a population of several optimizer kinds one group after another, each with
    ``stacked(members, on_epoch)``; results in member order. None when it is one kind (the
    caller trains it as it is)."""
    groups = member_groups(specs)
    if len(groups) == 1:
        return None
    by_member: dict[int, R] = {}
    for members in groups:
        by_member.update(zip(members, stacked(list(members), group_callback(on_epoch, members)), strict=True))
    return [by_member[member] for member in range(len(specs))]
