"""How to rerun a reported study: its definition as a study TOML file and the command that runs it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import tomli_w

STUDY_FILE = "study.toml"
DERIVED = ("direction", "score_unit", "storage")  # not part of a rerun's definition: derived, or where it stored
EPOCH_KEYS = ("epochs", "target_epochs")  # derived from a text study's steps (a study file gives steps alone)


def study_toml(config: dict[str, Any]) -> str | None:
    """The study definition as the TOML ``autolr search --study`` reads, or None when the study
    did not come from a study definition (a Python objective run through ``autolr.search``)."""
    if "dataset" not in config or "name" not in config:
        return None
    data: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in config.items():
        if value is None or key in DERIVED or (key in EPOCH_KEYS and config.get("steps") is not None):
            continue
        if key == "optimizer":
            tables["optimizer"] = dict(value)
        elif key in ("rescore_top", "rescore_seeds"):
            tables.setdefault("rescore", {})[key.removeprefix("rescore_")] = value
        else:
            data[key] = list(value) if isinstance(value, tuple) else value
    return tomli_w.dumps({**data, **tables})


def reproduce_command(config: dict[str, Any], name: str, out_dir: Path) -> str:
    """The command that runs the study again from the study file beside the report, as a fresh
    study (a new name, so it does not resume this one); for a Python objective, a sentence."""
    if study_toml(config) is None:
        return "# This study ran a Python objective with autolr.search(...): rerun that script."
    study_file = shlex.quote(str(out_dir / STUDY_FILE))
    return f"autolr search --study {study_file} --name {shlex.quote(name + '-rerun')}"
