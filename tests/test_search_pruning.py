"""Fair pruning, with numbers: slow-starting schedules survive their ramp-up and are judged within their family.

The curves are validation accuracies per epoch of the kind a real run gives: a constant LR
learns fast and stalls at 0.88; a one-cycle schedule (pct_start 0.3) climbs slowly while its
LR rises and ends at 0.96; a weak one-cycle schedule never gets far.
"""

from __future__ import annotations

import optuna
import pytest

from autolr.backends.optuna.pruning import FairPruner, first_prunable_epoch, make_pruner, ramp_fraction
from autolr.study.records import TRIAL_SPEC_KEY

EPOCHS = 8
CONSTANT = {"family": "constant", "lr": 0.1}
ONECYCLE = {"family": "onecycle", "lr": 0.5, "params": {"pct_start": 0.3}}
CONSTANT_CURVES = [[0.80, 0.85, 0.87, 0.88, 0.88, 0.88, 0.88, 0.88]] * 4  # four seeds-alike runs
GOOD_ONECYCLE = [0.30, 0.50, 0.75, 0.86, 0.91, 0.94, 0.95, 0.96]
WEAK_ONECYCLE = [0.20, 0.28, 0.35, 0.40, 0.44, 0.47, 0.49, 0.50]


def run_curve(study: optuna.Study, spec: dict, curve: list[float]) -> int | None:
    """Report ``curve`` epoch by epoch; return the epoch the pruner stopped it at, or None."""
    trial = study.ask()
    trial.set_user_attr(TRIAL_SPEC_KEY, spec)
    for epoch, value in enumerate(curve):
        trial.report(value, epoch)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return epoch
    study.tell(trial, curve[-1])
    return None


def study_with(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    # A fixed name: Hyperband assigns brackets by hashing the study name, and an unnamed study gets a random one.
    study = optuna.create_study(study_name="pruning-fairness", direction="maximize", pruner=pruner)
    for curve in CONSTANT_CURVES:
        assert run_curve(study, CONSTANT, curve) is None
    return study


@pytest.mark.parametrize("name", ["median", "hyperband", "successive-halving"])
def test_plain_pruner_cuts_the_schedule_that_ends_best_fair_pruner_keeps_it(name):
    plain = make_pruner(name, EPOCHS, prune_after=0.25).inner
    stopped_at = run_curve(study_with(plain), ONECYCLE, GOOD_ONECYCLE)
    assert stopped_at is not None and stopped_at < EPOCHS - 1  # plain: lost the best schedule early
    fair = make_pruner(name, EPOCHS, prune_after=0.25)
    study = study_with(fair)
    assert run_curve(study, ONECYCLE, GOOD_ONECYCLE) is None  # fair: it runs to the end...
    assert study.best_value == GOOD_ONECYCLE[-1] > max(curve[-1] for curve in CONSTANT_CURVES)  # ...and wins


def test_fair_pruner_still_cuts_a_weak_schedule_of_the_same_family_after_its_ramp():
    study = study_with(make_pruner("median", EPOCHS, prune_after=0.25))
    assert run_curve(study, ONECYCLE, GOOD_ONECYCLE) is None
    assert run_curve(study, ONECYCLE, [0.35, 0.55, 0.80, 0.88, 0.92, 0.95, 0.955, 0.958]) is None
    stopped_at = run_curve(study, ONECYCLE, WEAK_ONECYCLE)
    # pct_start 0.3 of 8 epochs: left alone for epochs 0 and 1, cut at the first epoch after
    assert stopped_at == first_prunable_epoch(ONECYCLE, EPOCHS, 0.25) == 2


def test_weak_constant_is_cut_right_after_the_study_warmup_fraction():
    study = study_with(make_pruner("median", EPOCHS, prune_after=0.25))
    assert run_curve(study, CONSTANT, [0.40, 0.45, 0.50, 0.52, 0.53, 0.54, 0.55, 0.55]) == 2  # 0.25*8 = 2 epochs


def test_ramp_fraction_reads_warmup_and_one_cycle_rise():
    assert ramp_fraction(None, 0.25) == 0.25
    assert ramp_fraction({"family": "cosine", "warmup": {"fraction": 0.4, "start_factor": 0.1}}, 0.25) == 0.4
    assert ramp_fraction(ONECYCLE, 0.1) == 0.3
    assert ramp_fraction({"family": "cyclic", "params": {"step_size_up": 0.5}}, 0.25) == 0.5
    assert first_prunable_epoch({"family": "constant"}, 4, 0.25) == 1
    assert isinstance(make_pruner("none", 4, 0.25), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("hyperband", 4, 0.25), FairPruner)
