"""The `fortunes` text dataset: byte tokens, contiguous 90/5/5 blocks, fixed evaluation windows, seeded windows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from autolr.data import fetch_dataset, load_splits, load_text_splits, text_splits
from autolr.data.catalog import TEXT_DATASETS, TextDataset
from autolr.data.provision import provision_text
from autolr.data.text import EVAL_WINDOWS
from autolr.errors import DataError
from autolr.training.train import epoch_steps, training_epochs

SAMPLE_DIR = Path(__file__).parent / "text"
SAMPLE = (SAMPLE_DIR / "fortunes" / "fortunes").read_bytes()


def test_blocks_are_contiguous_90_5_5_and_cover_the_text() -> None:
    splits = load_text_splits("fortunes", context=16, data_dir=SAMPLE_DIR)
    train, val, test = splits.sizes["train"], splits.sizes["val"], splits.sizes["test"]
    assert train + val + test == len(SAMPLE) == 11967
    assert (val, test) == (598, 598)  # floor(5%)
    assert bytes(splits.train_tokens.tolist()) == SAMPLE[:train]
    assert splits.source == f"data_dir {SAMPLE_DIR}" and splits.num_classes == 256 and splits.input_shape == (16,)
    # every validation window (and its targets) lies inside the validation block, one byte apart
    val_block = SAMPLE[train:train + val]
    for window, targets in zip(splits.val_x.tolist(), splits.val_y.tolist()):
        assert bytes(window) in val_block and bytes(targets) in val_block and window[1:] == targets[:-1]
    first_test = bytes(splits.test_x[0].tolist())
    assert first_test == SAMPLE[train + val:train + val + 16]


def test_evaluation_windows_are_fixed_and_evenly_spaced() -> None:
    text = bytes(range(256)) * 400  # 102,400 bytes: the val block has 5,120
    splits = text_splits(text, context=8)
    assert splits.val_x.shape == (EVAL_WINDOWS, 8)
    starts = splits.val_x[:, 0].tolist()
    gaps = {(b - a) % 256 for a, b in zip(starts, starts[1:])}
    assert gaps <= {20, 21}  # starts 0 .. 5111 (5120 - 8 - 1) in 255 gaps: 20.04 bytes apart, rounded
    assert torch.equal(text_splits(text, context=8).val_x, splits.val_x)


def test_training_windows_are_views_and_each_epoch_draws_its_windows_with_the_seed() -> None:
    splits = text_splits(SAMPLE, context=16, epoch_steps=3)
    x, y = splits.train_x, splits.train_y
    assert x.shape == (splits.sizes["train"] - 16, 16) and x.data_ptr() == splits.train_tokens.data_ptr()
    assert torch.equal(x[5, 1:], y[5, :-1])
    assert epoch_steps(splits, batch_size=4) == 3

    def draws(seed: int) -> list[torch.Tensor]:
        return [epoch_x for epoch_x, _ in training_epochs(splits, x, y, 2, 4, seed)]

    first, again, other = draws(1), draws(1), draws(2)
    assert first[0].shape == (12, 16)  # epoch_steps x batch_size windows
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[0], other[0])


def test_package_or_cache_provides_fortunes_and_a_missing_one_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOLR_CACHE_DIR", str(tmp_path / "cache"))
    absent = TextDataset("fortunes", "fortunes", tmp_path / "no-package", "fortunes")
    with pytest.raises(DataError, match=r"not available; .* install it with `apt-get install fortunes`"):
        provision_text(absent)
    shutil.copytree(SAMPLE_DIR / "fortunes", tmp_path / "cache" / "fortunes")
    assert provision_text(absent).source == f"cache {tmp_path / 'cache' / 'fortunes'}"
    with pytest.raises(DataError, match=r"data_dir .* holds no fortunes files: expected text files in"):
        load_text_splits("fortunes", data_dir=tmp_path)
    with pytest.raises(DataError, match="is text: load it with load_text_splits"):
        load_splits("fortunes")
    with pytest.raises(DataError, match="too short for windows of 64 bytes"):
        text_splits(b"x" * 100)
    info = fetch_dataset("fortunes", data_dir=SAMPLE_DIR)
    assert (info.train, info.val, info.test) == (10771, 598, 598)


@pytest.mark.skipif(not TEXT_DATASETS["fortunes"].debian_folder.is_dir(), reason="Debian's fortunes not installed")
def test_debians_fortunes_package_is_read_as_plain_text_without_its_indexes() -> None:
    info = fetch_dataset("fortunes")
    assert info.source == "debian /usr/share/games/fortunes"
    assert 2_000_000 < info.train + info.val + info.test < 3_500_000
    files = TEXT_DATASETS["fortunes"].find_files(TEXT_DATASETS["fortunes"].debian_folder)
    assert files is not None and "fortunes" in files
    assert not any(name.endswith((".dat", ".u8")) for name in files)
