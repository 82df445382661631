"""Study definitions: the shipped TOML files, validation with one sentence naming the field, overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import autolr
from autolr.errors import StudyError
from autolr.study.definition import SearchDefinition
from autolr.study.config import (
    IDENTITY_FIELDS, StudyConfig, default_study, load_study, packaged_study, packaged_study_names, study_from_dict,
)

REPO_STUDIES = Path(__file__).resolve().parent.parent / "studies"
VALID = {"name": "s", "dataset": "digits", "epochs": 2, "trials": 4, "baseline_lrs": 0}


def test_repository_studies_are_the_packaged_ones():
    assert packaged_study_names() == ["fashion-mnist", "fortunes", "mnist", "smoke"]
    for name in packaged_study_names():
        assert load_study(REPO_STUDIES / f"{name}.toml") == packaged_study(name)
        shipped = Path(autolr.__file__).parent / "studies" / f"{name}.toml"  # comments included: one text, not two
        assert (REPO_STUDIES / f"{name}.toml").read_text() == shipped.read_text()


def test_dataset_default_equals_its_study_file_and_other_datasets_borrow_mnist():
    assert default_study("mnist") == load_study(REPO_STUDIES / "mnist.toml")
    digits = default_study("digits")
    assert (digits.name, digits.dataset) == ("digits", "digits")
    assert digits.replace(name="mnist", dataset="mnist") == default_study("mnist")


def test_mnist_defaults_are_a_real_budget():
    mnist = packaged_study("mnist")
    assert mnist.sampler == "tpe" and mnist.pruner == "hyperband" and mnist.direction == "maximize"
    assert {"constant", "step", "cosine", "onecycle"} <= set(mnist.families)  # the baselines' families
    assert mnist.rescore_top >= 1 and mnist.rescore_seeds >= 2


@pytest.mark.parametrize("change, field", [
    ({"epochs": 0}, "epochs"),
    ({"trials": -3}, "trials"),
    ({"epochs": 2.5}, "epochs"),
    ({"dataset": "imagenet"}, "dataset"),
    ({"model": "resnet"}, "model"),
    ({"families": ["cosine", "sawtooth"]}, "family"),
    ({"families": []}, "families"),
    ({"sampler": "grid"}, "sampler"),
    ({"pruner": "patient"}, "pruner"),
    ({"backend": "dask"}, "backend"),
    ({"metric": "f1"}, "metric"),
    ({"prune_after": 1.0}, "prune_after"),
    ({"population": 0}, "population"),
    ({"device": "tpu"}, "device"),
    ({"name": "a/b"}, "name"),
    ({"learning_rate": 0.1}, "learning_rate"),
    ({"optimizer": {"name": "lion"}}, "optimizer"),
    ({"optimizer": {"name": "sgd", "momentun": 0.9}}, "momentun"),
    ({"rescore": {"top": 3, "runs": 2}}, "rescore"),
    ({"rescore": {"seeds": 1}}, "rescore_seeds must be 0 (no re-scoring) or at least 2"),
    ({"rescore": {"seeds": -1}}, "rescore_seeds"),
    ({"rescore": {"seeds": True}}, "rescore_seeds"),
])
def test_invalid_study_is_one_sentence_naming_the_field(change, field):
    with pytest.raises(StudyError) as raised:
        study_from_dict({**VALID, **change})
    message = str(raised.value)
    assert field in message and "\n" not in message


def test_missing_or_malformed_file_is_a_study_error(tmp_path):
    with pytest.raises(StudyError, match="cannot read study file"):
        load_study(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nepochs = [", encoding="utf-8")
    with pytest.raises(StudyError, match="not valid TOML"):
        load_study(bad)


def test_overrides_apply_and_are_validated():
    config = StudyConfig(**VALID)
    changed = config.replace(epochs=7, sampler="random", storage=None)
    assert (changed.epochs, changed.sampler, changed.storage) == (7, "random", None)
    with pytest.raises(StudyError, match="epochs"):
        config.replace(epochs=0)
    with pytest.raises(StudyError, match="unknown study field"):
        config.replace(colour="red")


@pytest.mark.parametrize("start, name, expected", [
    ({"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}, "adamw", {"name": "adamw"}),
    ({"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}, "adam",
     {"name": "adam", "weight_decay": 5e-4}),  # an L2 term in both
    ({"name": "adamw", "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.05}, "adam",
     {"name": "adam", "betas": [0.8, 0.99], "eps": 1e-6}),  # decoupled decay is another setting
    ({"name": "adam", "betas": [0.8, 0.99], "weight_decay": 1e-4}, "sgd", {"name": "sgd", "weight_decay": 1e-4}),
    ({"name": "sgd", "momentum": 0.5}, "sgd", {"name": "sgd", "momentum": 0.5}),
])
def test_another_optimizer_keeps_only_the_settings_that_mean_the_same(start, name, expected):
    config = StudyConfig(**{**VALID, "optimizer": start})
    assert config.with_optimizer(name).optimizer == expected
    assert config.with_optimizer(None) == config


def test_an_unknown_optimizer_name_is_one_sentence():
    with pytest.raises(StudyError, match="unknown optimizer 'rmsprop'; choose one of sgd, adam, adamw"):
        StudyConfig(**VALID).with_optimizer("rmsprop")


def test_identity_ignores_budget_storage_and_device_but_not_epochs():
    config = StudyConfig(**VALID)
    assert config.replace(trials=99, storage="sqlite:///x.db", device="cpu", population=3).identity() == config.identity()
    assert config.replace(epochs=3).identity() != config.identity()
    assert list(config.identity()) == list(IDENTITY_FIELDS)


def test_study_round_trips_through_its_toml_layout(tmp_path):
    import tomli_w

    config = packaged_study("smoke")
    data = {key: value for key, value in config.to_dict().items()
            if value is not None and key not in ("direction", "score_unit", "rescore_top", "rescore_seeds")}
    data["rescore"] = {"top": config.rescore_top, "seeds": config.rescore_seeds}
    path = tmp_path / "study.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert load_study(path) == config
    assert tomllib.loads(path.read_text())["families"] == list(config.families)


def test_a_built_in_study_always_re_scores_on_two_seeds_or_more():
    """A built-in study refuses 0 and 1 fresh seeds (no verdict without a paired interval); the Python
    API's definition takes 0 (re-scoring off) and refuses 1."""
    for seeds in (0, 1):
        with pytest.raises(StudyError, match="rescore_seeds must be"):
            StudyConfig(**VALID, rescore_seeds=seeds)
    assert StudyConfig(**VALID, rescore_seeds=2).definition().rescores
    assert not SearchDefinition(name="api", direction="maximize", trials=4, rescore_seeds=0).rescores
    with pytest.raises(StudyError, match="0 \\(no re-scoring\\) or at least 2"):
        SearchDefinition(name="api", direction="maximize", trials=4, rescore_seeds=1)

