"""Safety: spec files are data only, and a database password is never written anywhere.

A YAML spec carrying Python tags is refused and runs nothing; the package loads no user
file through pickle, eval, exec or an unsafe YAML loader; a real study run on a
password-protected PostgreSQL server writes the password to no output, report file,
``trials.csv`` or stored attribute.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import optuna
import pytest

import autolr
from autolr.backends.optuna.storage import open_storage
from autolr.errors import UserError
from autolr.schedule.spec import load_spec
from reliability_support import run_cli, write_study

PACKAGE = Path(autolr.__file__).resolve().parent
# Ray Tune saves and restores a searcher's state with pickle (Searcher.save/restore, inside
# Tune's own experiment folder, which Tune pickles throughout): not a file users hand in.
PICKLE_ALLOWED = {"backends/ray/searcher.py"}


@pytest.mark.parametrize(
    "document",
    [
        "!!python/object/apply:os.system ['touch {sentinel}']\n",
        "autolr_spec: 1\nfamily: constant\nlr: !!python/object/apply:os.system ['touch {sentinel}']\n",
        "autolr_spec: 1\nfamily: constant\nlr: 0.1\nprovenance: {{x: !!python/object/new:os.system ['touch {sentinel}']}}\n",
        "autolr_spec: 1\nfamily: !!python/name:os.system\nlr: 0.1\n",
        "autolr_spec: 1\nfamily: constant\nlr: 0.1\nprovenance: {{m: !!python/module:os}}\n",
    ],
    ids=["apply", "apply-in-lr", "new-in-provenance", "name", "module"],
)
def test_yaml_with_python_tags_is_refused_and_runs_nothing(tmp_path: Path, document: str) -> None:
    sentinel = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(document.format(sentinel=sentinel))
    with pytest.raises(UserError, match="evil.yaml"):
        load_spec(path)
    assert not sentinel.exists()


def _unsafe_calls(tree: ast.AST) -> list[str]:
    """Calls that could run code from data: eval/exec/compile, pickle/marshal/shelve,
    yaml.load without a safe loader, yaml.unsafe_load, torch.load without weights_only=True."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"import {name}" for name in names if name and name.split(".")[0] in ("pickle", "marshal", "shelve", "dill", "cloudpickle")]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
        if name in ("eval", "exec", "compile", "yaml.unsafe_load", "yaml.full_load"):
            found.append(name)
        elif name == "yaml.load" and "Safe" not in keywords.get("Loader", "") and "_SpecYamlLoader" not in keywords.get("Loader", ""):
            found.append("yaml.load without a safe loader")
        elif name == "torch.load" and keywords.get("weights_only") != "True":
            found.append("torch.load without weights_only=True")
    return found


def test_the_package_loads_no_data_through_code() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        calls = _unsafe_calls(ast.parse(path.read_text(encoding="utf-8")))
        if relative in PICKLE_ALLOWED:
            calls = [call for call in calls if call != "import pickle"]
        if calls:
            offenders[relative] = calls
    assert offenders == {}


def test_the_scan_finds_what_it_looks_for() -> None:
    source = "import pickle\nimport yaml, torch\neval('1')\nyaml.load(t)\ntorch.load(f)\nyaml.load(t, Loader=yaml.SafeLoader)\n"
    assert _unsafe_calls(ast.parse(source)) == [
        "import pickle", "eval", "yaml.load without a safe loader", "torch.load without weights_only=True",
    ]


@pytest.mark.slow
def test_postgresql_password_is_never_written(tmp_path: Path, postgres_url: str) -> None:
    from conftest import POSTGRES_PASSWORD

    study = write_study(tmp_path / "tiny.toml", trials=5, epochs=2, families=["constant", "cosine"],
                        rescore={"top": 1, "seeds": 2})
    search = run_cli("search", "--study", str(study), "--storage", postgres_url, "--out", str(tmp_path / "runs"),
                     "--json")
    assert search.returncode == 0, search.stderr[-3000:]
    assert json.loads(search.stdout)["storage"].startswith("postgresql://autolr:***@")
    report = run_cli("report", postgres_url, "--out", str(tmp_path / "rebuilt"))
    assert report.returncode == 0, report.stderr
    broken = run_cli("search", "--study", str(study), "--storage", postgres_url, "--epochs", "3",
                     "--out", str(tmp_path / "runs"))  # a refused rerun names the storage in its error
    assert broken.returncode == 2 and "***" in broken.stderr

    texts = {"search output": search.stdout + search.stderr, "report output": report.stdout + report.stderr,
             "refusal": broken.stdout + broken.stderr}
    for path in [*(tmp_path / "runs").rglob("*"), *(tmp_path / "rebuilt").rglob("*")]:
        if path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any(path.endswith("trials.csv") for path in texts) and any(path.endswith("index.html") for path in texts)
    stored = optuna.load_study(study_name="tiny", storage=open_storage(postgres_url))
    texts["stored attributes"] = json.dumps([stored.user_attrs, [t.user_attrs for t in stored.trials]], default=str)
    leaks = [name for name, text in texts.items() if POSTGRES_PASSWORD in text]
    assert leaks == []
