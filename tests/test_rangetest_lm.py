"""The range test on the transformer (text): gradient clipping as the job clips, the length in a text's steps, and
the LM bench's judging (``autolr.bench.rangetest_lm``) on the tests' 12 KB sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from autolr.data.load import load_text_splits
from autolr.rangetest.range_test import builtin_range_test

SAMPLE_DIR = Path(__file__).parent / "text"
LM_OPTIMIZER = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}


@pytest.fixture(scope="module")
def text():
    return load_text_splits("fortunes", context=16, epoch_steps=5, data_dir=SAMPLE_DIR)


def sweep(text, **options):
    return builtin_range_test("transformer", text, method="sweep", check=False, num_steps=20, batch_size=4,
                              optimizer=LM_OPTIMIZER, seeds=1, **options)


def test_a_clipped_sweep_differs_only_where_the_clip_bites(text):
    plain = sweep(text).losses
    assert sweep(text, grad_clip=1e9).losses == plain  # a limit no gradient reaches changes nothing
    clipped = sweep(text, grad_clip=1e-3).losses
    assert clipped[0] == plain[0]  # the first loss is measured before any step
    assert max(abs(a - b) for a, b in zip(clipped[1:], plain[1:])) > 1e-3


def test_a_text_length_in_epochs_counts_the_texts_steps_between_evaluations(text):
    assert sweep(text, epochs=3).settings["length"] == 3 * 5
