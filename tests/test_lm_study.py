"""The language-model study: fortunes on the transformer, measured in steps, against the LM recipe's baselines.

A tiny study on the shipped 12 KB sample (``tests/text``) runs end to end through
``run_study`` to a verdict; each member of a population clips its own gradient norm exactly
as ``torch.nn.utils.clip_grad_norm_`` clips a single run's; steps on an image study and
epochs on a text study are refused with one sentence (exit 2).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from autolr.data import load_splits
from autolr.errors import StudyError
from autolr.pipeline.run import run_study
from autolr.schedule.spec import ScheduleSpec
from autolr.space.baselines import baseline_kind
from autolr.study.config import StudyConfig, load_study, packaged_study
from autolr.study.definition import Recipe, ScoreUnit
from autolr.training.models import build_population
from autolr.training.population import clip_members, train_population
from autolr.training.train import train_trial

SAMPLE_DIR = Path(__file__).parent / "text"
ROOT = Path(__file__).resolve().parent.parent
LM_OPTIMIZER = {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}


def tiny_lm_study(**changes) -> StudyConfig:
    """Four baselines at one LR each, two searched trials, 4 steps a trial validated every 2."""
    settings = dict(name="tiny-lm", dataset="fortunes", model="transformer", metric="loss", steps=4, eval_every=2,
                    trials=6, baseline_lrs=1, families=("cosine", "wsd"), batch_size=4, population=6, device="cpu",
                    data_dir=str(SAMPLE_DIR), rescore_top=1, rescore_seeds=2, grad_clip=1.0, optimizer=LM_OPTIMIZER)
    return StudyConfig(**{**settings, **changes})


def test_a_tiny_fortunes_study_runs_to_a_verdict_against_the_lm_recipe(tmp_path, capsys):
    run = run_study(tiny_lm_study(), out=tmp_path)
    record = run.record
    baselines = {baseline_kind(trial.baseline): trial.spec for trial in record.trials if trial.baseline}
    assert sorted(baselines) == ["schedule_free", "warmup_cosine", "warmup_linear", "wsd"]
    for kind in ("warmup_cosine", "warmup_linear", "wsd"):
        assert baselines[kind]["warmup"] == {"fraction": 0.05, "start_factor": 0.0}
        assert baselines[kind]["optimizer"] == {"name": "adamw", "betas": [0.9, 0.95], "eps": 1e-8,
                                                "weight_decay": 0.1}
    assert baselines["warmup_cosine"]["params"] == {"min_factor": 0.1}
    assert baselines["warmup_linear"]["params"] == {"start_factor": 1.0, "end_factor": 0.0, "duration": 1.0}
    assert baselines["wsd"]["params"] == {"decay_fraction": 0.2, "decay_shape": "sqrt", "min_factor": 0.0}
    assert baselines["schedule_free"]["optimizer"]["name"] == "schedulefree_adamw"
    assert baselines["schedule_free"]["optimizer"]["betas"] == [0.9, 0.95]
    complete = [trial for trial in record.trials if trial.state == "complete"]
    assert complete and all(trial.epochs_run == 2 and len(trial.val_curve) == 2 for trial in complete)
    assert all(math.isfinite(trial.value) and trial.value > 0 for trial in complete)  # nats per byte
    assert record.verdict is not None and record.verdict["outcome"] in ("gain", "no gain")
    rescored_kinds = sorted(item.baseline for item in record.rescored if item.baseline)
    assert rescored_kinds == ["schedule_free", "warmup_cosine", "warmup_linear", "wsd"]
    assert all(item.epochs == 2 and len(item.val_scores) == 2 for item in record.rescored)
    assert record.config["steps"] == 4 and record.config["epochs"] == 2
    assert record.config["score_unit"] == "bits/byte"
    # a language model's study runs the range test's check, whose constant-LR runs cap the search's anchor
    test = record.range_test
    assert test is not None and test["settings"]["check"]["length"] == 4
    assert test["suggestions"]["anchor"] == pytest.approx(min(test["suggestions"]["loss_min"],
                                                              4.0 * test["suggestions"]["check"]))
    page = run.report_paths.index_html.read_text(encoding="utf-8")
    assert "validation loss (bits/byte)" in page  # the report's scores are loss / ln 2
    shown = pd.read_csv(run.report_paths.trials_csv).set_index("number")["value"]
    for trial in complete:
        assert shown[trial.number] == pytest.approx(trial.value / math.log(2), rel=1e-9)
    assert "on validation loss (bits/byte)" in record.verdict["sentence"]  # the verdict's numbers are bits too
    from autolr.cli.search import _print_result

    _print_result(run, as_json=False)
    printed = capsys.readouterr().out
    assert "val loss (bits/byte)" in printed and "nats" not in printed
    assert ".build(optimizer, total_steps)  # then scheduler.step() once per optimizer step" in printed


def test_the_shipped_fortunes_study_speaks_steps_and_the_lm_recipe():
    config = packaged_study("fortunes")
    assert config.recipe is Recipe.LM and config.score_unit is ScoreUnit.BITS_PER_BYTE
    assert (config.steps, config.eval_every, config.epochs, config.target_epochs) == (400, 50, 8, None)
    assert config.optimizer == {"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1}
    assert config.grad_clip == 1.0 and config.metric == "loss"
    assert load_study(ROOT / "studies" / "fortunes.toml") == config
    longer = config.replace(target_steps=1600)
    assert (longer.target_epochs, longer.definition().verdict_epochs) == (32, 32)
    assert packaged_study("mnist").recipe is Recipe.CLASSIFIER


def test_a_bits_per_byte_score_is_the_loss_over_ln_2():
    assert ScoreUnit.BITS_PER_BYTE.scale(math.log(2) * 3.5) == pytest.approx(3.5, rel=1e-12)
    assert ScoreUnit.AS_STORED.scale(0.97) == 0.97
    assert ScoreUnit.parse(None) is ScoreUnit.AS_STORED


def test_each_member_clips_its_own_gradient_norm_as_torch_clips_one_model():
    population = build_population("mlp", (1, 8, 8), 10, seeds=[0, 1, 2])
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    scales = torch.tensor([100.0, 1.0, 1e-3])  # member 0 far above the limit, member 2 far below
    outputs = population(x)
    losses = torch.stack([torch.nn.functional.cross_entropy(outputs[k], y) for k in range(3)])
    (losses * scales).sum().backward()
    before = [param.grad.clone() for param in population.params]
    clip_members(population.params, 0.5)
    norms = []
    for k in range(3):  # member k alone, as one model's parameters, clipped by torch
        params = [torch.nn.Parameter(torch.zeros_like(grad[k])) for grad in before]
        for param, grad in zip(params, before):
            param.grad = grad[k].clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, 0.5)))
        for param, clipped in zip(params, population.params):
            torch.testing.assert_close(clipped.grad[k], param.grad, rtol=1e-6, atol=0)
        member_norm = torch.linalg.vector_norm(torch.stack([p.grad[k].norm() for p in population.params]))
        assert float(member_norm) == pytest.approx(min(norms[k], 0.5), rel=1e-4)
    assert norms[0] > 5 and norms[2] < 0.5  # member 0 was cut to 0.5, member 2 left as it was


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits")


def test_a_clipped_population_equals_single_runs_clipped_by_torch(digits):
    specs = [ScheduleSpec("cosine", lr, optimizer=dict(LM_OPTIMIZER)) for lr in (0.003, 0.02)]
    specs.append(ScheduleSpec("cosine", 0.1, optimizer={"name": "sgd", "momentum": 0.9}))  # its own stacked group
    seeds = [0, 1, 2]
    population = train_population(specs, "mlp", digits, 2, 64, seeds, data_seed=5, metric="loss", grad_clip=0.25)
    unclipped = train_population(specs, "mlp", digits, 2, 64, seeds, data_seed=5, metric="loss")
    for spec, seed, member, free in zip(specs, seeds, population, unclipped):
        single = train_trial(spec, "mlp", digits, 2, 64, seed, metric="loss", data_seed=5, grad_clip=0.25)
        assert member.status == single.status == "complete"
        torch.testing.assert_close(member.val_losses, single.val_losses, rtol=0, atol=1e-4)
        assert abs(member.val_losses[-1] - free.val_losses[-1]) > 1e-3  # the clip was in effect


@pytest.mark.parametrize("changes, words", [
    ({"dataset": "mnist", "model": "mlp", "steps": 100}, "steps is for text datasets"),
    ({"eval_every": 3}, "steps = 4 must be a multiple of eval_every = 3"),
    ({"steps": None}, "dataset 'fortunes' is text: give its length in optimizer steps"),
    ({"model": "mlp"}, "model 'mlp' cannot train on dataset 'fortunes'"),
    ({"grad_clip": 0.0}, "grad_clip must be a positive gradient norm"),
])
def test_bad_length_settings_are_refused_in_one_sentence(changes, words):
    with pytest.raises(StudyError, match=words):
        tiny_lm_study(**changes)


def test_a_study_file_giving_epochs_for_text_is_refused(tmp_path):
    path = tmp_path / "lm.toml"
    path.write_text('name = "lm"\ndataset = "fortunes"\nmodel = "transformer"\nepochs = 3\n', encoding="utf-8")
    with pytest.raises(StudyError, match=r"dataset 'fortunes' is text: .*not epochs$"):
        load_study(path)


@pytest.mark.parametrize("flags, words", [
    (["--dataset", "mnist", "--steps", "100"], "steps is for text datasets"),
    (["--dataset", "fortunes", "--epochs", "3"], "dataset 'fortunes' is text: give its length in optimizer steps"),
    (["--dataset", "fortunes", "--target-epochs", "9"], "not target_epochs"),
    (["--dataset", "fortunes", "--steps", "120"], "steps = 120 must be a multiple of eval_every = 50"),
])
def test_cli_refuses_steps_on_images_and_epochs_on_text_with_exit_2(tmp_path, monkeypatch, capsys, flags, words):
    from autolr.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["autolr", "search", *flags])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "reports").exists()
