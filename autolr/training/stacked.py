"""Stacked populations: K models' parameters stacked along a first dimension, run on one shared batch.

``StackedModel`` is the base the population trainer updates (``params``, ``keep``); the
built-in ``mlp`` and ``cnn`` write their stacked forward by hand (``models.PopulationModel``);
``ModulePopulation`` runs any ``nn.Module`` (the built-in ``transformer``, a user's model)
with ``torch.func``: ``stack_module_state`` and ``vmap`` over ``functional_call``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class StackedModel(nn.Module):
    """K models with stacked parameters, run together on a shared batch: the population trainer's model.

    ``forward(x)`` takes one batch and returns ``K x batch x ...`` outputs. ``params``
    lists the stacked parameters, each ``K x <the single model's shape>``, in the single
    model's ``parameters()`` order.
    """

    def __init__(self, singles: Sequence[nn.Module]) -> None:
        super().__init__()
        stacked = [torch.stack(group).detach().clone() for group in zip(*(m.parameters() for m in singles))]
        self.params = nn.ParameterList(nn.Parameter(tensor) for tensor in stacked)

    @property
    def size(self) -> int:
        """The number of members K."""
        return self.params[0].shape[0]

    def keep(self, members: torch.Tensor) -> None:
        """Keep only the members at indices ``members`` (a 1-D long tensor), in that order."""
        for parameter in self.params:
            parameter.data = parameter.data.index_select(0, members)
            parameter.grad = None


class ModulePopulation(StackedModel):
    """K instances of one ``nn.Module`` class as stacked parameters and buffers, run with vmap.

    ``forward(x)`` returns ``K x batch x ...``: member k's ``forward(x)`` under its own
    parameters and buffers. ``train()``/``eval()`` switch every member.
    """

    def __init__(self, singles: Sequence[nn.Module]) -> None:
        super().__init__(singles)
        self.template = copy.deepcopy(singles[0])  # the structure; functional_call swaps in each member's tensors
        self.param_names = [name for name, _ in singles[0].named_parameters()]
        _, buffers = stack_module_state(list(singles))
        self.buffer_names = list(buffers)
        for index, name in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_buffer_{index}", buffers[name].detach().clone())

    def stacked_buffers(self) -> dict[str, torch.Tensor]:
        """The stacked buffers by the single model's buffer names."""
        return {name: getattr(self, f"stacked_buffer_{index}") for index, name in enumerate(self.buffer_names)}

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """Member ``member``'s parameters and buffers by name (views into the stacked tensors)."""
        state = {name: tensor[member] for name, tensor in zip(self.param_names, self.params)}
        return state | {name: tensor[member] for name, tensor in self.stacked_buffers().items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = dict(zip(self.param_names, self.params))
        return vmap(self._member_forward, in_dims=(0, 0, None), randomness="different")(
            params, self.stacked_buffers(), x,
        )

    def _member_forward(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                        x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), (x,))

    def keep(self, members: torch.Tensor) -> None:
        """Keep only the members at indices ``members`` (a 1-D long tensor), in that order."""
        super().keep(members)
        for index in range(len(self.buffer_names)):
            name = f"stacked_buffer_{index}"
            setattr(self, name, getattr(self, name).index_select(0, members))
