"""Ray Tune's searcher for autolr: Ray's ``OptunaSearch`` over the space, K schedules per Tune trial.

A Tune trial is a *population*: ``population_size`` schedules trained at once by the
population trainer on one device (K = 1 is the classic one schedule per trial). Each
member is a trial of the inner ``OptunaSearch``, which runs the backend-neutral
``SearchSpace.sample`` define-by-run and evaluates the baselines first through its own
``points_to_evaluate``. Every member's per-epoch score and final state are told to its
own Optuna trial, so the sampler learns from single schedules, never from a bundle.
"""

from __future__ import annotations

import pickle
from typing import Any, Sequence

from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from autolr.backends.ray.record import (
    BASELINE_KEY,
    MEMBER_SCORES_KEY,
    MEMBER_STATES_KEY,
    MEMBERS_KEY,
    POPULATION_KEY,
    SPEC_KEY,
)
from autolr.space.search_space import SearchSpace


class SpaceSampler:
    """The define-by-run function given to ``OptunaSearch``: samples a spec from the space.

    Returns the spec (as a dict) and, for a baseline enqueued through
    ``points_to_evaluate``, its name; a class rather than a closure so Tune can pickle it.
    """

    def __init__(self, space: SearchSpace, baselines: dict[str, dict[str, Any]]) -> None:
        self.space = space
        self.baselines = baselines

    def __call__(self, trial: Any) -> dict[str, Any]:
        spec = self.space.sample(trial)
        baseline = next((name for name, params in self.baselines.items() if params == trial.params), None)
        return {SPEC_KEY: spec.to_dict(), BASELINE_KEY: baseline}


class PopulationSearcher(Searcher):
    """Asks the inner ``OptunaSearch`` for ``population_size`` members per Tune trial.

    Tune reports per epoch the members' scores under ``member_scores``; the population's
    own metric (what ASHA compares) is the best live member's score. ``fixed``: member
    configs (``{spec, baseline}``: the tuned baselines, outside the search space) handed out
    before any the inner searcher suggests; the inner searcher never hears of them.
    """

    def __init__(self, inner: OptunaSearch, population_size: int, metric: str, mode: str,
                 fixed: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(metric=metric, mode=mode)
        self.inner = inner
        self.population_size = population_size
        self.fixed = list(fixed)
        self.member_ids: dict[str, list[str | None]] = {}  # None: a fixed member

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The next population: its number and ``population_size`` member configs (fixed ones first)."""
        number = len(self.member_ids)
        members, member_ids = [], []
        for index in range(self.population_size):
            member_id = None if self.fixed else f"{trial_id}#{index}"
            members.append(self.fixed.pop(0) if member_id is None else self.inner.suggest(member_id))
            member_ids.append(member_id)
        self.member_ids[trial_id] = member_ids
        return {POPULATION_KEY: number, MEMBERS_KEY: members}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Tell each live member's Optuna trial its score for this epoch."""
        for member_id, score in zip(self.member_ids[trial_id], result.get(MEMBER_SCORES_KEY, [])):
            if score is not None and member_id is not None:
                self.inner.on_trial_result(
                    member_id, {self.metric: score, TRAINING_ITERATION: result[TRAINING_ITERATION]})

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Tell each member's Optuna trial how it ended: complete with its score, else pruned or failed."""
        states = (result or {}).get(MEMBER_STATES_KEY) or [None] * self.population_size
        scores = (result or {}).get(MEMBER_SCORES_KEY) or [None] * self.population_size
        for member_id, state, score in zip(self.member_ids[trial_id], states, scores):
            if member_id is None:
                continue
            complete = state == "complete" and score is not None
            self.inner.on_trial_complete(member_id, {self.metric: score} if complete else None, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))
