"""The engine's side of a study (``autolr.pipeline.run``): where it is stored and how its trials run.

One study pipeline runs on every engine; what differs is behind :class:`StudyBackend`,
which ``backends/optuna/study.py`` (Optuna ask/tell, K trials per population, extra local
worker processes) and ``backends/ray/backend.py`` (Ray Tune trials on a local Ray or a
cluster) implement. An engine gets a ready ``trials.Job`` to train its trials with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from autolr.space.baselines import Baseline
    from autolr.space.search_space import SearchSpace
    from autolr.study.records import StudyRecord
    from autolr.trials import Job, Progress


class StudyStore(Protocol):
    """A stored study: its definition, study-level values and trials."""

    def claim(self, definition: dict[str, Any], identity_keys: Sequence[str]) -> None:
        """Store the study definition once; refuse a rerun whose ``identity_keys`` differ."""

    def get_attr(self, key: str) -> Any:
        """A study-level value (None when absent)."""

    def set_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe study-level value."""

    def read_record(self) -> "StudyRecord":
        """The study as an engine-neutral record."""


class StoredStudy:
    """A StudyBackend's :class:`StudyStore` side, handed to the engine's own store ``self.store``."""

    store: StudyStore

    def claim(self, definition: dict[str, Any], identity_keys: Sequence[str]) -> None:
        self.store.claim(definition, identity_keys)

    def get_attr(self, key: str) -> Any:
        return self.store.get_attr(key)

    def set_attr(self, key: str, value: Any) -> None:
        self.store.set_attr(key, value)

    def read_record(self) -> "StudyRecord":
        return self.store.read_record()


class StudyBackend(StudyStore, Protocol):
    """An engine running a study."""

    location: str  # where the study lives: a storage URL (may hold a password) or a folder
    phased: bool  # whether run_trials can stop at ``trials`` and be called again with more baselines

    def run_trials(self, space: "SearchSpace", baselines: Sequence["Baseline"], job: "Job", population: int,
                   on_progress: Callable[["Progress"], None] | None, trials: int) -> "Progress":
        """Run (or continue) the study's trials until it holds ``trials``: the ``baselines`` first
        (each queued once), then samples of ``space``, ``population`` at a time (the engine's own
        unit where it has one), each trained by ``job``. An engine that is not ``phased`` runs
        the definition's ``trials`` at its first call, whatever ``trials`` says."""

    def meta(self) -> dict[str, Any]:
        """What the report's run metadata should say about this engine's run."""
