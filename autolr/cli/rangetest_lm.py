"""`autolr bench rangetest-lm`: the range test on the transformer (fortunes, AdamW) against a constant-LR grid."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from autolr.errors import UserError


def bench_rangetest_lm(
    quick: bool = typer.Option(False, "--quick", help="Two short lengths, one seed, a tiny grid (CI-sized)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds (default 0,1,2)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the fortunes text."),
    out_dir: Path = typer.Option(Path("reports/bench"), "--out-dir",
                                 help="Folder for rangetest-lm.md and rangetest-lm.json."),
    resume: bool = typer.Option(False, "--resume", help="Keep the seeds already in OUT_DIR/rangetest-lm.json."),
    reanalyse: bool = typer.Option(False, "--reanalyse", help="Rewrite OUT_DIR/rangetest-lm.md from its .json "
                                   "under the current judging, without training."),
) -> None:
    """Judge the range test's suggestion on the fortunes transformer (AdamW, the LM recipe, clipped at 1.0) against
    a constant-LR grid at 400, 800 and 1600 steps, in bits per byte."""
    import torch

    from autolr.bench import rangetest_lm as bench
    from autolr.training.device import describe_hardware

    size = bench.QUICK if quick else bench.LM_SIZE
    if seeds is not None:
        try:
            size = replace(size, seeds=tuple(int(seed) for seed in seeds.split(",")))
        except ValueError:
            raise UserError(f"--seeds must be comma-separated integers, got {seeds!r}") from None
    if data_dir is not None:
        size = replace(size, data_dir=str(data_dir))
    hardware = f"{describe_hardware('cpu')}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    stored = out_dir / "rangetest-lm.json"
    if reanalyse and not stored.is_file():
        raise UserError(f"--reanalyse needs {stored}, which does not exist")
    done, hardware = bench.read_lm(stored) if (resume or reanalyse) and stored.exists() else ([], hardware)
    if reanalyse:
        size = replace(size, seeds=tuple(record.seed for record in done))

    def progress(records: list[bench.LMSeed]) -> None:
        record = records[-1]
        typer.echo(f"seed {record.seed}: " + ", ".join(f"{name} {lr:.3g}" for name, lr in record.suggestions.items()))
        bench.write_lm(records, size, out_dir, hardware)  # partial results survive an interruption

    records = bench.run_lm_bench(size, done=done, on_seed=progress)
    json_path, md_path = bench.write_lm(records, size, out_dir, hardware)
    typer.echo(md_path.read_text())
    typer.echo(f"wrote {md_path}, {json_path}")
