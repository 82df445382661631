"""Fuzzing the spec loader (hypothesis): no input crashes it with anything but a UserError.

Random JSON-like data goes to ``ScheduleSpec.from_dict``, random and mutated file contents
to ``load_spec`` for each extension. Whatever is accepted must be a sane schedule: every
LR finite and within [0, lr], and the spec round-trips through dict, JSON, YAML and TOML.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autolr.errors import SpecError, UserError
from autolr.schedule.optimizers import OPTIMIZER_PARAMETERS
from autolr.schedule.export import to_python
from autolr.schedule.spec import (
    FAMILY_PARAMETERS, MAX_LR, TOP_LEVEL_KEYS, WARMUP_PARAMETERS, Parameter, ScheduleSpec, load_spec,
)

EXTENSIONS = (".json", ".yaml", ".yml", ".toml")
FORMAT_OF = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**6), max_value=10**6)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# numbers around the edges of every interval the spec uses (0, 0.5, 1) and beyond them
edge_numbers = (st.sampled_from([0, 0.0, 0.5, 1, 1.0, -1.0, 2, 5e-324, 1e-300, 1 - 1e-16, 1e3, 1e300, 1.7e308, -0.0])
                | st.floats(-2, 3))


def parameter_values(parameter: Parameter) -> st.SearchStrategy:
    """Values for one parameter: mostly of its kind near its interval, sometimes anything."""
    low = parameter.low if parameter.low is not None else 0.0
    inside = st.floats(low, parameter.high if parameter.high is not None else low + 100.0)
    if parameter.kind == "bool":
        typed = st.booleans()
    elif parameter.kind == "choice":
        typed = st.sampled_from(parameter.choices)
    elif parameter.kind == "int":
        typed = st.integers(-3, 50)
    elif parameter.kind in ("fractions", "pair"):
        typed = st.lists(inside | edge_numbers, min_size=0, max_size=4)
    else:
        typed = inside | edge_numbers
    return mostly(typed, json_values)


def mostly(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` four times in five, else ``rare``."""
    return st.integers(0, 4).flatmap(lambda pick: rare if pick == 0 else usual)


@st.composite
def section(draw: st.DrawFn, parameters: tuple[Parameter, ...]) -> dict:
    """A table with a random subset of ``parameters`` and, rarely, an unknown key."""
    chosen = draw(st.lists(st.sampled_from(parameters), unique_by=lambda p: p.name)) if parameters else []
    table = {parameter.name: draw(parameter_values(parameter)) for parameter in chosen}
    if draw(st.integers(0, 9)) == 0:
        table[draw(st.text(max_size=6))] = draw(json_values)
    return table


