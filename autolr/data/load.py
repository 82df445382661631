"""`load_splits`: a built-in dataset, provisioned and split, as device-resident tensors."""

from __future__ import annotations

from pathlib import Path

import torch

from autolr.data.catalog import DIGITS, FILE_DATASETS, canonical_name, read_digits
from autolr.data.provision import provision
from autolr.data.splits import VAL_FRACTION, Splits, make_splits, splits_from_tensors

DIGITS_SOURCE = "scikit-learn load_digits (bundled)"


def load_splits(
    name: str,
    data_dir: Path | str | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
) -> Splits:
    """Load built-in dataset `name` as fixed, seeded, normalized splits on `device`.

    The files are found or fetched by the provisioning chain (`autolr.data.provision`);
    `Splits.source` says where they came from. The test split is the official test files
    (for `digits`, a fixed 20% slice); validation is a `val_fraction` of the training
    files, chosen by a permutation seeded with `seed`. Load once per process and pass the
    Splits to every trial: the files are read from disk on every call.
    """
    name = canonical_name(name)
    if name == DIGITS:
        images, labels = read_digits()
        return splits_from_tensors(
            images, labels, val_fraction=val_fraction, seed=seed, num_classes=10, name=name,
            source=DIGITS_SOURCE, device=device,
        )
    dataset = FILE_DATASETS[name]
    found = provision(dataset, data_dir)
    train_x, train_y, test_x, test_y = dataset.read(found.files)
    return make_splits(
        name, train_x, train_y, test_x, test_y, num_classes=dataset.num_classes, source=found.source,
        root=found.root, val_fraction=val_fraction, seed=seed, device=device,
    )
