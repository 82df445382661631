"""autolr.search with a user objective: pruning, ranking, baselines, resume, dedupe, failures."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import optuna
import pytest

from autolr.backends.optuna.engine import DUPLICATE, read_study_record
from autolr.schedule.spec import load_spec as autolr_load
from autolr.study.verdict import mean as mean_of
from autolr.errors import StudyError
from autolr.study.records import TRIAL_STATUS_KEY
from autolr.search import TrialPruned, search
from autolr.space.search_space import SearchSpace

EPOCHS = 10
SPACE = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine", "step"), warmup=False)


def simulated_training(schedule, trial) -> float:
    """A model whose loss shrinks by (1 - lr) per epoch: higher LR that decays is better."""
    loss = 1.0
    for epoch in range(EPOCHS):
        loss *= 1.0 - 0.9 * min(schedule.lr_at(epoch, EPOCHS), 1.0)
        trial.report(-loss, epoch)
    return -loss


def sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_readme_example_runs(tmp_path, monkeypatch):
    """The example in autolr.search's module docstring (and the README) runs as written."""
    module = importlib.import_module("autolr.search")  # the attribute autolr.search is the function
    source = re.search(r"Example \(runs as it is\)::\n\n(.*)", module.__doc__, re.S).group(1)
    code = "\n".join(line[4:] for line in source.splitlines())
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README example", "exec"), namespace)
    result = namespace["result"]
    assert (tmp_path / "reports/quadratic/best_schedule.json").is_file()
    assert result.verdict.outcome in ("gain", "no gain") and result.verdict.sentence
    assert autolr_load(tmp_path / "reports/quadratic/best_schedule.json") == result.best_spec
    assert result.best_value == pytest.approx(mean_of(result.record.rescored[result.verdict.exported].val_scores))


