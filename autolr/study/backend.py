"""The engine's side of a built-in study (``autolr.study.run``): where it is stored and how its trials run.

One study pipeline runs on every engine; what differs is behind :class:`StudyBackend`,
which ``backends/optuna/study.py`` (Optuna ask/tell, K trials per population, extra local
worker processes) and ``backends/ray/backend.py`` (Ray Tune trials on a local Ray or a
cluster) implement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from autolr.data.splits import Splits
    from autolr.space.baselines import Baseline
    from autolr.space.search_space import SearchSpace
    from autolr.study.config import StudyConfig
    from autolr.study.records import StudyRecord
    from autolr.trials import Progress


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


@dataclass(frozen=True)
class StudyTrials:
    """What an engine needs to run a built-in study's trials."""

    config: "StudyConfig"
    space: "SearchSpace"
    baselines: list["Baseline"]  # the tuned baselines, queued before any sampled trial
    splits: "Splits"
    device: str
    population: int  # trials this process trains at once


class StudyBackend(StudyStore, Protocol):
    """An engine running a built-in study."""

    location: str  # where the study lives: a storage URL (may hold a password) or a folder

    def run_trials(self, trials: StudyTrials, on_progress: Callable[["Progress"], None] | None) -> "Progress":
        """Run (or continue) the study's trials until it holds ``trials.config.trials`` of them."""

    def meta(self) -> dict[str, Any]:
        """What the report's run metadata should say about this engine's run."""
