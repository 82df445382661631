"""The Ray Tune backend on a real local multi-node Ray cluster (CPU only; GPUs are declared).

One cluster serves the whole module: a head and a worker node, each declaring one GPU
and six CPUs, so with 0.25 GPU and 1 CPU per trial the GPU is what limits a node to four
trials at once. Placement is checked from what Ray told each trial (node id, assigned
resources), never from timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

ray = pytest.importorskip("ray")

from ray import tune  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from autolr.backends.ray.backend import RayOptions, job_trainable, run_ray_search  # noqa: E402
from autolr.backends.ray.record import MEMBER_STATES_KEY, read_ray_record  # noqa: E402
from autolr.backends.ray.trainable import NODE_KEY  # noqa: E402
from autolr.data import load_splits  # noqa: E402
from autolr.jobs.builtin import BuiltinJob  # noqa: E402
from autolr.study.config import StudyConfig  # noqa: E402
from autolr.interrupts import termination_as_ctrl_c  # noqa: E402
from autolr.space.baselines import KIND_SCHEDULES  # noqa: E402
from autolr.space.search_space import SearchSpace  # noqa: E402

pytestmark = pytest.mark.ray

SPACE = SearchSpace(lr_low=0.01, lr_high=0.5, families=("constant", "step", "cosine", "onecycle"))
SUGGESTED_LR = 0.1
NODE_CPUS = 6


def study(trials: int, epochs: int = 2, batch_size: int = 64, pruner: str = "hyperband") -> StudyConfig:
    """A small study on scikit-learn's digits (its baselines are the space's, at the suggested LR)."""
    return StudyConfig(name="ray-test", dataset="digits", model="mlp", epochs=epochs, batch_size=batch_size,
                       seed=0, trials=trials, pruner=pruner, prune_after=0.25, device="cpu", baseline_lrs=0)


# Trials that last seconds (batches of 16 examples, never pruned), so they are still running when
# a node goes or the search is interrupted.
SLOW_STUDY = study(trials=6, epochs=3, batch_size=16, pruner="none")


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_DEDUP_LOGS"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": NODE_CPUS, "num_gpus": 1})
    worker = cluster.add_node(num_cpus=NODE_CPUS, num_gpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    cluster.first_worker = worker
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def splits():
    return load_splits("digits")


def search(config: StudyConfig, splits, experiment: Path, options: RayOptions, **keywords) -> Path:
    """Run the study ``config`` on the cluster with the baselines at the suggested LR."""
    definition = config.definition()
    return run_ray_search(definition, SPACE, SPACE.baselines(SUGGESTED_LR),
                          job_trainable(BuiltinJob(config, "cpu", splits), definition), experiment, options, **keywords)


def result_rows(experiment: Path) -> dict[str, list[dict]]:
    """Each Tune trial folder's reported results, as Tune wrote them."""
    return {
        folder.name: [json.loads(line) for line in (folder / "result.json").read_text().splitlines() if line]
        for folder in experiment.glob("trial_*") if (folder / "result.json").exists()
    }


def tune_trial_states(experiment: Path) -> dict[str, tuple[str, int]]:
    """Trial folder -> (status, number of failures) of every Tune trial, from Tune's experiment state."""
    state_file = sorted(experiment.glob("experiment_state-*.json"))[-1]
    return {json.loads(trial)["relative_logdir"]: (json.loads(trial)["status"], json.loads(runtime)["num_failures"])
            for trial, runtime in json.loads(state_file.read_text())["trial_data"]}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that overlap at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_quarter_gpus_put_at_most_four_trials_on_each_node_and_baselines_run_first(cluster, splits, tmp_path):
    baselines = SPACE.baselines(SUGGESTED_LR)
    # A fresh worker per trial: Tune reserves each pending trial's 0.25 GPU at once (8 fit the
    # cluster), packed onto a node until its GPU is full, so more than four trials need both nodes.
    experiment = search(study(trials=9), splits, tmp_path / "ray",
                        RayOptions(gpus_per_trial=0.25, cpus_per_trial=1, reuse_actors=False))

    rows = result_rows(experiment)
    assert len(rows) == 9
    for trial_rows in rows.values():
        assert trial_rows[0]["resources"] == {"CPU": 1.0, "GPU": 0.25}
    nodes = {trial_rows[0]["node_id"] for trial_rows in rows.values()}
    assert nodes == {cluster.head_node.node_id, cluster.first_worker.node_id}
    for node in nodes:
        spans = [(r[0]["started_at"], r[-1]["reported_at"]) for r in rows.values() if r[0]["node_id"] == node]
        assert 1 <= most_at_once(spans) <= 4

    record = read_ray_record(tmp_path)
    assert [trial.number for trial in record.trials] == list(range(9))
    by_baseline = {trial.baseline: trial for trial in record.trials if trial.baseline}
    assert set(by_baseline) == {baseline.name for baseline in baselines}
    for baseline in baselines:
        assert by_baseline[baseline.name].spec == baseline.spec.to_dict()
        assert by_baseline[baseline.name].number < len(baselines)  # evaluated first
    for trial in record.trials:
        assert trial.state in ("complete", "pruned")
        assert len(trial.val_curve) == trial.epochs_run
    complete = [trial for trial in record.trials if trial.state == "complete"]
    assert complete and all(0.5 < trial.value <= 1.0 and trial.epochs_run == 2 for trial in complete)


