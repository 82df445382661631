"""The built-in datasets: names, torchvision file layout, class counts and file readers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from autolr.data.idx import idx_count, read_idx
from autolr.errors import DataError

RawTensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""uint8 train images N x C x H x W, train labels N, test images, test labels."""


@dataclass(frozen=True)
class FileDataset:
    """A dataset stored as files in torchvision's layout under a root folder.

    `folder` is the path inside the root (`MNIST/raw`), `files` the names it must hold
    (IDX files may also be gzipped, `name.gz`), `torchvision_class` the
    `torchvision.datasets` class that reads the same root and can download it. `read` and
    `counts` take the found files (`find_files`) and return the uint8 tensors, or the
    number of train-file and test-file examples.
    """

    name: str
    num_classes: int
    folder: str
    files: tuple[str, ...]
    torchvision_class: str
    read: Callable[[dict[str, Path]], RawTensors]
    counts: Callable[[dict[str, Path]], tuple[int, int]]
    gzip_allowed: bool = False

    def find_files(self, folder: Path) -> dict[str, Path] | None:
        """Each required file's path in `folder` (plain first, then `.gz`), or None if any is missing."""
        found = {}
        for file in self.files:
            candidates = [folder / file] + ([folder / f"{file}.gz"] if self.gzip_allowed else [])
            present = [path for path in candidates if path.is_file()]
            if not present:
                return None
            found[file] = present[0]
        return found


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx_dataset(files: dict[str, Path]) -> RawTensors:
    train_x, train_y, test_x, test_y = (read_idx(files[name]) for name in IDX_FILES)
    return train_x.unsqueeze(1), train_y, test_x.unsqueeze(1), test_y


def _count_idx_dataset(files: dict[str, Path]) -> tuple[int, int]:
    return idx_count(files[IDX_FILES[1]]), idx_count(files[IDX_FILES[3]])


def _read_cifar10(files: dict[str, Path]) -> RawTensors:
    from torchvision.datasets import CIFAR10

    root = str(files["test_batch"].parent.parent)
    train, test = CIFAR10(root, train=True), CIFAR10(root, train=False)

    def images(dataset: CIFAR10) -> torch.Tensor:
        return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()

    return images(train), torch.tensor(train.targets), images(test), torch.tensor(test.targets)


def _count_cifar10(files: dict[str, Path]) -> tuple[int, int]:
    return 50_000, 10_000


def _idx_dataset(name: str, torchvision_class: str) -> FileDataset:
    return FileDataset(
        name=name,
        num_classes=10,
        folder=f"{torchvision_class}/raw",
        files=IDX_FILES,
        torchvision_class=torchvision_class,
        read=_read_idx_dataset,
        counts=_count_idx_dataset,
        gzip_allowed=True,
    )


FILE_DATASETS: dict[str, FileDataset] = {
    "mnist": _idx_dataset("mnist", "MNIST"),
    "fashion-mnist": _idx_dataset("fashion-mnist", "FashionMNIST"),
    "cifar10": FileDataset(
        name="cifar10",
        num_classes=10,
        folder="cifar-10-batches-py",
        files=(*(f"data_batch_{index}" for index in range(1, 6)), "test_batch", "batches.meta"),
        torchvision_class="CIFAR10",
        read=_read_cifar10,
        counts=_count_cifar10,
    ),
}

@dataclass(frozen=True)
class TextDataset:
    """A text dataset: every plain file of a folder, read as bytes in name order and concatenated.

    `folder` is the folder's name inside a `data_dir` or the cache; `debian_folder` where
    the Debian package `debian_package` installs the files. Index files (`.dat`), links
    (`.u8`) and subfolders are not text and are skipped.
    """

    name: str
    folder: str
    debian_folder: Path
    debian_package: str

    def find_files(self, folder: Path) -> dict[str, Path] | None:
        """The text files in `folder` by name, or None when it holds none."""
        if not folder.is_dir():
            return None
        files = {path.name: path for path in sorted(folder.iterdir())
                 if path.is_file() and not path.is_symlink() and path.suffix not in TEXT_INDEX_SUFFIXES}
        return files or None


TEXT_INDEX_SUFFIXES = (".dat", ".u8")

TEXT_DATASETS: dict[str, TextDataset] = {
    # Debian's fortunes package (the English fortunes; the offensive set is in fortunes-off, not read)
    "fortunes": TextDataset("fortunes", "fortunes", Path("/usr/share/games/fortunes"), "fortunes"),
}


def read_text(files: dict[str, Path]) -> bytes:
    """The files' bytes concatenated in name order, each file's `%` separator lines kept as they are."""
    return b"".join(files[name].read_bytes() for name in sorted(files))


DIGITS = "digits"
"""scikit-learn's bundled 8 x 8 digits (1,797 images): no files to provision."""

DATASET_NAMES = ("mnist", "fashion-mnist", "digits", "cifar10", "fortunes")


def canonical_name(name: str) -> str:
    """The built-in name for `name` (case and `_`/`-` ignored); DataError if there is none."""
    canonical = name.strip().lower().replace("_", "-")
    if canonical not in DATASET_NAMES:
        raise DataError(f"unknown dataset {name!r}; the built-in datasets are: {', '.join(DATASET_NAMES)}.")
    return canonical


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as uint8 images 1797 x 1 x 8 x 8 (values 0..16) and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images).to(torch.uint8).unsqueeze(1)
    return images, torch.from_numpy(digits.target).to(torch.int64)