@st.composite
def spec_like(draw: st.DrawFn) -> dict:
    """A dict shaped like a spec, so the fuzzer reaches every family's checks."""
    family = draw(mostly(st.sampled_from(tuple(FAMILY_PARAMETERS)), st.text(max_size=8)))
    data = {
        "autolr_spec": draw(mostly(st.just(1), st.sampled_from([1.0, 2, True, "1", None]))),
        "family": family,
        "lr": draw(mostly(st.floats(1e-6, 10), edge_numbers | json_values)),
    }
    if draw(st.booleans()):
        data["params"] = draw(section(FAMILY_PARAMETERS.get(family, ())))
    if draw(st.integers(0, 2)) == 0:
        data["warmup"] = draw(section(WARMUP_PARAMETERS))
    if draw(st.integers(0, 2)) == 0:
        name = draw(st.sampled_from(tuple(OPTIMIZER_PARAMETERS)) | st.text(max_size=5))
        data["optimizer"] = {"name": name, **draw(section(OPTIMIZER_PARAMETERS.get(name, ())))}
    if draw(st.integers(0, 2)) == 0:
        data["provenance"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    if draw(st.integers(0, 9)) == 0:
        data.pop(draw(st.sampled_from(TOP_LEVEL_KEYS[:3])))
    return data


def check_accepted(spec: ScheduleSpec) -> None:
    """What any accepted spec must satisfy: LR at most MAX_LR, LRs (and momenta) finite and in [0, lr];
    lossless round trips."""
    assert 0 < spec.lr <= MAX_LR and math.isfinite(spec.first_lr())
    for total_steps in (1, 2, 7, 100):
        for step in sorted({0, 1, total_steps // 2, total_steps - 1, total_steps}):
            lr = spec.lr_at(step, total_steps)
            assert math.isfinite(lr) and 0.0 <= lr <= spec.lr * (1 + 1e-9), (step, total_steps, lr)
            momentum = spec.momentum_at(step, total_steps)
            assert momentum is None or math.isfinite(momentum), (step, total_steps, momentum)
    assert ScheduleSpec.from_dict(spec.to_dict()) == spec
    for file_format in ("json", "yaml", "toml"):
        assert ScheduleSpec.from_text(spec.to_text(file_format), file_format) == spec, file_format


def load_or_user_error(path: Path) -> ScheduleSpec | None:
    """Load ``path``; a UserError (SpecError) is a fine answer, anything else fails the test."""
    try:
        return load_spec(path)
    except UserError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), message
        return None


@FUZZ
@given(data=json_values | spec_like())
@example(data={"autolr_spec": 1, "family": "multistep", "lr": 0.1, "params": {"milestones": [0.7, 0.3]}})
@example(data={"autolr_spec": 1, "family": "onecycle", "lr": 0.1, "params": {"pct_start": 1.0}})
@example(data={"autolr_spec": 1, "family": "cosine_restarts", "lr": 0.1, "params": {"cycle_mult": 0}})
@example(data={"autolr_spec": 1, "family": "step", "lr": -0.1})
@example(data={"autolr_spec": 1, "family": "step", "lr": 0.1, "colour": "red"})
@example(data={"autolr_spec": 1, "family": "constant", "lr": 1.0, "provenance": {"0E0": [], "run": "1e5"}})
def test_from_dict_raises_only_spec_errors(data: object) -> None:
    try:
        spec = ScheduleSpec.from_dict(data)
    except SpecError:
        return
    check_accepted(spec)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"autolr_spec": 1, "family": "multistep", "lr": 0.1, "params": {"milestones": [0.7, 0.3]}}, "milestones"),
        ({"autolr_spec": 1, "family": "onecycle", "lr": 0.1, "params": {"pct_start": 1.0}}, "pct_start"),
        ({"autolr_spec": 1, "family": "onecycle", "lr": 0.1, "params": {"pct_start": 0}}, "pct_start"),
        ({"autolr_spec": 1, "family": "cosine_restarts", "lr": 0.1, "params": {"cycle_mult": 0}}, "cycle_mult"),
        ({"autolr_spec": 1, "family": "step", "lr": -0.1}, "lr"),
        ({"autolr_spec": 1, "family": "step", "lr": 0.1, "colour": "red"}, "colour"),
        ({"autolr_spec": 1, "family": "cosine", "lr": 0.1, "params": {"T_max": 3}}, "T_max"),
        ({"autolr_spec": 1, "family": "cosine", "lr": 1e308}, r"lr must be in \(0, 1000\], got 1e\+308"),
        ({"autolr_spec": 1, "family": "constant", "lr": 1000.0001}, "lr must be in"),
        ({"autolr_spec": 1, "family": "cosine_restarts", "lr": 0.1, "params": {"cycle_mult": 10**400}},
         r"cycle_mult must be an integer in \[1, 1000\]"),
    ],
)
def test_invalid_values_are_named(data: dict, named: str) -> None:
    with pytest.raises(SpecError, match=named):
        ScheduleSpec.from_dict(data)


def extremes(parameter: Parameter) -> list:
    """The ends of a numeric parameter's valid interval (just inside an open end) and, without an upper
    end, huge values; a list parameter's extreme lists."""
    low = 0.0 if parameter.low is None else parameter.low
    lowest = math.nextafter(low, math.inf) if parameter.low_open else low
    if parameter.kind == "int":
        return [int(low), 2**63 - 1, 10**400] if parameter.high is None else [int(low), int(parameter.high)]
    high = parameter.high
    highest = [1e300, 1.7e308] if high is None else [math.nextafter(high, -math.inf) if parameter.high_open else high]
    if parameter.kind == "float":
        return [lowest, *highest]
    if parameter.kind == "pair":
        return [[lowest, top] for top in highest] + [[top, lowest] for top in highest]
    if parameter.kind == "fractions":
        return [[lowest], [*highest], [lowest, *highest]]
    return []


