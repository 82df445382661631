"""Datasets: the built-in catalog, offline provisioning, and fixed seeded train/val/test splits."""

from autolr.data.catalog import DATASET_NAMES
from autolr.data.load import load_splits
from autolr.data.provision import Provisioned, cache_dir, provision
from autolr.data.splits import TEST_FRACTION, VAL_FRACTION, Splits, split_sizes, splits_from_tensors

__all__ = [
    "DATASET_NAMES",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "Provisioned",
    "Splits",
    "cache_dir",
    "load_splits",
    "provision",
    "split_sizes",
    "splits_from_tensors",
]
