"""Optuna's own tools read an autolr study by name: the metric is named, the key trial attributes are plain values."""

import io
import json
import wsgiref.util

import optuna
import pytest

import autolr
from autolr.backends.optuna.storage import sqlite_url
from autolr.study.definition import SearchDefinition
from quadratic_objective import quadratic_objective

EPOCHS = 3


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[str, autolr.SearchResult]:
    """A small search stored in SQLite, its score named ``val_neg_loss``."""
    url = sqlite_url(tmp_path_factory.mktemp("dashboard") / "study.db")
    space = autolr.SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant", "cosine", "step"))
    result = autolr.search(quadratic_objective(EPOCHS), space=space, n_trials=6, epochs=EPOCHS, storage=url,
                           study_name="quadratic", seed=0, metric_name="val_neg_loss", baseline_lrs=1,
                           rescore_seeds=0)
    return url, result


def test_the_metric_is_named_in_the_storage(stored):
    url, _ = stored
    study = optuna.load_study(study_name="quadratic", storage=url)
    assert study.metric_names == ["val_neg_loss"]
    frame = study.trials_dataframe(multi_index=True)
    assert ("value", "val_neg_loss") in frame.columns  # pandas column of the score, by name


def test_family_and_lr_are_plain_trial_attributes_equal_to_the_spec(stored):
    url, result = stored
    trials = optuna.load_study(study_name="quadratic", storage=url).get_trials()
    assert len(trials) == 6
    for trial in trials:
        spec = trial.user_attrs["autolr.schedule.spec"]
        assert trial.user_attrs["autolr.family"] == spec["family"] == trial.params.get("family", spec["family"])
        assert trial.user_attrs["autolr.lr"] == spec["lr"]
        assert isinstance(trial.user_attrs["autolr.lr"], float)
    # the baseline ladders' rungs (fixed specs: no sampled parameters), then two sampled trials
    assert [t.user_attrs["autolr.family"] for t in trials[:4]] == ["constant", "cosine", "onecycle", "linear"]
    assert all(not t.params for t in trials[:4]) and all(t.params["family"] for t in trials[4:])


def test_a_study_run_names_its_metric_after_the_study_metric(tmp_path):
    """The command line's studies: val_accuracy (or val_loss), set when the study is first claimed."""
    from autolr.backends.optuna.engine import OptunaEngine

    url = sqlite_url(tmp_path / "study.db")
    engine = OptunaEngine(url, SearchDefinition(name="named", direction="minimize", trials=1, metric_name="val_loss"))
    assert optuna.load_study(study_name="named", storage=url).metric_names is None  # opening writes no name
    engine.claim({"metric": "loss"}, identity_keys=("metric",))
    assert optuna.load_study(study_name="named", storage=url).metric_names == ["val_loss"]


def test_optuna_dashboard_shows_the_metric_name_and_sortable_attributes(stored):
    dashboard = pytest.importorskip("optuna_dashboard")
    url, _ = stored
    storage = optuna.storages.RDBStorage(url)
    study_id = storage.get_study_id_from_name("quadratic")
    app = dashboard.wsgi(storage)
    environ: dict = {"PATH_INFO": f"/api/studies/{study_id}", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    statuses = []
    body = b"".join(app(environ, lambda status, headers, *rest: statuses.append(status)))
    assert statuses == ["200 OK"], body[:200]
    detail = json.loads(body)
    assert detail["objective_names"] == ["val_neg_loss"]
    sortable = {attr["key"]: attr["sortable"] for attr in detail["union_user_attrs"]}
    assert sortable["autolr.lr"] is True and "autolr.family" in sortable
    shown = {attr["key"]: attr["value"] for attr in detail["trials"][0]["user_attrs"]}
    assert shown["autolr.family"] in ("constant", "cosine", "step") and float(shown["autolr.lr"]) > 0


def test_an_empty_metric_name_is_one_sentence():
    space = autolr.SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant",))
    with pytest.raises(autolr.StudyError, match="metric_name must be a non-empty name"):
        autolr.search(quadratic_objective(EPOCHS), space=space, n_trials=1, metric_name=" ")