@pytest.mark.slow
def test_user_objective_is_pruned_ranked_and_gets_tuned_baseline_ladders(tmp_path):
    result = search(simulated_training, space=SPACE, n_trials=16, storage=sqlite(tmp_path), epochs=EPOCHS,
                    pruner="median", seed=1, baseline_lrs=2, rescore_seeds=2)
    frame = result.to_dataframe()
    assert len(frame) == 16
    # the objective builds no optimizer: the schedule-free baseline is left out, and the report says why
    rungs = frame.loc[frame["baseline"].notna(), "baseline"]
    assert sorted(rungs) == sorted(f"{kind}#{rung}" for kind in ("constant", "cosine", "onecycle", "linear")
                                   for rung in (1, 2))
    assert list(frame["number"][:8]) == list(range(8))  # the ladders run first
    assert result.record.meta["notes"] == [
        "The schedule-free and Prodigy baselines were left out: the objective builds its own optimizer "
        "(build it with schedule.build_optimizer(params) to include them)."]
    low, high = SPACE.lr_interval("constant")
    assert frame.loc[frame["baseline"] == "constant#1", "lr"].item() == pytest.approx(low)
    assert frame.loc[frame["baseline"] == "constant#2", "lr"].item() == pytest.approx(high)
    pruned = frame[frame["state"] == "pruned"]
    assert len(pruned) >= 1 and (pruned["epochs_run"] < EPOCHS).all()
    # re-scored: the top 3 searched and each kind's best rung, 2 fresh seeds each; the verdict names the export
    assert len(result.record.rescored) == 3 + 4
    assert all(r.seeds == [1001, 1002] for r in result.record.rescored)
    exported = result.record.rescored[result.verdict.exported]
    assert result.best_spec.family == exported.spec["family"] and result.best_spec.lr == exported.spec["lr"]
    # a pruned trial really was worse than the median of its family at the epoch it stopped
    record = read_study_record(sqlite(tmp_path))
    by_number = {t.number: t for t in record.trials}
    for number in pruned["number"]:
        trial = by_number[number]
        epoch = len(trial.val_curve) - 1
        others = [t.val_curve[epoch] for t in record.trials if t.state == "complete"
                  and t.spec["family"] == trial.spec["family"]]
        assert trial.val_curve[epoch] < sorted(others)[len(others) // 2] or not others


def test_failing_objective_fails_one_trial_and_search_goes_on(tmp_path):
    def objective(schedule, trial):
        if trial.number == 2:
            raise RuntimeError("CUDA out of memory\nmore detail")
        if trial.number == 3:
            return float("nan")
        return simulated_training(schedule, trial)

    result = search(objective, space=SPACE, n_trials=6, pruner="none", seed=0, baseline_lrs=0, rescore_seeds=0)
    states = {t.number: (t.state, t.error) for t in result.record.trials}
    assert states[2] == ("failed", "RuntimeError: CUDA out of memory")
    assert states[3][0] == "diverged"
    assert sum(state == "complete" for state, _ in states.values()) == 4


@pytest.mark.slow
def test_rerun_resumes_keeps_finished_trials_and_never_repeats(tmp_path):
    storage = sqlite(tmp_path)
    first = search(simulated_training, space=SPACE, n_trials=8, storage=storage, epochs=EPOCHS,
                   sampler="random", seed=3, baseline_lrs=1, rescore_seeds=0)
    before = {t.number: (t.state, t.value, t.val_curve, t.spec) for t in first.record.trials}
    second = search(simulated_training, space=SPACE, n_trials=16, storage=storage, epochs=EPOCHS,
                    sampler="random", seed=3, baseline_lrs=1, rescore_seeds=0)
    after = {t.number: (t.state, t.value, t.val_curve, t.spec) for t in second.record.trials}
    assert len(after) == 16
    assert {number: after[number] for number in before} == before
    assert sum(t.baseline is not None for t in second.record.trials) == 4  # queued once
    keys = [json.dumps(t.spec, sort_keys=True) for t in second.record.trials]
    assert len(set(keys)) == len(keys)
    # the resumed sampler was re-seeded: it never even proposed a configuration it had tried
    study = optuna.load_study(study_name="autolr", storage=storage)
    assert not [t for t in study.trials if t.user_attrs.get(TRIAL_STATUS_KEY) == DUPLICATE]
    # rerunning the finished study trains nothing
    calls = []
    third = search(lambda spec, trial: calls.append(1) or 0.0, space=SPACE, n_trials=16, storage=storage,
                   epochs=EPOCHS, sampler="random", seed=3, baseline_lrs=1, rescore_seeds=0)
    assert calls == [] and len(third.record.trials) == 16


@pytest.mark.slow
def test_sampled_duplicate_is_skipped_not_trained(tmp_path):
    storage = sqlite(tmp_path)
    search(simulated_training, space=SPACE, n_trials=5, storage=storage, epochs=EPOCHS, seed=0, baseline_lrs=0,
           rescore_seeds=0)
    study = optuna.load_study(study_name="autolr", storage=storage)
    repeated = study.trials[4].params
    study.enqueue_trial(repeated)  # the next "sampled" configuration repeats trial 4
    trained = []

    def objective(schedule, trial):
        trained.append(dict(trial.params))
        return simulated_training(schedule, trial)

    result = search(objective, space=SPACE, n_trials=7, storage=storage, epochs=EPOCHS, seed=0, baseline_lrs=0,
                    rescore_seeds=0)
    assert repeated not in trained and len(trained) == 2
    assert len(result.record.trials) == 7
    study = optuna.load_study(study_name="autolr", storage=storage)
    assert [t.params for t in study.trials if t.user_attrs.get(TRIAL_STATUS_KEY) == DUPLICATE] == [repeated]


def test_conflicting_rerun_is_refused_and_leaves_the_study_untouched(tmp_path):
    storage = sqlite(tmp_path)
    search(simulated_training, space=SPACE, n_trials=4, storage=storage, epochs=EPOCHS, seed=0, baseline_lrs=0,
           rescore_seeds=2)
    before = read_study_record(storage)
    other = SearchSpace(lr_low=1e-3, lr_high=1.0, families=("constant", "cosine"), warmup=False)
    with pytest.raises(StudyError, match="was created with space"):
        search(simulated_training, space=other, n_trials=8, storage=storage, epochs=EPOCHS, seed=0, baseline_lrs=0,
               rescore_seeds=2)
    assert read_study_record(storage) == before


def test_trial_pruned_is_autolrs_own_signal_not_optunas():
    import optuna

    assert TrialPruned.__module__ == "autolr.trials" and issubclass(TrialPruned, Exception)
    assert not issubclass(TrialPruned, optuna.TrialPruned)


def test_study_on_a_real_postgresql_server_resumes_and_hides_the_password(postgres_url):
    first = search(simulated_training, space=SPACE, n_trials=4, storage=postgres_url, epochs=EPOCHS, seed=0,
                   baseline_lrs=0, rescore_seeds=0)
    second = search(simulated_training, space=SPACE, n_trials=6, storage=postgres_url, epochs=EPOCHS, seed=0,
                    baseline_lrs=0, rescore_seeds=0)
    assert second.record.trials[:4] == first.record.trials
    assert len(second.record.trials) == 6
    password = postgres_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    if password:
        assert password not in json.dumps(second.record.config)


@pytest.mark.slow
def test_interrupted_trial_is_kept_apart_and_run_again_on_resume(tmp_path):
    storage = sqlite(tmp_path)

    def stopped_by_ctrl_c(schedule, trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return simulated_training(schedule, trial)

    with pytest.raises(KeyboardInterrupt):
        search(stopped_by_ctrl_c, space=SPACE, n_trials=5, storage=storage, epochs=EPOCHS, seed=0, baseline_lrs=0,
               rescore_seeds=0)
    stopped = read_study_record(storage)
    assert [(t.number, t.state) for t in stopped.trials] == [(0, "complete"), (1, "complete"), (2, "interrupted")]
    resumed = search(simulated_training, space=SPACE, n_trials=5, storage=storage, epochs=EPOCHS, seed=0,
                     baseline_lrs=0, rescore_seeds=0)
    trials = {t.number: t for t in resumed.record.trials}
    assert trials[2].state == "interrupted" and trials[3].spec == trials[2].spec  # the retry comes first
    assert sum(t.state == "complete" for t in trials.values()) == 5


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "gp", "qmc"])
def test_every_sampler_searches_the_conditional_space(sampler):
    result = search(simulated_training, space=SPACE, n_trials=7, epochs=EPOCHS, sampler=sampler, pruner="none",
                    seed=0, baseline_lrs=0, rescore_seeds=0)
    specs = [json.dumps(t.spec, sort_keys=True) for t in result.record.trials]
    assert len(specs) == 7 == len(set(specs))
    assert all(t.state == "complete" for t in result.record.trials)
