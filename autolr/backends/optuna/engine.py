"""The Optuna engine: a study in any Optuna storage, asked and told trial by trial.

One :class:`OptunaEngine` per process. The study definition, range test, re-scoring and
run metadata live in the study's user attributes (keys in :mod:`autolr.study.records`); each
trial's spec, status, epochs run, duration and error in its user attributes, its
per-epoch validation scores as Optuna intermediate values. :func:`read_study_record` turns
a stored study into the engine-neutral :class:`~autolr.study.records.StudyRecord`.

Resuming: trials already finished are kept as they are; the sampler is re-seeded from the
study's seed, the worker's index and the number of trials already stored, so a resumed
(or parallel) run never replays the random stream of an earlier one; and a sampled
configuration identical to one the study already holds is never trained: it is stored as
a ``duplicate`` (hidden from records and counts) and the sampler is asked again.

Interrupted trials: each running trial carries its owner (host, process id) and a heartbeat
refreshed every ``HEARTBEAT_INTERVAL_S``. A trial still marked running whose owner process
is gone (same host) or whose heartbeat is older than ``STALE_AFTER_S`` is marked
``interrupted`` (kept apart from trials that failed on their own) and, by default, queued
to run again with the same parameters. Optuna creates a trial (``study.ask``) before its
owner can be written, so a process that dies in between leaves a running trial with no
owner. To tell such an orphan from another process's ask in progress, a process marks
itself asking in the study (``ASKING_PREFIX``: host, pid, since when) before it asks and
clears the mark once the trial's owner is written: a running trial without an owner is
interrupted when no live process is asking (a mark from a process gone on this host, or
older than ``STALE_AFTER_S``, is not live). The end of a search checks again, waiting out
the asks still in progress, so no search ends with a running trial that nobody runs.

A schedule whose process died ``MAX_PROCESS_DEATHS`` times while training it is marked
``failed`` instead and not run again: it may be what kills the process (the system's
out-of-memory killer, a crash in native code), and retrying it forever would keep the study
from finishing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager, suppress
from typing import Any, Iterator, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolr.backends.optuna.pruning import make_pruner
from autolr.backends.optuna.storage import open_storage
from autolr.errors import StudyError
from autolr.interrupts import ctrl_c_held
from autolr.redact import redact, redact_text
from autolr.schedule.spec import ScheduleSpec
from autolr.space.search_space import SearchSpace
from autolr.study.definition import Direction, SearchDefinition
from autolr.study.records import (
    RANGE_TEST_KEY,
    RESCORE_KEY,
    SEARCH_META_KEY,
    STUDY_CONFIG_KEY,
    TRIAL_BASELINE_KEY,
    TRIAL_DURATION_KEY,
    TRIAL_EPOCHS_KEY,
    TRIAL_ERROR_KEY,
    TRIAL_FAMILY_KEY,
    TRIAL_LR_KEY,
    TRIAL_SPEC_KEY,
    TRIAL_STATUS_KEY,
    VERDICT_KEY,
    RescoreRecord,
    StudyRecord,
    TrialRecord,
    zero_counts,
)
from autolr.study.records import TrialState as RunState  # autolr's trial states; TrialState is Optuna's
from autolr.trials import Progress, TrialOutcome, TrialPruned

OWNER_KEY = "autolr.owner"  # {"host", "pid"} of the process training the trial
HEARTBEAT_KEY = "autolr.heartbeat"  # unix time of the owner's last sign of life
ASKING_PREFIX = "autolr.asking."  # + host:pid, a study attribute: {"host", "pid", "since"} while that process asks
RETRY_OF_KEY = "autolr.retry_of"  # number of the interrupted trial this one runs again
BASELINES_QUEUED_KEY = "autolr.baselines_queued"  # names of the baselines queued (once)
FIXED_SPEC_KEY = "autolr.fixed_spec"  # the spec of a queued baseline outside the search space
DUPLICATE = "duplicate"  # status of a sampled configuration the study already held
HEARTBEAT_INTERVAL_S = 10.0
STALE_AFTER_S = 120.0
ASK_POLL_S = 0.2  # how often the end of a search looks again at an ask still in progress
MAX_PROCESS_DEATHS = 3  # deaths of the process training one schedule before it is failed, not retried
PROCESS_STOPPED = "its process stopped before the trial finished"
MAX_DUPLICATE_DRAWS = 20  # sampler draws per ask before the space counts as exhausted
IN_MEMORY = "in-memory"
OPTUNA_DIRECTIONS = {Direction.MAXIMIZE: optuna.study.StudyDirection.MAXIMIZE,
                     Direction.MINIMIZE: optuna.study.StudyDirection.MINIMIZE}


def make_sampler(name: str, seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    """The sampler by name. TPE is multivariate and grouped (the space is conditional: each
    family's parameters form a group) with the constant liar, so K trials asked at once
    spread out; its random start-up is a third of the budget, between 4 and 10 trials."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                multivariate=True, group=True, constant_liar=True, seed=seed,
                n_startup_trials=max(4, min(10, n_trials // 3)),
            )
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise StudyError(f"unknown sampler {name!r}; choose one of tpe, random, cmaes, gp, qmc")


class OptunaTrial:
    """One asked trial: its spec and parameters, and reporting that consults the pruner."""

    def __init__(self, trial: optuna.Trial, spec: ScheduleSpec, baseline: str | None, definition: SearchDefinition,
                 ) -> None:
        self.optuna_trial = trial
        self.number = trial.number
        self.spec = spec
        self.params = dict(trial.params)
        self.baseline = baseline
        self.seed = definition.seed  # every search trial trains from the study's seed
        self.epochs = definition.epochs
        self.pruned: TrialOutcome | None = None  # set once the pruner stops it: its outcome is known
        self._asked_at = time.monotonic()

    def observe(self, value: float, epoch: int) -> bool:
        """Store the score after ``epoch`` (from 0); True when the pruner says stop."""
        with ctrl_c_held():  # a Ctrl-C takes effect after the storage call, not inside it
            self.optuna_trial.report(float(value), epoch)
            stop = self.optuna_trial.should_prune()
        if stop:
            self.pruned = TrialOutcome(RunState.PRUNED, epochs_run=epoch + 1,
                                       duration_s=time.monotonic() - self._asked_at)
        return stop

    def report(self, value: float, epoch: int) -> None:
        """Store the score after ``epoch`` (from 0); raise TrialPruned when the pruner says stop."""
        if self.observe(value, epoch):
            raise TrialPruned(f"trial {self.number} pruned after epoch {epoch}")

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe value with the trial."""
        with ctrl_c_held():
            self.optuna_trial.set_user_attr(key, value)


class OptunaEngine:
    """A study in an Optuna storage, run by ask/tell (see the module docstring).

    ``storage``: an Optuna storage URL (None: in memory). ``definition``: the search (its
    direction, sampler, pruner, epochs for fair pruning, seed, trials, metric name: ``claim``
    stores the metric name, so optuna-dashboard and ``trials_dataframe`` show the score by
    name). ``space``: what ``ask`` samples (None: an engine that only reads and stores).
    ``worker``: this process's index among processes sharing the study.
    """

    def __init__(self, storage: str | None, definition: SearchDefinition, space: SearchSpace | None = None,
                 worker: int = 0) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage_url = storage or IN_MEMORY
        self.study_name = definition.name
        self.definition = definition
        self.space = space
        self.direction = definition.direction
        self.retry_interrupted = definition.retry_interrupted
        self.metric_name = definition.metric_name
        backing = open_storage(storage) if storage else optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=backing, study_name=definition.name, direction=OPTUNA_DIRECTIONS[definition.direction],
            load_if_exists=True, pruner=make_pruner(definition.pruner, definition.epochs, definition.prune_after),
        )
        if self.study.direction != OPTUNA_DIRECTIONS[definition.direction]:
            raise StudyError(
                f"study {definition.name!r} in {redact_text(self.storage_url)} was created to "
                f"{self.study.direction.name.lower()}, not to {definition.direction.value}"
            )
        self.storage = backing  # Optuna's public storage API: trial ids, user attributes, states
        self.study_id = backing.get_study_id_from_name(definition.name)
        stored = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = make_sampler(definition.sampler, seed=definition.seed + 7919 * worker + stored,
                                          n_trials=definition.trials)

    # -- study-level attributes ------------------------------------------------------------
    def get_attr(self, key: str) -> Any:
        """A study user attribute (None when absent)."""
        return self.study.user_attrs.get(key)

    def set_attr(self, key: str, value: Any) -> None:
        """Store a JSON-safe study user attribute (secrets masked)."""
        self.study.set_user_attr(key, redact(value))

    def claim(self, definition: dict[str, Any], identity_keys: Sequence[str]) -> None:
        """Store the study's ``definition`` once; a rerun whose ``identity_keys`` differ from
        the stored ones is refused before anything is written. A new study also gets its metric name."""
        stored = self.get_attr(STUDY_CONFIG_KEY)
        if stored is None:
            self.set_attr(STUDY_CONFIG_KEY, definition)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names([self.metric_name])
            return
        for key in identity_keys:
            if _plain(stored.get(key)) != _plain(definition.get(key)):
                raise StudyError(
                    f"study {self.study_name!r} in {redact_text(self.storage_url)} was created with "
                    f"{key} = {json.dumps(stored.get(key))}, not {json.dumps(definition.get(key))}; "
                    "rerun with the stored settings or give the study another name or storage"
                )

    def queue_baselines(self, baselines: Sequence[Any]) -> None:
        """Queue the baselines (``Baseline`` objects) as the next trials, each name once per study."""
        queued = self.get_attr(BASELINES_QUEUED_KEY) or []
        new = [baseline for baseline in baselines if baseline.name not in queued]
        if not new:
            return
        for baseline in new:
            attrs = {TRIAL_BASELINE_KEY: baseline.name}
            if baseline.params is None:  # a fixed spec: nothing is sampled, the sampler learns nothing from it
                attrs[FIXED_SPEC_KEY] = baseline.spec.to_dict()
            self.study.enqueue_trial(baseline.params or {}, user_attrs=attrs)
        self.set_attr(BASELINES_QUEUED_KEY, queued + [baseline.name for baseline in new])

    # -- the trial loop ----------------------------------------------------------------------
    def remaining(self, n_trials: int) -> int:
        """Trials still to ask so the study holds ``n_trials`` finished or running ones
        (queued trials are asked first; interrupted ones count through their retry)."""
        trials = self.study.get_trials(deepcopy=False)
        return n_trials - sum(_record_state(t) not in (None, "interrupted") for t in trials)

    def ask(self) -> OptunaTrial | None:
        """The next trial: queued ones first, then the sampler's; None if it only repeats itself."""
        if self.space is None:
            raise StudyError("this engine was opened to read the study, not to run trials")
        tried = {_params_key(t.params) for t in self.study.get_trials(deepcopy=False)
                 if t.state != TrialState.WAITING and _status(t) != DUPLICATE}
        for _ in range(MAX_DUPLICATE_DRAWS):
            trial = self._ask_owned()
            fixed = trial.user_attrs.get(FIXED_SPEC_KEY)
            spec = ScheduleSpec.from_dict(fixed) if fixed is not None else self.space.sample(trial)
            queued = TRIAL_BASELINE_KEY in trial.user_attrs or RETRY_OF_KEY in trial.user_attrs
            if (not queued and _params_key(trial.params) in tried) or self._queued_twice(trial):
                trial.set_user_attr(TRIAL_STATUS_KEY, DUPLICATE)
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_user_attr(TRIAL_SPEC_KEY, spec.to_dict())
            trial.set_user_attr(TRIAL_FAMILY_KEY, spec.family)
            trial.set_user_attr(TRIAL_LR_KEY, spec.lr)
            return OptunaTrial(trial, spec, trial.user_attrs.get(TRIAL_BASELINE_KEY), self.definition)
        return None

    def _ask_owned(self) -> optuna.Trial:
        """``study.ask()``, its owner and first heartbeat written before anything else, inside this
        process's asking mark (so a trial still without an owner is known to be this ask's)."""
        host, pid = socket.gethostname(), os.getpid()
        mark = ASKING_PREFIX + f"{host}:{pid}"
        self.study.set_user_attr(mark, {"host": host, "pid": pid, "since": time.time()})
        try:
            trial = self.study.ask()
            trial.set_user_attr(OWNER_KEY, {"host": host, "pid": pid})
            trial.set_user_attr(HEARTBEAT_KEY, time.time())
        finally:
            self.study.set_user_attr(mark, None)
        return trial

    def _queued_twice(self, trial: optuna.Trial) -> bool:
        """Whether ``trial`` is a second copy of a baseline: processes that open a new study at
        the same moment may each queue the baselines; only the lowest-numbered copy runs."""
        name = trial.user_attrs.get(TRIAL_BASELINE_KEY)
        if name is None or RETRY_OF_KEY in trial.user_attrs:
            return False
        return any(
            other.number < trial.number and other.user_attrs.get(TRIAL_BASELINE_KEY) == name
            and RETRY_OF_KEY not in other.user_attrs
            for other in self.study.get_trials(deepcopy=False)
        )

    def tell(self, trial: OptunaTrial, outcome: TrialOutcome) -> None:
        """Store how ``trial`` ended (a trial another process already closed is left as it is)."""
        _set_outcome_attrs(trial.optuna_trial, outcome)
        if outcome.status == "complete":
            self.study.tell(trial.optuna_trial, outcome.value, skip_if_finished=True)
        elif outcome.status in ("pruned", "diverged"):
            # Diverged trials count as pruned for the sampler: a bad region, not a broken run.
            self.study.tell(trial.optuna_trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            self.study.tell(trial.optuna_trial, state=TrialState.FAIL, skip_if_finished=True)

    @contextmanager
    def running(self, trials: Sequence[OptunaTrial]) -> Iterator[None]:
        """Refresh the heartbeat of ``trials`` every HEARTBEAT_INTERVAL_S while they train."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_INTERVAL_S):
                for trial in trials:
                    try:
                        self.storage.set_trial_user_attr(self.trial_id(trial.number), HEARTBEAT_KEY, time.time())
                    except Exception:  # the trial was closed meanwhile (e.g. by another process)
                        continue

        thread = threading.Thread(target=beat, name="autolr-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def interrupt(self, trials: Sequence[OptunaTrial], reason: str) -> None:
        """Mark ``trials`` interrupted and, when retrying, queue each to run again; a trial
        the pruner had already stopped (a member waiting for its population) is stored pruned."""
        for trial in trials:
            frozen = self.storage.get_trial(self.trial_id(trial.number))
            if frozen.state != TrialState.RUNNING:
                continue
            if trial.pruned is not None:
                self.tell(trial, trial.pruned)
            else:
                self._close_stopped(frozen, reason)

    def recover_interrupted(self, wait: bool = False) -> list[int]:
        """Mark interrupted every running trial that no live process runs (failed, once its schedule's
        process died MAX_PROCESS_DEATHS times; a duplicate draw is only closed); return their numbers.

        ``wait`` (the end of a search): while a trial without an owner may be another process's ask
        in progress, look again every ASK_POLL_S seconds until that ask ends or goes stale."""
        recovered: list[int] = []
        while True:
            done, in_doubt = self._recover_once()
            recovered += done
            if not (wait and in_doubt):
                return recovered
            time.sleep(ASK_POLL_S)

    def _recover_once(self) -> tuple[list[int], bool]:
        """One pass of :meth:`recover_interrupted`: the trials recovered, and whether an owner-less
        trial was left because a live process is asking."""
        host = socket.gethostname()
        deaths = self._process_deaths()
        recovered, in_doubt = [], False
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if OWNER_KEY not in trial.user_attrs:
                if self._asking_elsewhere(host):  # read after the trials: an ask that created it is still on
                    in_doubt = True
                    continue
                trial = self.storage.get_trial(self.trial_id(trial.number))  # its owner may have come meanwhile
                if trial.state != TrialState.RUNNING:
                    continue
            if not _nobody_runs(trial, host):
                continue
            if _status(trial) == DUPLICATE:  # its process died between marking and closing a duplicate draw
                with suppress(optuna.exceptions.UpdateFinishedTrialError):
                    self.storage.set_trial_state_values(self.trial_id(trial.number), state=TrialState.FAIL)
                continue
            if deaths[trial.user_attrs.get(RETRY_OF_KEY, trial.number)] + 1 >= MAX_PROCESS_DEATHS:
                closed = self._close_stopped(trial, f"its process stopped {MAX_PROCESS_DEATHS} times while training "
                                                       "this schedule; not run again", status="failed")
            else:
                closed = self._close_stopped(trial, PROCESS_STOPPED)
            if closed:
                recovered.append(trial.number)
        return recovered, in_doubt

    def trial_id(self, number: int) -> int:
        """The storage's id of trial ``number`` of this study."""
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _asking_elsewhere(self, host: str) -> bool:
        """Whether another live process is inside an ask (its asking mark is set, see the module docstring)."""
        now = time.time()
        for key, mark in self.study.user_attrs.items():
            if not key.startswith(ASKING_PREFIX) or not mark:
                continue
            if mark["host"] != host:
                if now - float(mark["since"]) <= STALE_AFTER_S:
                    return True
            elif mark["pid"] != os.getpid() and _process_alive(mark["pid"]):
                return True
        return False

    def _process_deaths(self) -> Counter[int]:
        """Per retry chain (keyed by its first trial's number): how many of its trials lost their process."""
        return Counter(
            trial.user_attrs.get(RETRY_OF_KEY, trial.number)
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if trial.user_attrs.get(TRIAL_ERROR_KEY) == PROCESS_STOPPED
        )

    def _close_stopped(self, trial: FrozenTrial, reason: str, status: str = "interrupted") -> bool:
        """Close a trial whose run stopped: as interrupted (and queue its retry, when retrying) or,
        with ``status="failed"``, as failed; False if another process closed it first."""
        storage, trial_id = self.storage, self.trial_id(trial.number)
        try:
            storage.set_trial_user_attr(trial_id, TRIAL_STATUS_KEY, status)
            storage.set_trial_user_attr(trial_id, TRIAL_ERROR_KEY, reason)
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
        if self.retry_interrupted and status == "interrupted":
            attrs = {RETRY_OF_KEY: trial.user_attrs.get(RETRY_OF_KEY, trial.number)}
            for key in (TRIAL_BASELINE_KEY, FIXED_SPEC_KEY):
                if key in trial.user_attrs:
                    attrs[key] = trial.user_attrs[key]
            self.study.enqueue_trial(trial.params, user_attrs=attrs)
        return True

    # -- reading -------------------------------------------------------------------------------
    def progress(self) -> Progress:
        """Counts per state and the best complete trial."""
        counts = zero_counts()
        best: FrozenTrial | None = None
        best_value: float | None = None  # best's value (a complete trial has one)
        sign = self.direction.sign
        for trial in self.study.get_trials(deepcopy=False):
            state = _record_state(trial)
            if state is None:
                continue
            counts[state] += 1
            value = trial.value
            if state == "complete" and value is not None and (best_value is None or sign * value > sign * best_value):
                best, best_value = trial, value
        family = None if best is None else (best.user_attrs.get(TRIAL_SPEC_KEY) or {}).get("family")
        return Progress(
            target=0, counts=counts, best_value=best_value,
            best_family=family, best_number=None if best is None else best.number,
        )

    def read_record(self) -> StudyRecord:
        """The study as an engine-neutral record."""
        return study_record(self.study)


def read_study_record(storage_url: str, study_name: str | None = None) -> StudyRecord:
    """Read a stored study (the only way the report reads storage); ``study_name`` may be
    left out when the storage holds one study."""
    storage = open_storage(storage_url, reader=True)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise StudyError(f"storage {redact_text(storage_url)} holds {len(names)} studies ({listed}); name one")
        study_name = names[0]
    if study_name not in names:
        raise StudyError(f"storage {redact_text(storage_url)} holds no study named {study_name!r}")
    return study_record(optuna.load_study(study_name=study_name, storage=storage))


def study_record(study: optuna.Study) -> StudyRecord:
    """An Optuna study as an engine-neutral StudyRecord (duplicates and queued trials left out)."""
    attrs = study.user_attrs
    trials = [_trial_record(trial) for trial in study.get_trials(deepcopy=False) if _record_state(trial) is not None]
    return StudyRecord(
        name=study.study_name,
        config=redact(attrs.get(STUDY_CONFIG_KEY) or {"direction": study.direction.name.lower()}),
        trials=trials,
        range_test=attrs.get(RANGE_TEST_KEY),
        rescored=[RescoreRecord(**item) for item in attrs.get(RESCORE_KEY) or []],
        meta=attrs.get(SEARCH_META_KEY) or {},
        verdict=attrs.get(VERDICT_KEY),
    )


def _trial_record(trial: FrozenTrial) -> TrialRecord:
    attrs = trial.user_attrs
    state = _record_state(trial)
    duration = attrs.get(TRIAL_DURATION_KEY)
    if duration is None and trial.datetime_start and trial.datetime_complete:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    curve = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
    return TrialRecord(
        number=trial.number, state=state or "failed", spec=attrs.get(TRIAL_SPEC_KEY) or {},
        val_curve=curve, value=trial.value if state == "complete" else None,
        epochs_run=int(attrs.get(TRIAL_EPOCHS_KEY, len(curve))), duration_s=duration,
        baseline=attrs.get(TRIAL_BASELINE_KEY), error=attrs.get(TRIAL_ERROR_KEY),
    )


def _status(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get(TRIAL_STATUS_KEY)


def _record_state(trial: FrozenTrial) -> str | None:
    """The record state of a stored trial; None for queued trials and duplicates."""
    status = _status(trial)
    if status == DUPLICATE or trial.state == TrialState.WAITING:
        return None
    if trial.state == TrialState.RUNNING:
        return "running"
    if status is not None:
        return status
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(trial.state, "failed")


def _set_outcome_attrs(trial: optuna.Trial, outcome: TrialOutcome) -> None:
    trial.set_user_attr(TRIAL_STATUS_KEY, outcome.status)
    trial.set_user_attr(TRIAL_EPOCHS_KEY, int(outcome.epochs_run))
    trial.set_user_attr(TRIAL_DURATION_KEY, float(outcome.duration_s))
    if outcome.error:
        trial.set_user_attr(TRIAL_ERROR_KEY, redact_text(outcome.error))


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    """JSON round trip, so tuples and lists (and ints and floats) compare as stored."""
    return json.loads(json.dumps(value, default=str))


def _nobody_runs(trial: FrozenTrial, host: str) -> bool:
    """Whether running ``trial`` is left by its process: it has no owner (the caller saw no ask in
    progress), its owner on this host is gone, or its heartbeat is older than STALE_AFTER_S."""
    owner = trial.user_attrs.get(OWNER_KEY)
    if owner is None or (owner.get("host") == host and not _process_alive(owner.get("pid"))):
        return True
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return time.time() - float(trial.user_attrs.get(HEARTBEAT_KEY, started)) > STALE_AFTER_S


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

