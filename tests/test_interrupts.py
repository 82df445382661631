"""Ctrl-C held across storage calls: it takes effect after the call, never inside it."""

from __future__ import annotations

import logging
import signal
import threading

import optuna
import pytest

from autolr.backends import open_engine
from autolr.study.definition import SearchDefinition
from autolr.backends.optuna.engine import RETRY_OF_KEY, OptunaTrial
from autolr.backends.optuna.storage import open_storage, sqlite_url
from autolr.interrupts import ctrl_c_held, stop_on_first_ctrl_c, termination_as_ctrl_c
from autolr.trials import TrialOutcome, run_trials
from autolr.space.search_space import SearchSpace
from autolr.schedule.spec import ScheduleSpec


def test_a_ctrl_c_inside_the_block_takes_effect_once_the_block_is_done():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            signal.raise_signal(signal.SIGINT)
            steps.append("after the signal")
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_blocks_deliver_the_ctrl_c_once_at_the_outermost_end():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            with ctrl_c_held():
                signal.raise_signal(signal.SIGINT)
            steps.append("inner block ended")
    assert steps == ["inner block ended"]


def test_without_a_ctrl_c_nothing_is_raised_and_other_threads_run_the_block_as_is():
    with ctrl_c_held():
        pass
    ran = []
    thread = threading.Thread(target=lambda: ran.append(ctrl_c_held().__enter__() is None))
    thread.start()
    thread.join()
    assert ran == [True]


def test_sigterm_acts_as_ctrl_c_and_is_held_like_it():
    steps, before = [], signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with termination_as_ctrl_c() as terminated:
            with ctrl_c_held():
                signal.raise_signal(signal.SIGTERM)
                steps.append("the held block went on")
    assert steps == ["the held block went on"] and terminated == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_worker_stops_on_the_first_ctrl_c_and_ignores_the_next():
    try:
        stop_on_first_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # the stop forwarded by the main process: ignored
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_ctrl_c_during_a_report_lands_after_the_score_is_stored(tmp_path, caplog):
    storage = open_storage(sqlite_url(tmp_path / "study.db"))
    study = optuna.create_study(storage=storage, study_name="held", direction="maximize")
    trial = OptunaTrial(study.ask(), ScheduleSpec(family="constant", lr=0.1), baseline=None,
                        definition=SearchDefinition(name="held", direction="maximize", trials=1))
    from sqlalchemy import event

    pressed = []

    def ctrl_c_in_the_database_call(*_args) -> None:  # the user presses Ctrl-C while the driver works
        if not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)

    event.listen(storage.engine, "before_cursor_execute", ctrl_c_in_the_database_call)
    caplog.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        trial.observe(0.75, epoch=0)
    assert pressed and not caplog.records  # SQLAlchemy logged no half-closed cursor
    stored = optuna.load_study(study_name="held", storage=sqlite_url(tmp_path / "study.db")).trials[0]
    assert stored.intermediate_values == {0: 0.75}


def test_a_ctrl_c_stores_a_member_the_pruner_had_stopped_as_pruned_and_interrupts_the_rest(tmp_path):
    epochs = 4
    engine = open_engine(sqlite_url(tmp_path / "study.db"),
                         SearchDefinition(name="held", direction="maximize", trials=5, sampler="random",
                                          pruner="median", epochs=epochs, seed=0),
                         SearchSpace(lr_low=1e-3, lr_high=0.5, families=("constant",)))

    def strong_trials(trials):
        for trial in trials:
            for epoch in range(epochs):
                trial.observe(0.9, epoch)
        return [TrialOutcome("complete", value=0.9, epochs_run=epochs) for _ in trials]

    run_trials(engine, strong_trials, n_trials=3)  # the median pruner's reference
    in_flight, pruned_after = [], []

    def stopped_by_ctrl_c(trials):  # a population of two: one member pruned, then Ctrl-C
        in_flight.extend(trials)
        weak, strong = trials
        epoch = 0
        while not weak.observe(0.1, epoch):
            epoch += 1
            assert epoch < epochs, "the median pruner should stop a trial far below the others"
        pruned_after.append(epoch + 1)
        strong.observe(0.9, 0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trials(engine, stopped_by_ctrl_c, n_trials=5, population=2)
    weak, strong = in_flight
    stored = {trial.number: trial for trial in engine.read_record().trials}
    assert stored[weak.number].state == "pruned" and [stored[weak.number].epochs_run] == pruned_after
    assert stored[strong.number].state == "interrupted"
    queued = engine.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [trial.user_attrs[RETRY_OF_KEY] for trial in queued] == [strong.number]  # only the interrupted one runs again
