"""ScheduleSpec: validation messages, files, and the closed forms at points known by hand."""

import json
import math
from pathlib import Path

import pytest

import autolr.schedule.spec
from autolr.errors import SpecError, UserError
from autolr.schedule.spec import FAMILIES, FAMILY_PARAMETERS, ScheduleSpec, describe_parameters, load_spec, steps_for


def spec_dict(**changes) -> dict:
    data = {"autolr_spec": 1, "family": "cosine", "lr": 0.1}
    data.update(changes)
    return data


# (the dict given to from_dict, the exact message)
INVALID = [
    ([1, 2], "a spec must be a table of keys to values, got [1, 2]"),
    ({"family": "cosine", "lr": 0.1}, "autolr_spec is missing (a spec starts with autolr_spec: 1)"),
    (spec_dict(autolr_spec=2), "autolr_spec must be 1, got 2"),
    (spec_dict(autolr_spec="1"), 'autolr_spec must be 1, got "1"'),
    (spec_dict(schedule="cosine"), '"schedule" is not a spec key (expected autolr_spec, family, lr, params, '
                                   'warmup, optimizer, provenance)'),
    ({"autolr_spec": 1, "lr": 0.1}, "family is missing"),
    ({"autolr_spec": 1, "family": "cosine"}, "lr is missing"),
    (spec_dict(family="Cosine"), 'family must be one of ' + ", ".join(FAMILIES) + ', got "Cosine"'),
    (spec_dict(lr=-0.1), "lr must be in (0, 1000], got -0.1"),
    (spec_dict(lr=0), "lr must be in (0, 1000], got 0"),
    (spec_dict(lr="1e-3"), 'lr must be a number in (0, 1000], got "1e-3"'),
    (spec_dict(lr=True), "lr must be a number in (0, 1000], got true"),
    (spec_dict(lr=float("inf")), "lr must be a number in (0, 1000], got Infinity"),
    (spec_dict(params=[1]), "params must be a table of keys to values, got [1]"),
    (spec_dict(params={"T_max": 10}), "params.T_max is not a parameter of cosine (its parameters: min_factor)"),
    (spec_dict(family="constant", params={"gamma": 0.1}),
     "params.gamma is not a parameter of constant (its parameters: none)"),
    (spec_dict(family="step", params={"gamma": 1.5}), "params.gamma must be in (0, 1], got 1.5"),
    (spec_dict(family="step", params={"gamma": 0}), "params.gamma must be in (0, 1], got 0"),
    (spec_dict(family="step", params={"step_size": 0}), "params.step_size must be in (0, 1], got 0"),
    (spec_dict(family="multistep", params={"milestones": [0.5, 0.3]}),
     "params.milestones must be a non-empty list of increasing fractions in (0, 1), got [0.5, 0.3]"),
    (spec_dict(family="multistep", params={"milestones": [0.5, 0.5]}),
     "params.milestones must be a non-empty list of increasing fractions in (0, 1), got [0.5, 0.5]"),
    (spec_dict(family="multistep", params={"milestones": []}),
     "params.milestones must be a non-empty list of increasing fractions in (0, 1), got []"),
    (spec_dict(family="multistep", params={"milestones": [0.5, 1.0]}),
     "params.milestones must be a non-empty list of increasing fractions in (0, 1), got [0.5, 1.0]"),
    (spec_dict(family="exponential", params={"final_factor": 0}), "params.final_factor must be in (0, 1], got 0"),
    (spec_dict(family="inverse_time", params={"decay_rate": 0}), "params.decay_rate must be > 0, got 0"),
    (spec_dict(family="polynomial", params={"power": -1}), "params.power must be > 0, got -1"),
    (spec_dict(family="linear", params={"start_factor": 0}), "params.start_factor must be in (0, 1], got 0"),
    (spec_dict(family="linear", params={"end_factor": 1.2}), "params.end_factor must be in [0, 1], got 1.2"),
    (spec_dict(family="linear", params={"duration": 0}), "params.duration must be in (0, 1], got 0"),
    (spec_dict(params={"min_factor": 1.0}), "params.min_factor must be in [0, 1), got 1.0"),
    (spec_dict(family="cosine_restarts", params={"cycle_mult": 0}), "params.cycle_mult must be an integer in [1, 1000], got 0"),
    (spec_dict(family="cosine_restarts", params={"cycle_mult": 1.5}),
     "params.cycle_mult must be an integer in [1, 1000], got 1.5"),
    (spec_dict(family="cosine_restarts", params={"first_cycle": 2}), "params.first_cycle must be in (0, 1], got 2"),
    (spec_dict(family="cyclic", params={"base_factor": 1}), "params.base_factor must be in (0, 1), got 1"),
    (spec_dict(family="cyclic", params={"step_size_up": 0.6}), "params.step_size_up must be in (0, 0.5], got 0.6"),
    (spec_dict(family="cyclic", params={"mode": "sine"}),
     'params.mode must be one of triangular, triangular2, exp_range, got "sine"'),
    (spec_dict(family="cyclic", params={"final_scale": 0}), "params.final_scale must be in (0, 1], got 0"),
    (spec_dict(family="cyclic", params={"cycle_momentum": "yes"}), 'params.cycle_momentum must be true or false, got "yes"'),
    (spec_dict(family="onecycle", params={"pct_start": 1.0}), "params.pct_start must be in (0, 1), got 1.0"),
    (spec_dict(family="onecycle", params={"pct_start": 0}), "params.pct_start must be in (0, 1), got 0"),
    (spec_dict(family="onecycle", params={"anneal_strategy": "cosine"}),
     'params.anneal_strategy must be one of cos, linear, got "cosine"'),
    (spec_dict(family="onecycle", params={"div_factor": 0.5}), "params.div_factor must be >= 1, got 0.5"),
    (spec_dict(family="onecycle", params={"final_div_factor": 0}), "params.final_div_factor must be >= 1, got 0"),
    (spec_dict(family="onecycle", params={"three_phase": 1}), "params.three_phase must be true or false, got 1"),
    (spec_dict(family="onecycle", params={"max_momentum": 1.0}), "params.max_momentum must be in [0, 1), got 1.0"),
    (spec_dict(family="onecycle", params={"base_momentum": 0.99}),
     "params.base_momentum must be <= params.max_momentum (0.95), got 0.99"),
    (spec_dict(family="plateau", params={"factor": 1.0}), "params.factor must be in (0, 1), got 1.0"),
    (spec_dict(family="plateau", params={"patience": -1}), "params.patience must be an integer >= 0, got -1"),
    (spec_dict(family="plateau", params={"threshold": -0.1}), "params.threshold must be >= 0, got -0.1"),
    (spec_dict(family="plateau", params={"threshold_mode": "relative"}),
     'params.threshold_mode must be one of rel, abs, got "relative"'),
    (spec_dict(family="plateau", params={"cooldown": True}), "params.cooldown must be an integer >= 0, got true"),
    (spec_dict(family="plateau", params={"mode": "maximize"}), 'params.mode must be one of min, max, got "maximize"'),
    (spec_dict(family="inverse_sqrt", params={"timescale": 0}), "params.timescale must be in (0, 1], got 0"),
    (spec_dict(family="wsd", params={"decay_fraction": 1.5}), "params.decay_fraction must be in (0, 1], got 1.5"),
    (spec_dict(family="wsd", params={"decay_shape": "exp"}), 'params.decay_shape must be one of linear, cosine, sqrt, got "exp"'),
    (spec_dict(warmup=0.1), "warmup must be a table of keys to values, got 0.1"),
    (spec_dict(warmup={"start_factor": 0.1}), "warmup.fraction is missing"),
    (spec_dict(warmup={"fraction": 1.0}), "warmup.fraction must be in [0, 1), got 1.0"),
    (spec_dict(warmup={"fraction": 0.1, "start_factor": 1.0}), "warmup.start_factor must be in [0, 1), got 1.0"),
    (spec_dict(warmup={"fraction": 0.1, "steps": 100}),
     "warmup.steps is not a parameter of warmup (its parameters: fraction, start_factor)"),
    (spec_dict(optimizer={"momentum": 0.9}), "optimizer.name is missing"),
    (spec_dict(optimizer={"name": "rmsprop"}), 'optimizer.name must be one of sgd, adam, adamw, schedulefree_sgd, '
                                                'schedulefree_adamw, prodigy, got "rmsprop"'),
    (spec_dict(optimizer={"name": "sgd", "momentum": 1.0}), "optimizer.momentum must be in [0, 1), got 1.0"),
    (spec_dict(optimizer={"name": "sgd", "betas": [0.9, 0.99]}),
     "optimizer.betas is not a parameter of sgd (its parameters: momentum, nesterov, weight_decay)"),
    (spec_dict(optimizer={"name": "sgd", "nesterov": True}), "optimizer.nesterov needs optimizer.momentum > 0, got momentum 0"),
    (spec_dict(optimizer={"name": "adam", "betas": [0.9]}), "optimizer.betas must be two numbers in [0, 1), got [0.9]"),
    (spec_dict(optimizer={"name": "adam", "eps": 0}), "optimizer.eps must be > 0, got 0"),
    (spec_dict(optimizer={"name": "adamw", "weight_decay": -1}), "optimizer.weight_decay must be >= 0, got -1"),
    (spec_dict(provenance="mnist"), 'provenance must be a table of keys to values, got "mnist"'),
    (spec_dict(provenance={"score": None}),
     "provenance.score must be a string, finite number, boolean, list or table, got null"),
    (spec_dict(provenance={"seeds": [1, float("nan")]}),
     "provenance.seeds[1] must be a string, finite number, boolean, list or table, got NaN"),
]


