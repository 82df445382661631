"""A user's own ``nn.Module`` trained as a population: K members at once with ``torch.func``.

The members' parameters and buffers are stacked (``torch.func.stack_module_state``) and
one forward runs every member on the shared batch through ``vmap`` over
``functional_call``; the update is the population trainer's stacked optimizer, so each
member has its own LR table (from ``spec.lr_at``) and its own optimizer state.

- **BatchNorm** (any buffer a module updates in place during ``forward``): each member's
  buffers are its own slice of the stacked buffers, and vmap writes the in-place update
  into that slice, so running statistics stay per member.
- **Dropout** (any randomness in ``forward``): ``vmap(randomness="different")`` draws
  independent masks per member from one torch RNG stream seeded with ``data_seed``. A
  population of one draws exactly the masks of the single trial run with the torch RNG
  seeded with ``data_seed``; with K > 1, member k's masks differ from that single trial's,
  so its curve is statistically, not bit for bit, the single trial's.
- **Fallback**: before training, a probe runs one vmapped training step on a copy of the
  state and compares each member's vmapped output in eval mode with the member run on its
  own. When vmap raises (data-dependent control flow such as ``if x.sum() > 0``,
  ``.item()``, an op without a batching rule) or the outputs differ, the members train one
  after another with ``train_trial`` and a ``PopulationFallbackWarning`` names the reason.
  What the probe cannot see: a ``forward`` that changes Python attributes or tensors that
  are not registered buffers; such state would be shared by all members.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autolr.errors import UserError, one_line
from autolr.schedule.spec import ScheduleSpec
from autolr.training.population import check_members, train_stacked
from autolr.training.population_groups import member_callback, train_in_groups
from autolr.training.stacked import ModulePopulation
from autolr.training.train import LossFn, Splits, TrialResult, member_losses, train_trial, training_device

PROBE_ROWS = 8  # rows of the probe batch
PROBE_TOLERANCE = 1e-4  # largest difference between a member's vmapped and own outputs (relative to their scale)


class PopulationFallbackWarning(UserWarning):
    """A user's model could not be trained as a vmapped population; its members train one by one."""


def build_member(model_factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``model_factory()`` called with the torch RNG seeded with ``seed``; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_factory()
    if not isinstance(model, nn.Module):
        raise UserError(f"model_factory must return a torch.nn.Module, got {type(model).__name__}")
    return model


def as_splits(data: Any) -> Splits:
    """Training data as splits: ``Splits`` as given, an ``(x, y)`` pair of tensors, or a map-style Dataset."""
    from autolr.data import splits_from_datasets, splits_from_tensors

    if hasattr(data, "train_x") and hasattr(data, "val_x"):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return splits_from_tensors(*data)
    if isinstance(data, torch.utils.data.Dataset):
        return splits_from_datasets(data)
    raise UserError(f"data must be autolr Splits, an (x, y) pair of tensors or a torch Dataset, "
                    f"got {type(data).__name__}")


def train_module_population(
    model_factory: Callable[[], nn.Module],
    specs: Sequence[ScheduleSpec],
    data: Any,
    epochs: int,
    batch_size: int,
    seeds: Sequence[int],
    loss_fn: LossFn = F.cross_entropy,
    data_seed: int = 0,
    metric: str = "accuracy",
    on_epoch: Callable[[int, int, float], bool] | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    score_test: bool = False,
) -> list[TrialResult]:
    """Train K members of the user's model at once, member k under ``specs[k]``; one TrialResult per member.

    Member k is ``model_factory()`` called with the torch RNG seeded with ``seeds[k]``.
    ``data``: ``autolr.Splits`` (``autolr.splits_from_tensors``, ``splits_from_datasets``),
    an ``(x, y)`` pair of tensors or a map-style Dataset (both split as those functions
    do). ``loss_fn(outputs, targets)`` is a batch's mean loss. Every member sees the
    batches drawn from ``data_seed``, and randomness in ``forward`` (dropout) comes from
    the torch RNG seeded with ``data_seed`` (the global RNG is left as it was).
    ``on_epoch``, ``metric``, ``device``, ``amp`` and ``score_test`` as in ``autolr.train_population``,
    and as there, members whose optimizer the stacked update does not implement train alone.
    Member k's curve equals ``train_trial(specs[k], build_member(model_factory, seeds[k]),
    splits, ..., data_seed=data_seed)`` (see the module docstring for dropout); models
    that vmap cannot run train member by member with a ``PopulationFallbackWarning``.
    """
    check_members(specs, seeds)
    splits = as_splits(data)
    device = training_device(device, splits)
    grouped = train_in_groups(
        specs, on_epoch,
        lambda rows, callback: train_module_population(
            model_factory, [specs[m] for m in rows], splits, epochs, batch_size, [seeds[m] for m in rows], loss_fn,
            data_seed, metric, callback, device, amp, score_test),
    )
    if grouped is not None:
        return grouped
    members = [build_member(model_factory, seed).to(device) for seed in seeds]
    population = ModulePopulation(members).to(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        failure = vmap_failure(population, members, splits.train_x[:PROBE_ROWS].to(device),
                               splits.train_y[:PROBE_ROWS].to(device), loss_fn)
        torch.manual_seed(data_seed)
        if failure is None:
            return train_stacked(population, specs, splits, epochs, batch_size, data_seed, metric, on_epoch,
                                 device, amp, loss_fn, score_test=score_test)
        warnings.warn(f"{type(members[0]).__name__} trains member by member, not as a vmapped population: {failure}",
                      PopulationFallbackWarning, stacklevel=2)
        return [
            train_trial(spec, member, splits, epochs, batch_size, seed=seed, metric=metric, device=device, amp=amp,
                        data_seed=data_seed, loss_fn=loss_fn, on_epoch=member_callback(on_epoch, k),
                        score_test=score_test)
            for k, (spec, member, seed) in enumerate(zip(specs, members, seeds))
        ]


def vmap_failure(
    population: ModulePopulation, members: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
) -> str | None:
    """Why ``population`` cannot stand in for ``members`` (None when it can); it is left as it was.

    One training-mode forward and backward must run under vmap, and in eval mode each
    member's vmapped output must match the member's own ``forward`` within ``PROBE_TOLERANCE``.
    """
    buffers = {name: tensor.clone() for name, tensor in population.stacked_buffers().items()}
    try:
        population.eval()
        with torch.no_grad():
            outputs = population(x)
            for k, member in enumerate(members):
                own = member.eval()(x)
                if (outputs[k] - own).abs().max() > PROBE_TOLERANCE * own.abs().max().clamp(min=1.0):
                    return f"member {k}'s vmapped output differs from its own forward"
        population.train()
        member_losses(population(x), y, loss_fn).sum().backward()
    except Exception as error:  # any failure of the user's model under vmap means: do not vmap it
        return one_line(error)
    finally:
        population.zero_grad(set_to_none=True)
        for name, tensor in population.stacked_buffers().items():
            tensor.copy_(buffers[name])
    return None
