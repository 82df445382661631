"""The model zoo (`mlp`, `cnn`, `transformer`), each as one torch module or as a population of K stacked copies.

A population holds the parameters of K independent models stacked along a new first
dimension and runs all K on the same input batch in one forward pass, written by hand
with batched matrix products: on a 2-core CPU, forward+backward of 16 MLPs took 15 ms
this way against 17 ms with ``torch.func.vmap`` over ``functional_call`` (CPU time, one
thread). Convolutions are grouped (K groups) on a GPU; on a CPU they run member by member,
because torch's grouped convolution measured 3x slower there than K separate ones.
Member ``k`` built with seed ``s`` starts from exactly the weights of the single model
built with seed ``s``. The ``transformer`` (``autolr.training.transformer``) writes its forward
once, on stacked weights (``StackedTransformer``; a single model is one member).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from autolr.errors import UserError
from autolr.training.stacked import StackedModel
from autolr.training.transformer import StackedTransformer, Transformer, TransformerSize

MODEL_NAMES = ("mlp", "cnn", "transformer")
ModelChoice = str | TransformerSize  # a built-in name, or the transformer at these sizes ("transformer": the defaults)
MLP_HIDDEN = 256  # hidden units of the one hidden layer of `mlp`
CNN_CHANNELS = (6, 16)  # LeNet's two convolution widths (5x5 kernels, same padding)
CNN_HIDDEN = (120, 84)  # LeNet's two fully connected widths


def build_model(name: ModelChoice, input_shape: Sequence[int], num_classes: int, seed: int) -> nn.Module:
    """One model named ``name`` for inputs of shape ``input_shape``, initialised from ``seed``.

    ``mlp`` takes any input shape (it flattens); ``cnn`` needs (channels, height, width);
    the ``transformer`` (``name`` "transformer" or a ``TransformerSize``) needs (context,)
    and takes ``num_classes`` as its vocabulary.
    The global torch RNG is left as it was: the weights come from a forked RNG seeded with ``seed``.
    """
    check_model_name(name)
    shape = _checked_shape(name, input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(name, TransformerSize) or name == "transformer":
            size = name if isinstance(name, TransformerSize) else TransformerSize()
            return Transformer(size, context=shape[0], vocab=num_classes)
        if name == "mlp":
            return nn.Sequential(
                nn.Flatten(),
                nn.Linear(math.prod(shape), MLP_HIDDEN),
                nn.ReLU(),
                nn.Linear(MLP_HIDDEN, num_classes),
            )
        channels, height, width = shape
        first, second = CNN_CHANNELS
        pooled = (height // 4) * (width // 4)
        return nn.Sequential(
            nn.Conv2d(channels, first, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(first, second, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(second * pooled, CNN_HIDDEN[0]), nn.ReLU(),
            nn.Linear(CNN_HIDDEN[0], CNN_HIDDEN[1]), nn.ReLU(),
            nn.Linear(CNN_HIDDEN[1], num_classes),
        )


class PopulationModel(StackedModel):
    """K copies of built-in model ``name``; ``forward(x)`` takes ``B x C x H x W`` and returns logits
    ``K x B x classes``.

    ``grouped_convolutions``: run the convolutions of all members as one grouped
    convolution (None: on CUDA only).
    """

    def __init__(self, name: str, singles: Sequence[nn.Module], grouped_convolutions: bool | None = None) -> None:
        super().__init__(singles)
        self.name = name
        self.grouped_convolutions = grouped_convolutions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "mlp":
            return self._forward_mlp(x)
        return self._forward_cnn(x)

    def _forward_mlp(self, x: torch.Tensor) -> torch.Tensor:
        weight1, bias1, weight2, bias2 = self.params
        hidden = _shared_linear(x.flatten(1), weight1, bias1).relu()
        return _batched_linear(hidden, weight2, bias2)

    def _forward_cnn(self, x: torch.Tensor) -> torch.Tensor:
        conv1, conv1_bias, conv2, conv2_bias, fc1, fc1_bias, fc2, fc2_bias, fc3, fc3_bias = self.params
        if self.grouped_convolutions or (self.grouped_convolutions is None and x.is_cuda):
            members, batch = self.size, x.shape[0]
            # The first convolution sees the shared input: one convolution with K * out channels;
            # the second is per member: grouped convolution with K groups.
            out = F.max_pool2d(F.conv2d(x, conv1.flatten(0, 1), conv1_bias.flatten(), padding=2).relu(), 2)
            out = F.conv2d(out, conv2.flatten(0, 1), conv2_bias.flatten(), padding=2, groups=members)
            features = F.max_pool2d(out.relu(), 2).reshape(batch, members, -1).transpose(0, 1)
        else:
            features = torch.stack([
                F.max_pool2d(F.conv2d(
                    F.max_pool2d(F.conv2d(x, weight1, bias1, padding=2).relu(), 2), weight2, bias2, padding=2,
                ).relu(), 2).flatten(1)
                for weight1, bias1, weight2, bias2 in zip(conv1, conv1_bias, conv2, conv2_bias)
            ])
        # features: K x B x features
        hidden = _batched_linear(features, fc1, fc1_bias).relu()
        hidden = _batched_linear(hidden, fc2, fc2_bias).relu()
        return _batched_linear(hidden, fc3, fc3_bias)


def build_population(
    name: ModelChoice, input_shape: Sequence[int], num_classes: int, seeds: Sequence[int],
    grouped_convolutions: bool | None = None,
) -> StackedModel:
    """A population with one member per seed; member k starts as ``build_model(name, ..., seeds[k])``.

    ``grouped_convolutions``: see PopulationModel (None: grouped on CUDA, member by member elsewhere).
    """
    if not seeds:
        raise UserError("a population needs at least one seed")
    singles = [build_model(name, input_shape, num_classes, seed) for seed in seeds]
    if isinstance(name, TransformerSize) or name == "transformer":
        return StackedTransformer([cast(Transformer, single) for single in singles])
    return PopulationModel(name, singles, grouped_convolutions)


def check_model_name(name: ModelChoice) -> None:
    """Raise UserError unless ``name`` is a built-in model."""
    if not isinstance(name, TransformerSize) and name not in MODEL_NAMES:
        raise UserError(f"model must be one of {', '.join(MODEL_NAMES)}, got {name!r}")


def _checked_shape(name: ModelChoice, input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(size) for size in input_shape)
    dimensions = 3 if name == "cnn" else 1 if isinstance(name, TransformerSize) or name == "transformer" else None
    if not shape or min(shape) < 1 or (dimensions is not None and len(shape) != dimensions):
        wanted = {3: "(channels, height, width)", 1: "(context,)"}.get(dimensions or 0, "a tuple of positive sizes")
        raise UserError(f"input_shape of the {name} model must be {wanted}, got {tuple(input_shape)!r}")
    return shape


def _shared_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """K linear layers on one shared input ``B x in``: one matmul with K * out columns -> ``K x B x out``."""
    members, width = weight.shape[0], weight.shape[1]
    out = torch.addmm(bias.flatten(), x, weight.flatten(0, 1).t())  # B x (K * out)
    return out.view(x.shape[0], members, width).transpose(0, 1)


def _batched_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """K linear layers on K inputs ``K x B x in`` -> ``K x B x out``."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