@ray.remote(num_gpus=1, num_cpus=0)
class GpuHolder:
    """Holds a whole declared GPU, so trials can only start on the other nodes."""

    def ready(self) -> bool:
        return True


class RemoveNodeAtTheFirstResult(tune.Callback):
    """Takes a node down, in Tune's driver loop, when the first trial result reaches it.

    A trial's ``report`` waits until the driver has taken its result, and the driver is
    busy here until the node is gone: so no trial has passed its first report, and every
    trial on the node dies mid-run, however loaded the machine is.
    """

    def __init__(self, remove: Callable[[], None]) -> None:
        self.remove: Callable[[], None] | None = remove

    def __getstate__(self) -> dict:
        return {"remove": None}  # Tune pickles its callbacks with the experiment

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.remove is not None:
            self.remove()
            self.remove = None


def test_trials_lost_with_a_removed_node_are_retried_and_recorded_once(cluster, splits, tmp_path):
    holders = [GpuHolder.remote() for _ in range(2)]  # fill the head's and the first worker's GPU
    ray.get([holder.ready.remote() for holder in holders])
    doomed = cluster.add_node(num_cpus=NODE_CPUS, num_gpus=1)
    cluster.wait_for_nodes()
    experiment = tmp_path / "ray"
    removed = threading.Event()

    def remove_the_doomed_node() -> None:
        cluster.remove_node(doomed, allow_graceful=False)
        for holder in holders:  # the GPUs of the remaining nodes come free for the retries
            ray.kill(holder)
        removed.set()

    # a cluster's options, as `--address` gives them: no actor reuse (a retry must not land on a dead node)
    search(SLOW_STUDY, splits, experiment, RayOptions(gpus_per_trial=0.25, cpus_per_trial=1, max_failures=3,
                                                      reuse_actors=False),
           callbacks=[RemoveNodeAtTheFirstResult(remove_the_doomed_node)])

    assert removed.is_set()
    states = tune_trial_states(experiment)
    assert len(states) == 6 and all(status == "TERMINATED" for status, _ in states.values())
    retried = [folder for folder, (_, failures) in states.items() if failures >= 1]
    assert retried  # trials died with the node and ran again
    rows = result_rows(experiment)
    for folder in retried:  # ...to the end, on a surviving node
        last = rows[folder][-1]
        assert MEMBER_STATES_KEY in last and last[NODE_KEY] != doomed.node_id
    record = read_ray_record(experiment)
    assert [trial.number for trial in record.trials] == list(range(6))
    assert all(trial.state == "complete" and trial.epochs_run == 3 for trial in record.trials)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_search_resumes_and_keeps_every_finished_trial(cluster, splits, tmp_path, stop):
    experiment = tmp_path / "ray"

    sent = []

    def interrupt_after_two_finished_trials(progress) -> None:
        if progress.finished >= 2 and not sent:  # two trials may finish in one update: 1 -> 3
            sent.append(True)
            os.kill(os.getpid(), stop)  # Tune saves the experiment and ends the run

    with pytest.raises(KeyboardInterrupt), termination_as_ctrl_c():  # as `autolr search` runs it
        search(SLOW_STUDY, splits, experiment, RayOptions(gpus_per_trial=0.25),
               on_progress=interrupt_after_two_finished_trials)
    before = read_ray_record(experiment)
    kept = {trial.number: trial for trial in before.trials if trial.state == "complete"}
    assert 2 <= len(kept) < 6
    assert {trial.state for trial in before.trials} == {"complete", "interrupted"}

    search(SLOW_STUDY, splits, experiment, RayOptions(gpus_per_trial=0.25))
    after = {trial.number: trial for trial in read_ray_record(experiment).trials}
    assert sorted(after) == list(range(6))
    assert all(trial.state == "complete" for trial in after.values())
    for number, trial in kept.items():
        assert after[number] == trial  # finished trials were kept, not trained again


