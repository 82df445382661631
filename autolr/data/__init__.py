"""Datasets: the built-in catalog, offline provisioning, and fixed seeded train/val/test splits."""

from autolr.data.catalog import DATASET_NAMES
from autolr.data.load import DatasetInfo, available_datasets, fetch_dataset, load_splits, load_text_splits
from autolr.data.provision import Provisioned, cache_dir, provision
from autolr.data.splits import (
    TEST_FRACTION,
    VAL_FRACTION,
    Splits,
    split_sizes,
    splits_from_datasets,
    splits_from_tensors,
)
from autolr.data.text import TextSplits, text_splits

__all__ = [
    "DATASET_NAMES",
    "DatasetInfo",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "Provisioned",
    "Splits",
    "TextSplits",
    "available_datasets",
    "cache_dir",
    "fetch_dataset",
    "load_splits",
    "load_text_splits",
    "provision",
    "split_sizes",
    "splits_from_datasets",
    "splits_from_tensors",
    "text_splits",
]
