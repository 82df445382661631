"""Splits: fixed, seeded train / validation / test tensors, normalized and on one device.

Rules shared by every dataset (built-in or the user's own tensors):

- The test split never depends on `seed`: it is the official test files, or, where a
  dataset has none, a slice carved by a permutation with the fixed seed `TEST_SEED`.
- The validation split is carved from the training data by a permutation seeded with
  `seed`; the search scores on it. Different seeds give different validation splits.
- Inputs are float32, normalized per channel (per feature for N x D inputs) with the mean
  and standard deviation of the training split, shape N x C x H x W. Labels are int64.
- Normalization runs on the target device after the raw (often uint8) tensors are moved
  there, so a GPU receives a quarter of the bytes and does the arithmetic itself. The
  tensors are then kept float32 on the device: a training step only indexes them, which is
  faster than converting and normalizing every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from autolr.errors import DataError

VAL_FRACTION = 0.1
"""Default fraction of the training data held out for validation."""

TEST_FRACTION = 0.2
"""Default fraction carved out as the test split when a dataset has no test files."""

TEST_SEED = 0
"""Seed of the permutation that carves a test split, fixed so the test split never moves."""


@dataclass(frozen=True, eq=False)
class Splits:
    """A dataset's train / validation / test tensors, normalized and on one device.

    `source` says where the data came from (its first word is the kind: `data_dir`,
    `debian`, `cache`, `download`, `npm`, `scikit-learn`, `tensors`); `root` is the folder
    in torchvision's layout that holds the files (`None` for data that has no files).
    `mean` and `std` are the per-channel statistics the inputs were normalized with.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    source: str
    root: Path | None
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples in each split: {"train": ..., "val": ..., "test": ...}."""
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    @property
    def device(self) -> torch.device:
        """The device every tensor lives on."""
        return self.train_x.device


def validation_count(train_count: int, val_fraction: float) -> int:
    """How many of `train_count` training examples go to validation (rounded, at least 1)."""
    _check_fraction("val_fraction", val_fraction)
    return max(1, round(train_count * val_fraction))


def held_out_count(count: int, test_fraction: float) -> int:
    """How many of `count` examples are carved out as the test split (rounded, at least 1)."""
    _check_fraction("test_fraction", test_fraction)
    return max(1, round(count * test_fraction))


def split_sizes(train_count: int, test_count: int, val_fraction: float = VAL_FRACTION) -> dict[str, int]:
    """Split sizes for `train_count` training files' examples and `test_count` test examples."""
    val = validation_count(train_count, val_fraction)
    return {"train": train_count - val, "val": val, "test": test_count}


