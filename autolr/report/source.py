"""Finding a study to report on from what a user typed: a study name, a file, a folder or a storage URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from autolr.errors import StudyError
from autolr.redact import redact_text
from autolr.study.records import StudyRecord

REPORTS_DIR = Path("reports")  # where studies run and reports go by default, under the working directory
RUN_FOLDER_FILES = ("study.db", "study.log")  # a study run folder's Optuna storage (SQLite, journal)


@dataclass(frozen=True)
class StudySource:
    """Where a study is stored: an Optuna storage URL or a Ray Tune result folder.

    ``out_dir`` is where its report goes unless told otherwise: the folder holding the
    storage file, or None for a database server (then ``reports/<study name>``).
    """

    backend: str  # "optuna" or "ray"
    location: str  # the storage URL (optuna) or the result folder (ray)
    out_dir: Path | None


def locate(source: str, reports_dir: Path = REPORTS_DIR) -> StudySource:
    """Interpret ``source``: a storage URL, a study.db/study.log file, a run or Ray result folder,
    or the name of a study under ``reports_dir``."""
    from autolr.backends.optuna.storage import journal_url, run_folder_storage_url, sqlite_url
    from autolr.backends.ray.record import is_ray_result

    if "://" in source:
        for scheme in ("sqlite:///", "journal:///"):
            if source.startswith(scheme):
                return StudySource("optuna", source, Path(source[len(scheme) - 1:]).parent)
        return StudySource("optuna", source, None)
    path = Path(source)
    if not path.exists() and re.fullmatch(r"[^/\\]+", source) and (reports_dir / source).is_dir():
        path = reports_dir / source
    if path.is_file():
        url = journal_url(path) if path.suffix == ".log" else sqlite_url(path)
        return StudySource("optuna", url, path.parent)
    if path.is_dir():
        if is_ray_result(path):
            return StudySource("ray", str(path), path.parent if path.name == "ray" else path)
        if any((path / name).exists() for name in RUN_FOLDER_FILES):
            return StudySource("optuna", run_folder_storage_url(path), path)
        raise StudyError(f"folder {path} holds no study ({' or '.join(RUN_FOLDER_FILES)}, or a Ray Tune result)")
    raise StudyError(
        f"{redact_text(source)!r} is not a study under {reports_dir}/, a study.db or study.log file, "
        "a study folder, or a storage URL"
    )


def read_record(source: StudySource, study_name: str | None = None) -> StudyRecord:
    """The study's record, read through its backend's reader (``study_name`` for Optuna storages
    holding several studies)."""
    if source.backend == "ray":
        from autolr.backends.ray.record import read_ray_record

        return read_ray_record(source.location)
    from autolr.backends.optuna.engine import read_study_record

    return read_study_record(source.location, study_name=study_name)


def folder_name(study_name: str) -> str:
    """A study name made safe as one folder name (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", study_name).strip("._") or "study"
