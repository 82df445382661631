"""Parameter importance per schedule family, from Optuna's evaluators on the study's records.

A global importance over a conditional space misleads (a family's parameters exist only in
its own trials), so each family gets its own in-memory Optuna study built from its
complete searched trials, with distributions spanning the values observed. The tuned baselines'
rungs are left out: they are fixed specs outside the search space (an LR ladder, an optimizer
switch), so they say nothing about which searched parameter matters. A family with fewer than
``MIN_TRIALS`` such trials gets none, and a study where no family has that many (a budgeted study's
few search trials) does not even load Optuna's importance module (about half a second).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import optuna

from autolr.backends.optuna.engine import OPTUNA_DIRECTIONS
from autolr.schedule.spec import flatten_spec
from autolr.study.definition import Direction
from autolr.study.records import StudyRecord, direction_of

MIN_TRIALS = 5  # a family needs this many complete trials for an importance estimate
MAX_TRIALS = 200  # larger families are subsampled (seeded): fANOVA's cost grows fast with trials
TREES = 32  # fANOVA forest size (Optuna's default is 64; half keeps big studies quick)
EVALUATOR_NAME = f"Optuna fANOVA, {TREES} trees, up to {MAX_TRIALS} trials per family"


def importance_by_family(record: StudyRecord, seed: int = 0) -> dict[str, dict[str, float]]:
    """Family -> {parameter: importance (fractions summing to 1)}, for families with enough trials.

    Families need MIN_TRIALS complete searched trials (baseline rungs do not count), two parameters that
    vary, and scores that vary (when every trial scored the same, no parameter explains anything).
    Parameters are the spec's ``lr``, ``params.*``, ``warmup.*`` and ``optimizer.*`` values that
    vary within the family; list values (milestones) count one parameter per position.
    """
    by_family: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for trial in record.trials:
        if (trial.state == "complete" and not trial.baseline and trial.value is not None
                and math.isfinite(trial.value)):
            features = _features(trial.spec)
            by_family.setdefault(features.pop("family"), []).append((features, trial.value))
    result = {}
    for family, rows in sorted(by_family.items()):
        if len(rows) > MAX_TRIALS:
            rows = random.Random(seed).sample(rows, MAX_TRIALS)
        scores = _family_importance(rows, direction_of(record), seed)
        if scores:
            result[family] = scores
    return result


def _features(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's flat values with list entries spread out (``params.milestones[0]``)."""
    flat = flatten_spec({**spec, "warmup": spec.get("warmup") or {"fraction": 0.0, "start_factor": 0.0}})
    features: dict[str, Any] = {}
    for key, value in flat.items():
        decoded = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        if isinstance(decoded, list):
            features.update({f"{key}[{index}]": item for index, item in enumerate(decoded)})
        elif decoded is not None:
            features[key] = decoded
    return features


def _distribution(values: list[Any]) -> optuna.distributions.BaseDistribution | None:
    """The distribution spanning ``values``, or None when they do not vary."""
    if len({json.dumps(value) for value in values}) < 2:
        return None
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        low, high = float(min(values)), float(max(values))
        return optuna.distributions.FloatDistribution(low, high, log=low > 0 and high / low > 10)
    return optuna.distributions.CategoricalDistribution(sorted({json.dumps(value) for value in values}))


def _family_importance(rows: list[tuple[dict[str, Any], float]], direction: Direction, seed: int) -> dict[str, float]:
    if len(rows) < MIN_TRIALS or len({value for _, value in rows}) < 2:
        return {}
    names = sorted({name for features, _ in rows for name in features})
    distributions = {}
    for name in names:
        values = [features.get(name) for features, _ in rows]
        if any(value is None for value in values):
            continue  # a parameter missing in some trials (conditional within the family)
        distribution = _distribution(values)
        if distribution is not None:
            distributions[name] = distribution
    if len(distributions) < 2:
        return {}  # one varying parameter is trivially all of the importance
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per family
    try:
        study = optuna.create_study(direction=OPTUNA_DIRECTIONS[direction])
    finally:
        optuna.logging.set_verbosity(verbosity)
    for features, value in rows:
        params = {
            name: json.dumps(features[name]) if isinstance(distribution, optuna.distributions.CategoricalDistribution)
            else float(features[name])
            for name, distribution in distributions.items()
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
    evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=TREES, seed=seed)
    try:
        scores = optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=True)
    except RuntimeError:  # "zero total variance in all trees": every bootstrap sample drew equal scores
        return {}
    return {name: float(score) for name, score in scores.items()}