def seeded_permutation(count: int, seed: int) -> torch.Tensor:
    """A permutation of range(count) that depends only on `seed` (CPU generator, any platform)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)


def make_splits(
    name: str,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    num_classes: int,
    source: str,
    root: Path | None,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Splits:
    """Carve validation from the training data with `seed`, normalize, and move to `device`.

    Inputs are N x C x H x W (or N x D) of any numeric dtype; labels integer class indices.
    """
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(f"dataset {name!r} has a different number of inputs and labels.")
    if len(train_x) < 2:
        raise DataError(f"dataset {name!r} needs at least 2 training examples, got {len(train_x)}.")
    order = seeded_permutation(len(train_x), seed)
    val_count = validation_count(len(train_x), val_fraction)
    val_index, train_index = order[:val_count], order[val_count:]

    train_x = train_x.to(device)
    train_part = train_x[train_index.to(device)]
    mean, std = _channel_stats(train_part)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        # move first (uint8 is a quarter of the bytes), then convert on the device into a new tensor
        return x.to(device).to(torch.float32, copy=True).sub_(mean).div_(std)

    def labels(y: torch.Tensor) -> torch.Tensor:
        return y.to(device, torch.int64)

    return Splits(
        name=name,
        train_x=prepare(train_part),
        train_y=labels(train_y[train_index]),
        val_x=prepare(train_x[val_index.to(device)]),
        val_y=labels(train_y[val_index]),
        test_x=prepare(test_x),
        test_y=labels(test_y),
        num_classes=num_classes,
        input_shape=tuple(train_x.shape[1:]),
        source=source,
        root=root,
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
    )


def splits_from_tensors(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    test_x: torch.Tensor | None = None,
    test_y: torch.Tensor | None = None,
    num_classes: int | None = None,
    name: str = "tensors",
    source: str = "tensors",
    device: str | torch.device = "cpu",
) -> Splits:
    """Splits of your own data: `x` N x C x H x W (N x H x W gets C = 1; or N x D), `y` N labels.

    Without `test_x`/`test_y`, a `test_fraction` of the examples becomes the test split,
    carved with the fixed seed `TEST_SEED` so it is the same for every `seed`; `seed` moves
    only the validation split (a `val_fraction` of the remaining examples).
    `num_classes` defaults to the largest label + 1; `source` says where the data came from.
    """
    if x.ndim < 2 or len(x) != len(y):
        raise DataError(
            f"x must be N x ... with one label per row in y; got x {tuple(x.shape)} and y {tuple(y.shape)}.")
    if (test_x is None) != (test_y is None):
        raise DataError("give both test_x and test_y, or neither.")
    if x.ndim == 3:
        x, test_x = x.unsqueeze(1), None if test_x is None else test_x.unsqueeze(1)
    if test_x is None or test_y is None:
        order = seeded_permutation(len(x), TEST_SEED)
        carved = held_out_count(len(x), test_fraction)
        test_index, train_index = order[:carved], order[carved:]
        x, y, test_x, test_y = x[train_index], y[train_index], x[test_index], y[test_index]
    if num_classes is None:
        num_classes = int(max(y.max(), test_y.max())) + 1
    return make_splits(
        name,
        x,
        y,
        test_x,
        test_y,
        num_classes=num_classes,
        source=source,
        root=None,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
    )


def splits_from_datasets(
    train: Dataset,
    test: Dataset | None = None,
    *,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    num_classes: int | None = None,
    name: str = "dataset",
    device: str | torch.device = "cpu",
) -> Splits:
    """Splits of map-style datasets yielding (input, label), read once into tensors.

    Inputs may be tensors, arrays or PIL images (kept as uint8 C x H x W); labels ints.
    Without `test`, a `test_fraction` of `train` becomes the test split, as in
    `splits_from_tensors`. Reading goes item by item, once: pass datasets without random
    augmentation (the splits are fixed tensors).
    """
    x, y = _stack(train)
    test_x, test_y = _stack(test) if test is not None else (None, None)
    return splits_from_tensors(
        x, y, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, test_x=test_x, test_y=test_y,
        num_classes=num_classes, name=name, source=f"dataset {type(train).__name__}", device=device,
    )


def _stack(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All (input, label) items of a map-style dataset as one input tensor and int64 labels."""
    from PIL.Image import Image
    from torchvision.transforms.functional import pil_to_tensor

    inputs, labels = [], []
    for index in range(len(dataset)):  # type: ignore[arg-type]  # torch's Dataset declares no __len__; map-style has it
        item, label = dataset[index]
        inputs.append(pil_to_tensor(item) if isinstance(item, Image) else torch.as_tensor(item))
        labels.append(int(label))
    if not inputs:
        raise DataError(f"dataset {type(dataset).__name__} is empty.")
    return torch.stack(inputs), torch.tensor(labels, dtype=torch.int64)


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over all dimensions but dim 1, shaped to broadcast.

    uint8 inputs are counted by value (a 256-bin histogram per channel): exact and faster
    than converting the whole tensor to float. A zero deviation is replaced by 1.
    """
    if x.dtype == torch.uint8:
        values = torch.arange(256, device=x.device, dtype=torch.float64)
        counts = torch.stack([torch.bincount(x[:, channel].flatten(), minlength=256) for channel in range(x.shape[1])])
        counts = counts.to(torch.float64) / counts.sum(dim=1, keepdim=True)
        mean = counts @ values
        std = (counts @ values.square() - mean.square()).clamp(min=0).sqrt()
        shape = (x.shape[1],) + (1,) * (x.ndim - 2)
        mean, std = mean.to(torch.float32).reshape(shape), std.to(torch.float32).reshape(shape)
    else:
        dims = [d for d in range(x.ndim) if d != 1]
        std, mean = torch.std_mean(x.to(torch.float32), dim=dims, correction=0)
        shape = mean.shape + (1,) * (x.ndim - 2)
        mean, std = mean.reshape(shape), std.reshape(shape)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise DataError(f"{name} must be a fraction in (0, 1), got {value}.")
