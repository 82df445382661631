"""The built-in `transformer`: a GPT-style decoder over byte tokens, in the manner of nanoGPT's model.py.

Pre-LayerNorm blocks (causal self-attention through
``F.scaled_dot_product_attention(is_causal=True)``, then a GELU MLP of 4 x width), learned
positions, a final LayerNorm, and the output layer tied to the token embedding. No
dropout and no biases in the linear layers (nanoGPT's ``bias=False``); weights start as
nanoGPT's: normal(0, 0.02), the residual projections scaled by 1 / sqrt(2 x layers).
The logits come back as ``batch x vocabulary x positions``, classes in dimension 1 as
torch's ``F.cross_entropy`` takes them, so a language model trains with the same loss
call as a classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autolr.errors import UserError


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
    """Causal multi-head self-attention: one projection to queries, keys and values, one back."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, positions, width = x.shape
        q, k, v = (t.view(batch, positions, self.heads, -1).transpose(1, 2) for t in self.qkv(x).split(width, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(batch, positions, width))


class Block(nn.Module):
    """One pre-LayerNorm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width, bias=False)
        self.proj = nn.Linear(4 * width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class Transformer(nn.Module):
    """A GPT decoder: ``forward(tokens)`` maps ``batch x positions`` token ids to ``batch x vocab x positions``."""

    def __init__(self, size: TransformerSize, context: int, vocab: int) -> None:
        super().__init__()
        self.context = context
        self.token_embedding = nn.Embedding(vocab, size.width)
        self.position_embedding = nn.Embedding(context, size.width)
        self.blocks = nn.ModuleList(Block(size.width, size.heads) for _ in range(size.layers))
        self.ln_final = nn.LayerNorm(size.width)
        self.head = nn.Linear(size.width, vocab, bias=False)
        self.head.weight = self.token_embedding.weight  # tied
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2:
                std = 0.02 / math.sqrt(2 * size.layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(parameter, 0.0, std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_final(x)).transpose(1, 2)