@pytest.mark.parametrize(("data", "message"), INVALID, ids=[message[:40] for _, message in INVALID])
def test_invalid_field_is_named_in_one_sentence(data, message):
    with pytest.raises(SpecError) as error:
        ScheduleSpec.from_dict(data)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_minimal_spec_is_valid_and_filled_with_defaults():
    spec = ScheduleSpec.from_dict({"autolr_spec": 1, "family": "cosine", "lr": 0.1})
    assert spec == ScheduleSpec("cosine", 0.1, {"min_factor": 0.0})
    assert spec.to_dict() == {"autolr_spec": 1, "family": "cosine", "lr": 0.1, "params": {"min_factor": 0.0}}
    for family in FAMILIES:  # every family works on its defaults
        defaults = ScheduleSpec(family, 0.1)
        assert defaults.params == {p.name: p.default for p in FAMILY_PARAMETERS[family]}
        assert math.isfinite(defaults.lr_at(500, 1000))


def test_optimizer_names_are_case_insensitive():
    assert ScheduleSpec("cosine", 0.1, optimizer={"name": "AdamW"}).optimizer["name"] == "adamw"


def test_integers_are_accepted_where_numbers_are_meant():
    spec = ScheduleSpec.from_dict(spec_dict(lr=1, family="step", params={"gamma": 1, "step_size": 1}))
    assert spec.lr == 1.0 and isinstance(spec.lr, float) and spec.params["gamma"] == 1.0


