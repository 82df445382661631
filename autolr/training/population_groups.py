"""How ``train_population`` splits its members: one stacked population per optimizer kind, the rest alone.

The stacked trainer writes the update of SGD, Adam and AdamW on stacked tensors; a stacked
population trains one kind (the name, and for SGD the Nesterov setting). Members whose
optimizer it does not implement (schedule-free, Prodigy) train one by one through
``train_trial``, with the packages' own optimizers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from autolr.schedule.spec import ScheduleSpec

R = TypeVar("R")  # a trainer's result per member

STACKED_OPTIMIZERS = ("sgd", "adam", "adamw")  # the optimizers the stacked trainer implements


def stacked_kind(spec: ScheduleSpec) -> tuple[str, bool] | None:
    """The stacked optimizer kind of ``spec``, (name, Nesterov), or None when it trains alone."""
    settings = spec.optimizer_settings()
    if settings["name"] not in STACKED_OPTIMIZERS:
        return None
    return settings["name"], bool(settings.get("nesterov", False))


@dataclass(frozen=True)
class MemberGroup:
    """Members (indices into the population's specs) trained together: stacked, or one alone."""

    members: tuple[int, ...]
    stacked: bool


def member_groups(specs: Sequence[ScheduleSpec]) -> list[MemberGroup]:
    """One stacked group per optimizer kind and one group per unstackable member, by first member."""
    stacked: dict[tuple[str, bool], list[int]] = {}
    groups: list[tuple[list[int], bool]] = []
    for index, spec in enumerate(specs):
        kind = stacked_kind(spec)
        if kind is None:
            groups.append(([index], False))
        elif kind in stacked:
            stacked[kind].append(index)
        else:
            stacked[kind] = [index]
            groups.append((stacked[kind], True))
    return [MemberGroup(tuple(members), is_stacked) for members, is_stacked in groups]


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
    alone: Callable[[int, Callable[[int, float], bool] | None], R],
) -> list[R] | None:
    """Train a population split into its groups: ``stacked(members, on_epoch)`` for each stacked
    group, ``alone(member, on_epoch)`` for each member trained alone; results in member order.
    None when the population is one stacked group (the caller trains it as it is)."""
    groups = member_groups(specs)
    if len(groups) == 1 and groups[0].stacked:
        return None
    by_member: dict[int, R] = {}
    for group in groups:
        if group.stacked:
            trained = stacked(list(group.members), group_callback(on_epoch, group.members))
        else:
            (member,) = group.members
            trained = [alone(member, member_callback(on_epoch, member))]
        by_member.update(zip(group.members, trained, strict=True))
    return [by_member[member] for member in range(len(specs))]
