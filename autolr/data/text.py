"""Byte-level text splits for a language model: contiguous train / validation / test blocks of one text.

Rules (every text, built-in or the user's bytes):

- Tokens are bytes (vocabulary 256). The text is cut by position into contiguous blocks,
  `TEXT_FRACTIONS` (90 / 5 / 5) of its bytes, never shuffled across the cut, so no window
  of the validation or test block was seen in training.
- Training rows are every window of `context` bytes of the train block (its next byte at
  each position is the target): `train_x` and `train_y` are strided views, nothing is
  copied. A trainer draws `epoch_steps` batches of them per epoch, with replacement, from
  a generator seeded with the run's seed (`autolr.training.train.training_epochs`).
- Validation and test are fixed: `EVAL_WINDOWS` windows evenly spaced over their block,
  the same for every seed and every evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from autolr.errors import DataError

VOCAB = 256  # bytes
TEXT_FRACTIONS = (0.9, 0.05, 0.05)  # train, validation, test: contiguous blocks in this order
EVAL_WINDOWS = 256  # windows scored per evaluation of the validation (and the test) block
CONTEXT = 64  # default window length, bytes
EPOCH_STEPS = 50  # default optimizer steps between two evaluations (one "epoch" of the trainers)


@dataclass(frozen=True, eq=False)
class TextSplits:
    """A text as byte tokens on one device: the train block, and fixed validation and test windows.

    `train_tokens` is the train block (int64, 1-D); `val_x`/`val_y` and `test_x`/`test_y`
    are `EVAL_WINDOWS x context` inputs and next-byte targets. `epoch_steps` is how many
    optimizer steps a trainer runs between two evaluations. `source` and `root` as in
    `autolr.data.Splits`; `block_bytes` the byte count of each block.
    """

    name: str
    train_tokens: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    context: int
    epoch_steps: int
    source: str
    root: Path | None
    block_bytes: tuple[int, int, int]

    @property
    def train_x(self) -> torch.Tensor:
        """Every training window, `positions x context` (a strided view of `train_tokens`)."""
        return self.train_tokens[:-1].unfold(0, self.context, 1)

    @property
    def train_y(self) -> torch.Tensor:
        """The next byte at every position of every training window (a view, as `train_x`)."""
        return self.train_tokens[1:].unfold(0, self.context, 1)

    @property
    def num_classes(self) -> int:
        """The vocabulary: 256 bytes."""
        return VOCAB

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One row's shape: `(context,)`."""
        return (self.context,)

    @property
    def sizes(self) -> dict[str, int]:
        """Bytes in each block: {"train": ..., "val": ..., "test": ...}."""
        return dict(zip(("train", "val", "test"), self.block_bytes))

    @property
    def device(self) -> torch.device:
        """The device every tensor lives on."""
        return self.train_tokens.device


def block_sizes(total: int) -> tuple[int, int, int]:
    """Bytes of the train, validation and test blocks of a `total`-byte text (`TEXT_FRACTIONS`)."""
    val, test = (math.floor(total * fraction) for fraction in TEXT_FRACTIONS[1:])
    return total - val - test, val, test


def text_splits(
    text: bytes,
    *,
    context: int = CONTEXT,
    epoch_steps: int = EPOCH_STEPS,
    name: str = "text",
    source: str = "bytes",
    root: Path | None = None,
    device: str | torch.device = "cpu",
) -> TextSplits:
    """Splits of `text` (bytes): contiguous 90 / 5 / 5 blocks, fixed evaluation windows, on `device`."""
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise DataError(f"context must be a positive number of bytes, got {context!r}.")
    if isinstance(epoch_steps, bool) or not isinstance(epoch_steps, int) or epoch_steps < 1:
        raise DataError(f"epoch_steps must be a positive number of steps, got {epoch_steps!r}.")
    sizes = block_sizes(len(text))
    if min(sizes) < context + 1:
        raise DataError(f"text {name!r} of {len(text)} bytes is too short for windows of {context} bytes: "
                        f"each of its 90/5/5 blocks needs more than {context} bytes.")
    tokens = torch.frombuffer(bytearray(text), dtype=torch.uint8).to(device).long()
    train, val, test = torch.split(tokens, list(sizes))
    val_x, val_y = fixed_windows(val, context)
    test_x, test_y = fixed_windows(test, context)
    return TextSplits(name, train, val_x, val_y, test_x, test_y, context, epoch_steps, source, root, sizes)


def fixed_windows(block: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `EVAL_WINDOWS` windows evenly spaced over `block`, and their next-byte targets."""
    positions = len(block) - context  # windows whose targets stay inside the block
    starts = torch.linspace(0, positions - 1, min(EVAL_WINDOWS, positions), device=block.device).round().long()
    index = starts.unsqueeze(1) + torch.arange(context, device=block.device)
    return block[index], block[index + 1]