def test_the_spec_reference_table_is_the_generated_reference():
    reference = (Path(__file__).parent.parent / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    assert f"```\n{describe_parameters()}\n```" in reference


def test_steps_for():
    assert [steps_for(0.3, 10), steps_for(0.001, 10), steps_for(0.0, 10), steps_for(1.0, 7), steps_for(0.25, 10)] \
        == [3, 1, 0, 7, 2]  # 2.5 rounds half to even


# (spec, total_steps, {step: LR}) worked out by hand from the module's formulas
KNOWN_POINTS = [
    (ScheduleSpec("constant", 0.1), 100, {0: 0.1, 50: 0.1, 100: 0.1}),
    (ScheduleSpec("step", 1.0, {"step_size": 0.25, "gamma": 0.5}), 100, {0: 1.0, 24: 1.0, 25: 0.5, 99: 0.125, 100: 0.0625}),
    (ScheduleSpec("multistep", 1.0, {"milestones": [0.5, 0.9], "gamma": 0.1}), 10, {4: 1.0, 5: 0.1, 9: 0.01}),
    (ScheduleSpec("exponential", 1.0, {"final_factor": 0.01}), 100, {0: 1.0, 50: 0.1, 100: 0.01}),
    (ScheduleSpec("inverse_time", 1.0, {"decay_rate": 9.0}), 100, {0: 1.0, 50: 1 / 5.5, 100: 0.1}),
    (ScheduleSpec("polynomial", 1.0, {"power": 2.0}), 100, {0: 1.0, 50: 0.25, 100: 0.0}),
    (ScheduleSpec("linear", 1.0, {"start_factor": 1.0, "end_factor": 0.2, "duration": 0.5}), 100,
     {0: 1.0, 25: 0.6, 50: 0.2, 100: 0.2}),
    (ScheduleSpec("cosine", 1.0, {"min_factor": 0.1}), 100, {0: 1.0, 50: 0.55, 100: 0.1}),
    (ScheduleSpec("cosine_restarts", 1.0, {"first_cycle": 0.2, "cycle_mult": 2}), 140,
     {0: 1.0, 14: 0.5, 28: 1.0, 56: 0.5, 84: 1.0}),  # cycles of 28, 56, 112 steps
    (ScheduleSpec("cyclic", 1.0, {"base_factor": 0.2, "step_size_up": 0.1, "mode": "triangular2"}), 100,
     {0: 0.2, 5: 0.6, 10: 1.0, 20: 0.2, 30: 0.6, 50: 0.4}),
    (ScheduleSpec("cyclic", 1.0, {"base_factor": 0.5, "step_size_up": 0.5, "mode": "exp_range",
                                  "final_scale": 0.25}), 100, {50: 0.5 + 0.5 * 0.5}),
    (ScheduleSpec("onecycle", 1.0, {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0,
                                    "anneal_strategy": "linear"}), 101, {0: 0.1, 100: 0.001}),
    (ScheduleSpec("plateau", 0.3), 100, {0: 0.3, 100: 0.3}),
    (ScheduleSpec("inverse_sqrt", 1.0, {"timescale": 0.01}), 100, {0: 1.0, 3: 0.5, 100: 1 / math.sqrt(101)}),
    (ScheduleSpec("wsd", 1.0, {"decay_fraction": 0.2, "decay_shape": "linear", "min_factor": 0.1}), 100,
     {0: 1.0, 80: 1.0, 90: 0.55, 100: 0.1}),
    (ScheduleSpec("wsd", 1.0, {"decay_fraction": 0.2, "decay_shape": "cosine"}), 100, {90: 0.5, 95: 0.5 - 0.5 ** 1.5}),
    (ScheduleSpec("wsd", 1.0, {"decay_fraction": 0.2, "decay_shape": "sqrt"}), 100, {85: 0.5, 100: 0.0}),
    (ScheduleSpec("cosine", 1.0, warmup={"fraction": 0.1, "start_factor": 0.2}), 100,
     {0: 0.2, 5: 0.6, 10: 1.0, 55: 0.5, 100: 0.0}),  # cosine over the 90 steps after warmup
    (ScheduleSpec("step", 1.0, {"step_size": 0.5, "gamma": 0.5}, warmup={"fraction": 0.5}), 2,
     {0: 0.0, 1: 1.0, 2: 0.5}),  # a 2-step run keeps one step for the family
]


@pytest.mark.parametrize(("spec", "total_steps", "points"), KNOWN_POINTS, ids=[s.family for s, _, _ in KNOWN_POINTS])
def test_closed_form_at_known_points(spec, total_steps, points):
    for step, expected in points.items():
        assert spec.lr_at(step, total_steps) == pytest.approx(expected, rel=1e-12, abs=1e-15), step


def test_onecycle_reaches_its_peak_and_end():
    spec = ScheduleSpec("onecycle", 1.0, {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0})
    lrs = [spec.lr_at(step, 101) for step in range(101)]
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[100] == pytest.approx(0.1 / 100)
    assert spec.momentum_at(0, 101) == pytest.approx(0.95) and min(spec.momentum_at(s, 101) for s in range(101)) \
        == pytest.approx(0.85, rel=1e-3)
    assert ScheduleSpec("cosine", 1.0).momentum_at(3, 10) is None
    assert ScheduleSpec("onecycle", 1.0, {"cycle_momentum": False}).momentum_at(3, 10) is None


def test_past_the_end_the_lr_stays():
    spec = ScheduleSpec("cosine", 1.0, {"min_factor": 0.1})
    assert spec.lr_at(10_000, 100) == spec.lr_at(100, 100) == pytest.approx(0.1)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_keeps_torchs_last_value_after_its_last_step(strategy, three_phase):
    """torch's OneCycleLR ends at step total_steps - 1; the LR there must hold, never overshoot below 0."""
    spec = ScheduleSpec("onecycle", 0.006, {"anneal_strategy": strategy, "three_phase": three_phase})
    final = spec.lr_at(99, 100)
    assert final == pytest.approx(0.006 / 25 / 1e4)
    assert spec.lr_at(100, 100) == spec.lr_at(500, 100) == final
    assert spec.momentum_at(100, 100) == spec.momentum_at(99, 100)


def test_spec_transfers_across_run_lengths():
    spec = ScheduleSpec("multistep", 1.0, {"milestones": [0.5, 0.75]}, warmup={"fraction": 0.1})
    for total_steps in (40, 400, 4000):  # the same progress gives the same LR
        assert [spec.lr_at(round(p * total_steps), total_steps) for p in (0.05, 0.3, 0.6, 0.9)] == \
            pytest.approx([0.5, 1.0, 0.1, 0.01])


@pytest.mark.parametrize(("step", "total_steps", "message"), [
    (0, 0, "total_steps must be an integer >= 1, got 0"),
    (0, 10.5, "total_steps must be an integer >= 1, got 10.5"),
    (-1, 10, "step must be an integer >= 0, got -1"),
])
def test_bad_step_arguments(step, total_steps, message):
    with pytest.raises(UserError) as error:
        ScheduleSpec("cosine", 0.1).lr_at(step, total_steps)
    assert str(error.value) == message


FULL = ScheduleSpec("onecycle", 3e-3, {"pct_start": 0.2, "three_phase": True},
                    optimizer={"name": "adamw", "betas": [0.9, 0.95], "weight_decay": 0.1},
                    provenance={"study": "mnist-cosine", "dataset": "mnist", "model": "mlp",
                                "score": 0.9812, "trial": 17, "seeds": [0, 1, 2], "pruned": False})


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".toml"])
def test_save_and_load_by_extension(tmp_path, suffix):
    for spec in (FULL, ScheduleSpec("wsd", 0.1, warmup={"fraction": 0.05, "start_factor": 0.1}),
                 ScheduleSpec("multistep", 1e-5)):
        path = spec.save(tmp_path / f"spec{suffix}")
        assert load_spec(path) == spec


