"""The built-in transformer: it learns bytes, trains as a population equal to single runs, and as a user's module."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from autolr.data import load_text_splits
from autolr.errors import UserError
from autolr.schedule.spec import ScheduleSpec
from autolr.training.models import build_model, build_population
from autolr.training.population import train_population
from autolr.training.train import train_trial
from autolr.training.transformer import StackedTransformer, Transformer, TransformerSize

SAMPLE_DIR = Path(__file__).parent / "text"
TINY = TransformerSize(layers=1, width=32, heads=4)
ADAMW = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}
EPOCHS, BATCH, DATA_SEED = 3, 8, 4


@pytest.fixture(scope="module")
def sample():
    return load_text_splits("fortunes", context=16, epoch_steps=5, data_dir=SAMPLE_DIR)


def unigram_bits(tokens: torch.Tensor) -> float:
    """Entropy of the byte frequencies, bits per byte: what a model that ignores context reaches at best."""
    counts = Counter(tokens.tolist())
    total = sum(counts.values())
    return -sum(count / total * math.log2(count / total) for count in counts.values())


def test_the_model_is_causal_with_tied_embeddings_and_torchs_class_layout() -> None:
    model = build_model(TINY, (16,), 256, seed=0)
    assert isinstance(model, Transformer) and model.head.weight is model.token_embedding.weight
    tokens = torch.randint(256, (2, 16), generator=torch.Generator().manual_seed(0))
    logits = model(tokens)
    assert logits.shape == (2, 256, 16)  # batch x vocabulary x positions, as F.cross_entropy takes them
    changed = tokens.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 256
    torch.testing.assert_close(model(changed)[:, :, :10], logits[:, :, :10])  # no position sees a later byte
    assert not torch.allclose(model(changed)[:, :, 10:], logits[:, :, 10:])
    default = build_model("transformer", (64,), 256, seed=0)
    assert sum(p.numel() for p in default.parameters()) == sum(p.numel() for p in build_model(
        TransformerSize(), (64,), 256, seed=1).parameters())
    with pytest.raises(UserError, match="width 30 must be a multiple of heads 4"):
        TransformerSize(width=30)
    with pytest.raises(UserError, match=r"input_shape of the transformer model must be \(context,\)"):
        build_model("transformer", (1, 8, 8), 256, seed=0)


def test_a_population_equals_single_runs_pruning_included(sample) -> None:
    specs = [
        ScheduleSpec("cosine", 3e-3, {"min_factor": 0.1}, warmup={"fraction": 0.1}, optimizer=ADAMW),
        ScheduleSpec("linear", 1e-2, {"end_factor": 0.0}, warmup={"fraction": 0.1}, optimizer=ADAMW),
        ScheduleSpec("constant", 1e-3, optimizer=ADAMW),
    ]
    assert isinstance(build_population(TINY, (16,), 256, [0, 1]), StackedTransformer)
    stopped = lambda member, epoch, score: member == 1 and epoch == 0  # noqa: E731
    population = train_population(specs, TINY, sample, EPOCHS, BATCH, [0, 1, 2], data_seed=DATA_SEED,
                                  metric="loss", on_epoch=stopped)
    assert [member.status for member in population] == ["complete", "pruned", "complete"]
    assert population[1].epochs_run == 1
    for k, (spec, member) in enumerate(zip(specs, population)):
        single = train_trial(spec, TINY, sample, EPOCHS, BATCH, seed=k, metric="loss", data_seed=DATA_SEED,
                             on_epoch=lambda epoch, score, k=k: stopped(k, epoch, score))
        assert single.status == member.status and single.epochs_run == member.epochs_run
        torch.testing.assert_close(member.val_losses, single.val_losses, rtol=0, atol=1e-4)
    assert len({tuple(member.val_losses) for member in population}) == 3


def test_it_learns_the_sample_text_below_its_unigram_entropy() -> None:
    sample = load_text_splits("fortunes", context=16, epoch_steps=50, data_dir=SAMPLE_DIR)
    spec = ScheduleSpec("cosine", 1e-2, {"min_factor": 0.1}, warmup={"fraction": 0.1}, optimizer=ADAMW)
    result = train_trial(spec, TINY, sample, 4, 16, seed=0, metric="loss")
    bits = [loss / math.log(2) for loss in result.val_losses]
    assert bits[0] > bits[-1]
    assert bits[-1] < unigram_bits(sample.train_tokens) - 0.3, bits  # the sample's unigram entropy: 4.5 bits


def test_search_module_searches_the_transformer_as_a_users_module(sample, tmp_path) -> None:
    import autolr
    from autolr.training.module_population import build_member

    def factory() -> Transformer:
        return Transformer(TINY, context=16, vocab=256)

    space = autolr.SearchSpace(lr_low=1e-3, lr_high=1e-2, families=("constant", "cosine"), optimizer=ADAMW)
    result = autolr.search_module(factory, sample, space, n_trials=4, epochs=2, batch_size=BATCH, population=2,
                                  metric="loss", storage=f"sqlite:///{tmp_path / 'lm.db'}", pruner="none", seed=3,
                                  baseline_lrs=0, rescore_seeds=0)
    assert [trial.state for trial in result.record.trials] == ["complete"] * 4
    trial = result.record.trials[-1]
    single = train_trial(autolr.ScheduleSpec.from_dict(trial.spec), build_member(factory, 3), sample, 2, BATCH,
                         seed=3, metric="loss", data_seed=3)
    assert single.val_scores == pytest.approx(trial.val_curve, abs=1e-5)
    assert max(trial.val_curve) < math.log(256)  # below a uniform guess over bytes: 8 bits


@pytest.mark.slow  # about a minute: 400 AdamW steps of the default transformer on Debian's fortunes
@pytest.mark.skipif(not Path("/usr/share/games/fortunes").is_dir(), reason="Debian's fortunes not installed")
def test_the_default_transformer_learns_fortunes_well_below_the_unigram_entropy() -> None:
    splits = load_text_splits("fortunes", context=64, epoch_steps=100)
    spec = ScheduleSpec("cosine", 1e-2, {"min_factor": 0.1}, warmup={"fraction": 0.05}, optimizer=ADAMW)
    result = train_trial(spec, "transformer", splits, 4, 32, seed=0, metric="loss")
    bits = result.val_losses[-1] / math.log(2)
    unigram = unigram_bits(splits.train_tokens)
    assert unigram == pytest.approx(4.79, abs=0.03)
    assert bits < unigram - 0.9, bits  # measured: 3.6 bits per byte after 400 steps


def test_the_transformer_trains_on_text_and_only_there() -> None:
    from autolr.errors import StudyError
    from autolr.study.config import StudyConfig

    for dataset, model, length in (("fortunes", "mlp", {"steps": 100}), ("mnist", "transformer", {})):
        with pytest.raises(StudyError, match=f"model '{model}' cannot train on dataset '{dataset}'"):
            StudyConfig(name="lm", dataset=dataset, model=model, **length)
