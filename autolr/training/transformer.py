"""The built-in `transformer`: a GPT-style decoder over byte tokens, in the manner of nanoGPT's model.py.

Pre-LayerNorm blocks (causal self-attention through
``F.scaled_dot_product_attention(is_causal=True)``, then a GELU MLP of 4 x width), learned
positions, a final LayerNorm, and the output layer tied to the token embedding. No
dropout and no biases in the linear layers (nanoGPT's ``bias=False``); weights start as
nanoGPT's: normal(0, 0.02), the residual projections scaled by 1 / sqrt(2 x layers).
The logits come back as ``batch x vocabulary x positions``, classes in dimension 1 as
torch's ``F.cross_entropy`` takes them, so a language model trains with the same loss
call as a classifier. The forward is written once, on K members' stacked weights (``decode``): a
single model runs it with K = 1, a population (``StackedTransformer``) with K, its members'
attention folded into one ``scaled_dot_product_attention`` batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autolr.errors import UserError
from autolr.training.stacked import StackedModel


@dataclass(frozen=True)
class TransformerSize:
    """The transformer's sizes: ``layers`` blocks, ``width`` channels, ``heads`` attention heads.

    The context (longest input, bytes) and the vocabulary come from the data.
    """

    layers: int = 2
    width: int = 64
    heads: int = 4

    def __post_init__(self) -> None:
        for key in ("layers", "width", "heads"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"transformer {key} must be a positive integer, got {value!r}")
        if self.width % self.heads:
            raise UserError(f"transformer width {self.width} must be a multiple of heads {self.heads}")


class SelfAttention(nn.Module):
    """Causal multi-head self-attention's weights: one projection to queries, keys and values, one back."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)


class Block(nn.Module):
    """One pre-LayerNorm block's weights: x + attention(LN(x)), then x + MLP(LN(x)) (``decode``)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attention = SelfAttention(width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width, bias=False)
        self.proj = nn.Linear(4 * width, width, bias=False)


class Transformer(nn.Module):
    """A GPT decoder: ``forward(tokens)`` maps ``batch x positions`` token ids to ``batch x vocab x positions``.

    Its forward is ``decode`` with one member (K = 1), the population's (``StackedTransformer``) with K.
    """

    def __init__(self, size: TransformerSize, context: int, vocab: int) -> None:
        super().__init__()
        self.size = size
        self.context = context
        self.token_embedding = nn.Embedding(vocab, size.width)
        self.position_embedding = nn.Embedding(context, size.width)
        self.blocks = nn.ModuleList(Block(size.width) for _ in range(size.layers))
        self.ln_final = nn.LayerNorm(size.width)
        self.head = nn.Linear(size.width, vocab, bias=False)
        self.head.weight = self.token_embedding.weight  # tied
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2:
                std = 0.02 / math.sqrt(2 * size.layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(parameter, 0.0, std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return decode({name: tensor.unsqueeze(0) for name, tensor in self.named_parameters()}, tokens, self.size)[0]


class StackedTransformer(StackedModel):
    """K transformers as stacked parameters: ``forward(tokens)`` returns ``K x batch x vocab x positions``, member
    k's logits under its own weights, every member's attention in one call (``decode``)."""

    def __init__(self, singles: Sequence[Transformer]) -> None:
        super().__init__(singles)
        self.transformer_size = singles[0].size
        self.names = [name for name, _ in singles[0].named_parameters()]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return decode(dict(zip(self.names, self.params)), tokens, self.transformer_size)


def decode(params: Mapping[str, torch.Tensor], tokens: torch.Tensor, size: TransformerSize) -> torch.Tensor:
    """The logits of K decoders on shared ``tokens`` (``batch x positions``): ``K x batch x vocab x positions``.

    ``params`` are ``Transformer``'s named parameters, each stacked along a first dimension of K
    members. Linear layers are batched matrix products over the members; attention folds the
    members into its batch (one ``scaled_dot_product_attention`` call, which ``torch.func.vmap``
    would run member by member); the output layer is the token embedding (tied).
    """
    batch, positions = tokens.shape
    x = params["token_embedding.weight"][:, tokens] + params["position_embedding.weight"][:, None, :positions]
    for layer in range(size.layers):
        block = {name.removeprefix(f"blocks.{layer}."): tensor for name, tensor in params.items()
                 if name.startswith(f"blocks.{layer}.")}
        x = x + _linear(_attention(_layer_norm(x, block, "ln1"), block["attention.qkv.weight"], size.heads),
                        block["attention.proj.weight"])
        x = x + _linear(F.gelu(_linear(_layer_norm(x, block, "ln2"), block["fc.weight"])), block["proj.weight"])
    return _linear(_layer_norm(x, params, "ln_final"), params["token_embedding.weight"]).transpose(2, 3)


def _attention(x: torch.Tensor, qkv_weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Causal self-attention of K members' ``K x batch x positions x width`` inputs, before the output projection."""
    members, batch, positions, width = x.shape
    q, k, v = (t.reshape(members * batch, positions, heads, -1).transpose(1, 2)
               for t in _linear(x, qkv_weight).split(width, -1))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(members, batch, positions, width)


def _layer_norm(x: torch.Tensor, params: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    """LayerNorm ``name`` of K members (weights ``K x width``) on ``K x batch x positions x width``."""
    weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
    return torch.addcmul(bias[:, None, None], F.layer_norm(x, x.shape[-1:]), weight[:, None, None])


def _linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """K bias-free linear layers (``K x out x in``, torch's layout) on ``K x batch x positions x in``."""
    members, batch, positions, _ = x.shape
    return torch.bmm(x.reshape(members, batch * positions, -1), weight.transpose(1, 2)).view(
        members, batch, positions, -1)
