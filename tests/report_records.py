"""StudyRecords with known values for the report tests (built directly, as a search stores them)."""

from __future__ import annotations

import dataclasses
import math
import random

from autolr.study.records import RescoreRecord, StudyRecord, TrialRecord

OPTIMIZER = {"name": "sgd", "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}


def spec(family: str, lr: float, **params) -> dict:
    """A trial's spec dict as the search stores it."""
    return {"autolr_spec": 1, "family": family, "lr": lr, "params": params, "optimizer": OPTIMIZER}


def curve(final: float, epochs: int) -> list[float]:
    """A rising validation curve that ends at ``final``."""
    return [final - (final - 0.1) * math.exp(-3 * (epoch + 1) / epochs) * (epoch + 1 < epochs) for epoch in range(epochs)]


def range_test() -> dict:
    """A range test as ``RangeTestResult.to_dict()`` stores it: loss falls, then blows up."""
    lrs = [1e-4 * 1.2**i for i in range(60)]
    losses = [2.3 - 1.5 * math.sin(min(i / 40, 1) * math.pi / 2) + (0.05 * (i - 45) ** 2 if i > 45 else 0)
              for i in range(60)]
    return {"lrs": lrs, "losses": losses[:-1] + [None], "smoothed_losses": losses[:-1] + [None],
            "stopped_at": 60, "stop_reason": "diverged", "suggestion": 0.05, "interval": [0.005, 0.5],
            "suggestions": {"steepest": 0.02, "valley": 0.05}, "method": "sweep", "settings": {}}


def small_record(name: str = "mnist-demo", rescored: bool = True, finished: bool = True) -> StudyRecord:
    """Ten trials of two families plus a constant baseline; the top three and baseline re-scored.

    Known answer: by final value trial 3 (0.97) > trial 1 (0.96) > trial 5 (0.95); re-scored on
    3 seeds, trial 1 has the best mean (0.965), trial 3 (0.955), baseline constant (0.94).
    """
    trials = [
        TrialRecord(0, "complete", spec("constant", 0.05), curve(0.93, 4), 0.93, 4, 10.0, baseline="constant"),
        TrialRecord(1, "complete", spec("cosine", 0.1, min_factor=0.0), curve(0.96, 4), 0.96, 4, 11.0),
        TrialRecord(2, "pruned", spec("cosine", 0.5, min_factor=0.1), [0.2, 0.3], None, 2, 4.0),
        TrialRecord(3, "complete", spec("cosine", 0.08, min_factor=0.05), curve(0.97, 4), 0.97, 4, 11.5),
        TrialRecord(4, "diverged", spec("constant", 2.0), [0.1], None, 1, 1.0, error="loss became nan"),
        TrialRecord(5, "complete", spec("cosine", 0.03, min_factor=0.02), curve(0.95, 4), 0.95, 4, 12.0),
        TrialRecord(6, "complete", spec("constant", 0.02), curve(0.90, 4), 0.90, 4, 10.2),
        TrialRecord(7, "pruned", spec("constant", 0.3), [0.15], None, 1, 2.0),
        TrialRecord(8, "complete", spec("cosine", 0.2, min_factor=0.15), curve(0.94, 4), 0.94, 4, 12.4),
        TrialRecord(9, "complete", spec("cosine", 0.01, min_factor=0.1), curve(0.91, 4), 0.91, 4, 11.9),
    ]
    rescores = []
    if rescored:
        seeds = [100, 101, 102]
        rescores = [
            RescoreRecord(3, trials[3].spec, seeds, [0.95, 0.96, 0.955], [0.95, 0.955, 0.96]),
            RescoreRecord(1, trials[1].spec, seeds, [0.96, 0.97, 0.965], [0.962, 0.96, 0.958]),
            RescoreRecord(5, trials[5].spec, seeds, [0.94, 0.945, 0.95], [0.94, 0.94, 0.941]),
            RescoreRecord(0, trials[0].spec, seeds, [0.935, 0.94, 0.945], [0.93, 0.935, 0.94], baseline="constant"),
        ]
    return StudyRecord(
        name=name,
        config={"name": name, "dataset": "mnist", "model": "mlp", "metric": "accuracy", "epochs": 4, "trials": 10,
                "batch_size": 128, "optimizer": OPTIMIZER, "direction": "maximize"},
        trials=trials,
        range_test=range_test(),
        rescored=rescores,
        meta={"wall_time_s": 125.0, "hardware": "cpu (2 cores)", "finished": finished, "backend": "optuna"},
    )


def large_record(trials: int, epochs: int, seed: int = 0) -> StudyRecord:
    """``trials`` random trials of two families with ``epochs`` epochs each, a third pruned."""
    rng = random.Random(seed)
    records = []
    for number in range(trials):
        family = "cosine" if number % 2 else "constant"
        lr = 10 ** rng.uniform(-3, 0)
        final = 0.98 - 0.2 * abs(math.log10(lr) + 1.3) + rng.gauss(0, 0.01)
        params = {"min_factor": round(rng.uniform(0, 0.2), 3)} if family == "cosine" else {}
        if number % 3 == 0:
            records.append(TrialRecord(number, "pruned", spec(family, lr, **params), curve(final, epochs)[: epochs // 3],
                                       None, epochs // 3, 1.0))
        else:
            records.append(TrialRecord(number, "complete", spec(family, lr, **params), curve(final, epochs), final, epochs, 3.0))
    return StudyRecord(name="large", config={"dataset": "mnist", "model": "mlp", "epochs": epochs}, trials=records,
                       meta={"finished": True})


HOSTILE = "<script>alert(1)</script>"


def hostile_record() -> StudyRecord:
    """small_record with markup and script in the name, a config value, an error and a baseline name."""
    record = small_record(name=HOSTILE)
    record.config["dataset"] = '"><img src=x onerror=alert(2)>'
    record.trials[4] = dataclasses.replace(record.trials[4], error="</script><script>alert(3)</script>")
    record.rescored[3] = dataclasses.replace(record.rescored[3], baseline="<b onmouseover=alert(4)>constant</b>")
    return record
