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
def test_api_example_runs_and_exports_a_loadable_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(readme_example("api"))
    namespace = runpy.run_path(str(script))

    result = namespace["result"]
    frame = result.to_dataframe()
    assert len(frame) == 16
    assert set(frame["family"]) <= {"constant", "step", "cosine", "onecycle"}
    assert result.best_value == frame["value"].max()
    # The spec on disk is the best one and carries the LR the range test's interval allows.
    saved = json.loads((tmp_path / "best_schedule.json").read_text())
    low, high = namespace["found"].interval
    assert saved["family"] == result.best_spec.family
    assert low <= saved["lr"] <= high
    assert (tmp_path / "reports" / "digits" / "index.html").is_file()
    # A rerun resumes: the stored trials are kept, none is added.
    rerun = namespace["autolr"].search(
        namespace["objective"], space=namespace["space"], n_trials=16, epochs=10,
        storage="sqlite:///digits-study.db", study_name="digits",
    )
    assert rerun.to_dataframe()["value"].equals(frame["value"])  # NaN (pruned) compares equal here


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
def test_module_population_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "module_example.py"
    script.write_text(readme_example("module"))
    namespace = runpy.run_path(str(script))
    assert [member.status for member in namespace["members"]] == ["complete"] * 3
    assert max(member.final_score for member in namespace["members"]) > 0.8
    assert len(namespace["result"].to_dataframe()) == 8 and namespace["result"].best_value > 0.8
