"""Several local worker processes on one study: every trial recorded exactly once, none lost."""

from __future__ import annotations

import json

import optuna
import pytest

from autolr.backends.optuna.engine import OWNER_KEY
from autolr.backends.optuna.storage import journal_url, open_storage
from autolr.study.config import StudyConfig
from autolr.study.run import run_study


@pytest.mark.slow
def test_two_workers_share_one_journal_study_and_record_each_trial_once(tmp_path):
    config = StudyConfig(name="workers", dataset="digits", epochs=2, trials=10, population=2, device="cpu",
                         families=("constant", "cosine", "step", "onecycle", "exponential"), pruner="none",
                         rescore_top=1, rescore_seeds=2, baseline_lrs=1, schedule_free=False)
    run = run_study(config, out=tmp_path, workers=2)
    run_dir = tmp_path / "workers"
    assert (run_dir / "study.log").is_file() and not (run_dir / "study.db").exists()  # journal, not SQLite
    assert run.storage_url == journal_url(run_dir / "study.log")
    trials = run.record.trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert 10 <= len(trials) <= 11  # the budget is re-read before each ask: at most one extra per other worker
    # each trial ran to its end: complete after both epochs, or stopped as diverged with its reason (TPE may
    # pick an LR near the top of the range); none left running, failed or interrupted
    ends = [(t.number, t.state, t.epochs_run, len(t.val_curve), t.error) for t in trials]
    assert all(state == "complete" and run == curve == 2 or state == "diverged" and error
               for _, state, run, curve, error in ends), ends
    assert sum(state == "complete" for _, state, *_ in ends) >= 8, ends
    specs = [json.dumps(t.spec, sort_keys=True) for t in trials]
    assert len(set(specs)) == len(specs)  # no configuration trained twice
    assert sorted(t.baseline for t in trials if t.baseline) == ["constant#1", "cosine#1", "linear#1", "onecycle#1"]
    owners = {tuple(t.user_attrs[OWNER_KEY].values())
              for t in optuna.load_study(study_name="workers", storage=open_storage(run.storage_url)).trials}
    assert len(owners) == 2  # both processes trained trials