def test_smoke_study_gives_the_same_files_and_baseline_scores_with_ray_as_with_optuna(cluster, tmp_path):
    from autolr.schedule.spec import load_spec
    from autolr.study.config import load_study
    from autolr.pipeline.run import run_study

    root = Path(__file__).parent.parent
    completed = subprocess.run(
        [sys.executable, "-m", "autolr", "search", "--study", "studies/smoke.toml", "--backend", "ray",
         "--address", cluster.address, "--gpus-per-trial", "0.25", "--out", str(tmp_path / "ray-run"), "--json",
         "--threads", "1"],  # the same threads in both runs: their range tests agree to the last bit
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    printed = json.loads(completed.stdout)
    optuna_run = run_study(load_study(root / "studies/smoke.toml").replace(threads=1), out=tmp_path / "optuna-run")

    ray_folder, optuna_folder = tmp_path / "ray-run/smoke", optuna_run.run_dir
    for name in ("index.html", "trials.csv", "best_schedule.json"):
        assert (ray_folder / name).stat().st_size > 0 and (optuna_folder / name).stat().st_size > 0
    exportable = set(load_study(root / "studies/smoke.toml").families) | {family for family, _ in KIND_SCHEDULES.values()}
    assert load_spec(printed["best_schedule"]).family in exportable  # searched, or a tuned baseline's
    assert 0.8 < printed["best_score"] <= 1.0

    ray_record = read_ray_record(ray_folder)
    assert len(ray_record.trials) == len(optuna_run.record.trials) == 8
    assert ray_record.range_test == optuna_run.record.range_test
    assert {r.baseline for r in ray_record.rescored if r.baseline} == {"constant", "cosine", "onecycle", "linear"}
    ray_baselines = {t.baseline: t for t in ray_record.trials if t.baseline}
    optuna_baselines = {t.baseline: t for t in optuna_run.record.trials if t.baseline}
    assert set(ray_baselines) == set(optuna_baselines) == {"constant#1", "cosine#1", "onecycle#1", "linear#1"}
    for name, trial in ray_baselines.items():
        assert trial.spec == optuna_baselines[name].spec
        shared_epochs = min(len(trial.val_curve), len(optuna_baselines[name].val_curve))
        assert shared_epochs >= 1  # the same population of baselines trains to the same scores
        assert trial.val_curve[:shared_epochs] == pytest.approx(optuna_baselines[name].val_curve[:shared_epochs])

    rebuilt = subprocess.run([sys.executable, "-m", "autolr", "report", str(ray_folder / "ray"),
                              "--out", str(tmp_path / "rebuilt")], cwd=root, capture_output=True, text=True)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert (tmp_path / "rebuilt/trials.csv").read_text() == (ray_folder / "trials.csv").read_text()


def test_the_search_api_runs_a_users_objective_as_ray_trials(cluster, tmp_path):
    import autolr

    target = 0.2  # the objective is best when the final LR is closest to this

    def objective(schedule, trial) -> float:
        total_steps = 10
        final_lr = schedule.lr_at(total_steps - 1, total_steps)
        for epoch in range(3):
            trial.report(-abs(schedule.lr_at(epoch * 3, total_steps) - target), epoch)
        return -abs(final_lr - target)

    space = SearchSpace(lr_low=0.01, lr_high=1.0, families=("constant", "cosine", "step"))
    result = autolr.search(objective, space=space, n_trials=8, epochs=3, pruner="none", backend="ray",
                           storage=str(tmp_path), baseline_lrs=1, rescore_top=2, rescore_seeds=2)
    assert Path(result.storage_url) == tmp_path / "autolr" / "ray"
    trials = result.record.trials
    assert [trial.number for trial in trials] == list(range(8))
    # one rung per standard kind (the objective builds no optimizer: no schedule-free rung)
    assert {trial.baseline for trial in trials if trial.baseline} == {"constant#1", "cosine#1", "onecycle#1",
                                                                      "linear#1"}
    constant = next(trial for trial in trials if trial.baseline == "constant#1")
    lr = constant.spec["lr"]
    assert constant.state == "complete" and constant.value == pytest.approx(-abs(lr - target))  # held to the end
    assert constant.val_curve == pytest.approx([-abs(lr - target)] * 3)
    assert sum(trial.state == "complete" for trial in trials) == 8  # pruner "none": Tune's FIFO stops nothing
    # the same pipeline as on Optuna: re-scored on fresh seeds (2 searched + 4 baseline kinds), a verdict
    assert len(result.record.rescored) == 6 and result.verdict.outcome in ("gain", "no gain")
    assert result.best_spec.lr == result.record.rescored[result.verdict.exported].spec["lr"]
