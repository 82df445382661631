"""Built-in datasets by name: `load_splits` (device-resident splits), fetch and list them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from autolr.data.catalog import (
    DATASET_NAMES,
    DIGITS,
    FILE_DATASETS,
    TEXT_DATASETS,
    canonical_name,
    read_digits,
    read_text,
)
from autolr.data.provision import provision, provision_text
from autolr.data.splits import (
    TEST_FRACTION,
    VAL_FRACTION,
    Splits,
    held_out_count,
    make_splits,
    split_sizes,
    splits_from_tensors,
)
from autolr.data.text import CONTEXT, EPOCH_STEPS, TextSplits, block_sizes, text_splits
from autolr.errors import DataError

DIGITS_SOURCE = "scikit-learn load_digits (bundled)"
DIGITS_COUNT = 1797


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
    if name in TEXT_DATASETS:
        raise DataError(f"dataset {name!r} is text: load it with load_text_splits, which cuts it into byte windows.")
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


def load_text_splits(
    name: str,
    context: int = CONTEXT,
    epoch_steps: int = EPOCH_STEPS,
    data_dir: Path | str | None = None,
    device: str | torch.device = "cpu",
) -> TextSplits:
    """Load built-in text dataset `name` (`fortunes`) as byte-token splits on `device`.

    `context`: window length in bytes; `epoch_steps`: optimizer steps between two
    evaluations (see `autolr.data.text`). The blocks do not depend on any seed.
    """
    name = canonical_name(name)
    if name not in TEXT_DATASETS:
        raise DataError(f"dataset {name!r} is not text; the text datasets are: {', '.join(TEXT_DATASETS)}.")
    found = provision_text(TEXT_DATASETS[name], data_dir)
    return text_splits(read_text(found.files), context=context, epoch_steps=epoch_steps, name=name,
                       source=found.source, root=found.root, device=device)


@dataclass(frozen=True)
class DatasetInfo:
    """What `autolr data list` shows for one dataset: where it is, where from, split sizes."""

    name: str
    root: Path | None
    source: str
    train: int
    val: int
    test: int

    def to_dict(self) -> dict[str, str | int | None]:
        """JSON-ready: {"name", "root", "source", "train", "val", "test"}; root None for digits."""
        return {
            "name": self.name,
            "root": None if self.root is None else str(self.root),
            "source": self.source,
            "train": self.train,
            "val": self.val,
            "test": self.test,
        }


def fetch_dataset(name: str, data_dir: Path | str | None = None, network: bool = True) -> DatasetInfo:
    """Provision built-in dataset `name` (without loading it) and describe it (text: split sizes in bytes).

    `network=False` looks only locally (data_dir, Debian, cache) and fetches nothing.
    """
    name = canonical_name(name)
    if name in TEXT_DATASETS:
        found = provision_text(TEXT_DATASETS[name], data_dir)
        train, val, test = block_sizes(sum(path.stat().st_size for path in found.files.values()))
        return DatasetInfo(name, found.root, found.source, train, val, test)
    if name == DIGITS:
        test = held_out_count(DIGITS_COUNT, TEST_FRACTION)
        return DatasetInfo(name, None, DIGITS_SOURCE, **split_sizes(DIGITS_COUNT - test, test))
    dataset = FILE_DATASETS[name]
    found = provision(dataset, data_dir, network=network)
    return DatasetInfo(name, found.root, found.source, **split_sizes(*dataset.counts(found.files)))


def available_datasets(data_dir: Path | str | None = None) -> list[DatasetInfo]:
    """The built-in datasets present on this machine now (a local look: nothing is fetched)."""
    present = []
    for name in DATASET_NAMES:
        try:
            present.append(fetch_dataset(name, data_dir, network=False))
        except DataError:
            continue
    return present