def test_yaml_reads_exponent_numbers_and_never_builds_objects(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("autolr_spec: 1\nfamily: step\nlr: 1e-3\nparams: {gamma: 5E-1}\n")
    spec = load_spec(path)
    assert (spec.lr, spec.params["gamma"]) == (1e-3, 0.5)
    path.write_text("autolr_spec: 1\nfamily: cosine\nlr: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_spec(path)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("spec.json", '{"autolr_spec": 1, "family": ', "spec.json is not valid JSON (Expecting value: line 1 column 30"),
    ("spec.toml", "autolr_spec = \n", "spec.toml is not valid TOML (Invalid value (at line 1, column 15))"),
    ("spec.yaml", "a: [1, 2\n", "spec.yaml is not valid YAML ("),
    ("spec.yaml", "- 1\n", "spec.yaml: a spec must be a table of keys to values, got [1]"),
    ("spec.json", json.dumps(spec_dict(lr=-1)), "spec.json: lr must be in (0, 1000], got -1"),
    ("spec.txt", "{}", "spec.txt must end in .json, .yaml, .yml or .toml to say its format"),
])
def test_bad_files_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(error.value).replace(str(tmp_path) + "/", "").startswith(message)
    assert "\n" not in str(error.value)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(SpecError, match=r"cannot read spec file .*nope\.json: No such file or directory"):
        load_spec(tmp_path / "nope.json")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match=r"cannot read spec file .*bin\.toml"):
        load_spec(tmp_path / "bin.toml")
    with pytest.raises(SpecError, match="must end in"):
        FULL.save(tmp_path / "spec.pkl")


def test_yaml_aliases_and_deep_nesting_are_refused(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text("autolr_spec: 1\nfamily: cosine\nlr: &peak 0.1\nprovenance: {lr: *peak}\n")
    with pytest.raises(SpecError, match=r"alias.* line 4"):
        load_spec(path)
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="deep.json is nested too deeply to be a spec"):
        load_spec(path)
    nested: dict = {"score": 1.0}
    for _ in range(16):
        nested = {"inner": nested}
    with pytest.raises(SpecError, match=r"provenance is nested too deeply \(more than 16 levels\)"):
        ScheduleSpec("cosine", 0.1, provenance=nested)
    ScheduleSpec("cosine", 0.1, provenance=nested["inner"])
