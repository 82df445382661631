"""The torch thread count autolr chooses from the machine's load, and the ways to override it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autolr.errors import StudyError
from autolr.study.config import load_study
from autolr.pipeline.steps import study_threads
from autolr.training.threads import CpuLoad, ThreadChoice, ThreadSource, choose_threads, measure_load, thread_choice
from reliability_support import write_study


@pytest.mark.parametrize(("busy", "cores", "processes", "threads"), [
    (0.0, 2, 1, 2),    # an idle 2-core machine: both cores
    (0.4, 2, 1, 2),    # background noise does not take a core
    (0.6, 2, 1, 1),    # from half a core on, the core counts busy
    (1.0, 2, 1, 1),    # a neighbour running torch with 1 thread
    (1.9, 2, 1, 1),    # a neighbour running torch with 2 threads: never fewer than 1
    (7.5, 2, 1, 1),    # an overloaded machine
    (0.0, 16, 4, 4),   # --workers 4 split the free cores
    (3.2, 16, 4, 3),   # 13 free cores over 4 workers
    (0.0, 2, 4, 1),    # more workers than cores: 1 each
])
def test_the_threads_are_the_cores_other_work_leaves_free(busy: float, cores: int, processes: int,
                                                           threads: int) -> None:
    assert choose_threads(busy, cores, processes) == threads


def test_the_choice_says_what_it_measured_in_one_line() -> None:
    chosen = ThreadChoice(1, 1, ThreadSource.CHOSEN, CpuLoad(cores=2, busy=1.94))
    assert chosen.describe() == ("threads: 1 torch thread per process (2 cores, 1.9 busy with other work; "
                                 "--threads N overrides)")
    assert thread_choice(3, processes=2).describe() == "threads: 3 torch threads each of 2 processes (given)"


def test_a_busy_neighbour_is_measured_busy() -> None:
    spinning = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        load = measure_load()
    finally:
        spinning.kill()
        spinning.wait()
    assert load.cores == os.cpu_count()
    assert 0.5 <= load.busy <= load.cores  # at least the neighbour's core
    assert choose_threads(load.busy, load.cores) <= max(1, load.cores - 1)


def test_the_study_key_overrides_the_choice_for_every_process(tmp_path: Path) -> None:
    config = load_study(write_study(tmp_path / "given.toml", threads=3))
    assert (config.threads, study_threads(config, workers=2)) == (3, ThreadChoice(3, 2, ThreadSource.GIVEN, None))
    ray = config.replace(backend="ray")  # a local Ray runs its cores / cpus_per_trial trials at once
    assert study_threads(ray, workers=1, cpus_per_trial=0.5).processes == 2 * (os.cpu_count() or 1)
    chosen = study_threads(load_study(write_study(tmp_path / "chosen.toml")), workers=1)
    assert chosen.source is ThreadSource.CHOSEN and 1 <= chosen.threads <= (os.cpu_count() or 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_refused_in_one_sentence(tmp_path: Path, bad: object) -> None:
    with pytest.raises(StudyError, match="threads must be a positive integer"):
        load_study(write_study(tmp_path / "bad.toml", threads=bad))


def test_the_bench_page_reports_the_ratio_side_by_side(tmp_path: Path) -> None:
    from autolr.bench.threads import QUICK, ThreadsBench, write_threads_bench

    choice = ThreadChoice(1, 1, ThreadSource.CHOSEN, CpuLoad(cores=2, busy=2.0))
    result = ThreadsBench(QUICK, cores=2, choice=choice, alone_s=[3.3], without_s=[33.9, 30.1], with_s=[4.3, 4.1],
                          load_before=3.5)
    assert result.speedup == pytest.approx(32.0 / 4.2)
    page = write_threads_bench(result, tmp_path / "bench-threads.md").read_text()
    assert "| beside the neighbour, without the choice | 2 | 32.0 | 33.9, 30.1 |" in page
    assert "| beside the neighbour, with the choice | 1 | 4.2 | 4.3, 4.1 |" in page
    assert "**7.6x** faster" in page and "other developers' jobs" in page


def test_range_test_says_its_threads_and_takes_the_override(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from autolr.cli import app

    given = CliRunner().invoke(app, ["range-test", "--dataset", "digits", "--model", "mlp", "--no-check",
                                     "--threads", "1", "--out", str(tmp_path)])
    assert given.exit_code == 0, given.output
    assert given.output.splitlines()[0] == "threads: 1 torch thread per process (given)"
    refused = CliRunner().invoke(app, ["search", "--dataset", "digits", "--threads", "0"])
    assert refused.exit_code == 2 and "--threads" in refused.output