FAMILY_EXTREMES = [pytest.param(family, parameter.name, value, id=f"{family}.{parameter.name}#{index}")
                   for family, parameters in FAMILY_PARAMETERS.items() for parameter in parameters
                   for index, value in enumerate(extremes(parameter))]


@pytest.mark.parametrize(("family", "name", "value"), FAMILY_EXTREMES)
@pytest.mark.parametrize("lr", [MAX_LR, 5e-324])
def test_every_family_parameter_at_its_extremes_stays_finite_or_is_refused(
    family: str, name: str, value: object, lr: float
) -> None:
    """At the highest allowed LR and the smallest float, each family parameter at each end of its range
    (huge where it has none): refused with its name, or every LR, momentum and exported LR finite."""
    try:
        spec = ScheduleSpec(family, lr, {name: value}, warmup={"fraction": 0.5, "start_factor": 0.0})
    except SpecError as error:
        assert name in str(error)
        return
    check_accepted(spec)
    namespace: dict = {}
    exec(to_python(spec), namespace)  # the exported Python computes the same finite LRs
    for total_steps in (3, 1000):
        for step in (0, 1, total_steps // 2, total_steps - 1):
            assert namespace["lr_at"](step, total_steps) == pytest.approx(spec.lr_at(step, total_steps), rel=1e-9, abs=0)


@FUZZ
@given(content=st.binary(max_size=300), extension=st.sampled_from(EXTENSIONS))
def test_load_spec_random_bytes(tmp_path: Path, content: bytes, extension: str) -> None:
    path = tmp_path / f"random{extension}"
    path.write_bytes(content)
    spec = load_or_user_error(path)
    if spec is not None:
        check_accepted(spec)


@st.composite
def mutated_spec_file(draw: st.DrawFn) -> tuple[str, str]:
    """A valid spec file's text (random family and format) with a few random edits."""
    family = draw(st.sampled_from(tuple(FAMILY_PARAMETERS)))
    spec = ScheduleSpec(family, lr=0.05, warmup={"fraction": 0.1}, optimizer={"name": "sgd", "momentum": 0.9},
                        provenance={"study": "fuzz", "score": 0.9})
    extension = draw(st.sampled_from(EXTENSIONS))
    text = spec.to_text(FORMAT_OF[extension])
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        insert = draw(st.text(alphabet=string.printable + "\u00e9\u2028\x00", max_size=6))
        text = text[:start] + insert + text[end:]
    return text, extension


@FUZZ
@given(file=mutated_spec_file())
def test_load_spec_mutated_files(tmp_path: Path, file: tuple[str, str]) -> None:
    text, extension = file
    path = tmp_path / f"mutated{extension}"
    path.write_text(text, encoding="utf-8")
    spec = load_or_user_error(path)
    if spec is not None:
        check_accepted(spec)


DEPTH = 50_000  # far past Python's recursion limit


@pytest.mark.parametrize(
    ("extension", "text"),
    [
        (".json", "[" * DEPTH + "]" * DEPTH),
        (".json", '{"autolr_spec": 1, "family": "constant", "lr": 0.1, "provenance": '
                  + '{"a": ' * DEPTH + "1" + "}" * (DEPTH + 1)),
        (".yaml", "[" * DEPTH + "]" * DEPTH),
        (".toml", "a = " + "[" * DEPTH + "]" * DEPTH),
    ],
    ids=["json-array", "json-provenance", "yaml", "toml"],
)
def test_deeply_nested_files_are_user_errors(tmp_path: Path, extension: str, text: str) -> None:
    path = tmp_path / f"deep{extension}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="deep"):
        load_spec(path)


LAUGHS = "\n".join(
    ["autolr_spec: 1", "family: constant", "lr: 0.1", "provenance:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"  a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]" for level in range(1, 6)]
) + "\n"


@pytest.mark.parametrize(
    "text",
    [LAUGHS, "autolr_spec: 1\nfamily: constant\nlr: 0.1\nprovenance: &p {self: *p}\n"],
    ids=["billion-laughs", "self-reference"],
)
def test_yaml_aliases_are_refused(tmp_path: Path, text: str) -> None:
    """Aliases could expand a small file into 10**9 values (or a cycle): a spec never needs them."""
    path = tmp_path / "alias.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="alias"):
        load_spec(path)
