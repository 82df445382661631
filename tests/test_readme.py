"""The README's Python examples run as written: the API finds a schedule that beats a bad one, the
parameter-groups loop keeps its groups' ratio, the Lightning module steps the schedule per batch."""

import json
import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example(name: str) -> str:
    """The ```python block right after the `<!-- readme-example: NAME -->` marker."""
    match = re.search(rf"<!-- readme-example: {name} -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no example named {name}"
    return match.group(1)


@pytest.mark.slow
def test_api_example_runs_to_a_verdict_and_exports_a_loadable_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(readme_example("api"))
    namespace = runpy.run_path(str(script))

    result = namespace["result"]
    frame = result.to_dataframe()
    assert len(frame) == 40
    # 3 rungs of each tuned baseline kind, schedule-free included: the objective builds the schedule's optimizer
    assert sorted({name.partition("#")[0] for name in frame["baseline"].dropna()}) == [
        "constant", "cosine", "linear", "onecycle", "schedule_free"]
    verdict = result.verdict
    assert verdict.outcome in ("gain", "no gain") and verdict.sentence in capsys.readouterr().out
    exported = result.record.rescored[verdict.exported]
    assert len(exported.val_scores) == 5 and len(exported.test_scores) == 5  # validation and test, 5 fresh seeds
    assert (exported.baseline is None) == (verdict.outcome == "gain")  # Occam: a searched schedule only when it won
    saved = json.loads((tmp_path / "best_schedule.json").read_text())
    assert saved["family"] == result.best_spec.family and saved["lr"] == exported.spec["lr"]
    assert saved["provenance"]["verdict"] == verdict.outcome
    page = (tmp_path / "reports" / "digits" / "index.html").read_text()
    assert "Partial report" not in page and "MLP 64-64-10" in page and verdict.sentence.split(" (")[0] in page
    # A rerun resumes: the stored trials and the re-scoring are kept, nothing is trained again.
    calls = []
    rerun = namespace["autolr"].search(
        lambda schedule, trial: calls.append(trial) or 0.0, space=namespace["space"], n_trials=40, epochs=10,
        baseline_lrs=3, rescore_seeds=5, score_step=1 / 300, metric_name="val_accuracy",
        storage="sqlite:///digits-study.db", study_name="digits")
    assert calls == [] and rerun.verdict == verdict


def test_lightning_search_example_runs_a_real_trainer_to_a_verdict(tmp_path, monkeypatch, capsys):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(_written(tmp_path, "lightning-search")))
    result = namespace["result"]
    frame = result.to_dataframe()
    assert len(frame) == 12 and (frame["state"] == "complete").sum() >= 8
    # one rung per kind; schedule-free runs: the module builds the schedule's optimizer, the callback switches it
    assert sorted(frame["baseline"].dropna()) == ["constant#1", "cosine#1", "linear#1", "onecycle#1",
                                                  "schedule_free#1"]
    assert result.verdict.sentence in capsys.readouterr().out
    rescored = result.record.rescored
    schedule_free = next(r for r in rescored if r.baseline == "schedule_free")
    assert min(schedule_free.val_scores) > 0.3  # it trained (chance is 0.1)
    assert len(rescored) == 2 + 5  # in rounds: each trains 2 seeds, and those that can still win a third
    assert all(2 <= len(r.test_scores) == len(r.val_scores) <= 3 for r in rescored)
    assert all(0.2 < score <= 1.0 for r in rescored for score in r.test_scores)  # test accuracy from trainer.test (chance 0.1)
    assert (tmp_path / "reports" / "digits-lightning" / "index.html").is_file()


def test_parameter_groups_example_keeps_the_ratio_of_its_groups(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(_written(tmp_path, "parameter-groups")))
    spec, scheduler, batches = namespace["spec"], namespace["scheduler"], namespace["batches"]
    total_steps = namespace["epochs"] * batches
    assert scheduler.last_epoch == total_steps
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == namespace["epochs"]
    for epoch, line in enumerate(lines):  # after each epoch: the backbone at a tenth of the head, both on the curve
        head = spec.lr_at((epoch + 1) * batches, total_steps)
        assert f"LRs {[round(head / 10, 6), round(head, 6)]}" in line, line
    assert float(lines[-1].rsplit("loss ", 1)[1]) < 0.5  # it learnt (chance is 2.3)


def test_lightning_example_steps_the_schedule_per_batch(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(_written(tmp_path, "lightning")))
    trainer, spec = namespace["trainer"], namespace["spec"]
    total_steps = trainer.estimated_stepping_batches
    assert trainer.global_step == total_steps == 3 * 24
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == total_steps
    assert trainer.optimizers[0].param_groups[0]["lr"] == spec.lr_at(total_steps, total_steps)
    assert float(trainer.callback_metrics["val_loss"]) < 0.5  # chance is 2.3


def _written(folder: Path, name: str) -> Path:
    script = folder / f"{name}.py"
    script.write_text(readme_example(name))
    return script
@pytest.mark.slow
def test_module_population_example_runs_to_a_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "module_example.py"
    script.write_text(readme_example("module"))
    namespace = runpy.run_path(str(script))
    assert [member.status for member in namespace["members"]] == ["complete"] * 3
    assert max(member.final_score for member in namespace["members"]) > 0.8
    result = namespace["result"]
    assert len(result.to_dataframe()) == 16 and result.best_value > 0.8
    assert result.verdict.outcome in ("gain", "no gain") and result.verdict.sentence in capsys.readouterr().out
    assert len(result.record.rescored) == 3 + 5  # the top 3 searched and the best rung of 5 kinds
    assert (tmp_path / "reports" / "digits-module" / "index.html").is_file()
