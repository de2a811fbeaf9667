"""`facexplain batch explain|verify`: many pairs on Ray (local by default, a cluster by
--address), resumable. Ray is imported only once a batch starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.method_options import with_method_options
from facexplain.cli.options import (
    LFW_IMAGES,
    BackboneOpt,
    MaxErrorOpt,
    PopulationOpt,
    PriorOddsOpt,
    PriorOpt,
    prior_odds_of,
)

app = typer.Typer(help="Verify or explain many pairs on Ray; a rerun resumes.",
                  no_args_is_help=True)

PairsArg = Annotated[Path, typer.Argument(
    help="LFW pairs.txt, or lines 'photo_a<TAB>photo_b' (or comma-separated).")]
Workers = Annotated[int, typer.Option("--workers", "-w", help="Ray actors (one model each).")]
Threads = Annotated[int | None, typer.Option(
    help="torch threads per worker (default: CPUs / workers).")]
Address = Annotated[str | None, typer.Option(
    help="Ray cluster address (e.g. ray://head:10001 or auto); default: start Ray locally.")]
Images = Annotated[Path, typer.Option(help="Image root for a pairs.txt list.")]
Limit = Annotated[int | None, typer.Option(help="Only the first N pairs.")]


def _threads(threads: int | None, workers: int) -> int:
    from facexplain.errors import InvalidArgument

    if workers < 1:
        raise InvalidArgument(f"--workers must be at least 1, got {workers}")
    return threads or max(1, (os.cpu_count() or 1) // workers)


def _summary(stats: object) -> str:
    from facexplain.batch.runner import BatchStats

    assert isinstance(stats, BatchStats)
    rate = f", {60 * stats.computed / stats.seconds:.1f} pairs/min" if stats.seconds else ""
    return (f"{stats.computed} pairs computed ({stats.failed} failed, {stats.retried} retried "
            f"after a worker died), {stats.skipped} already done; {stats.workers} workers, "
            f"{stats.seconds} s{rate}")


@app.command("explain")
@with_method_options
def explain_command(
    pairs: PairsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumes there).")],
    methods: Annotated[str, typer.Option("--methods", "-m", help="Methods, comma list or all.")
                       ] = "occlusion",
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    workers: Workers = 2,
    threads: Threads = None,
    address: Address = None,
    images: Images = LFW_IMAGES,
    limit: Limit = None,
    retry_failed: Annotated[bool, typer.Option(help="Also redo pairs that failed before.")
                            ] = False,
    max_error: MaxErrorOpt = None,
    population: PopulationOpt = None,
    prior_odds: PriorOddsOpt = None,
    prior: PriorOpt = None,
    method_options: dict[str, object] | None = None,  # each method's flags, as in `explain`
) -> None:
    """Explain every pair into OUT/pairs/<id>/ (maps, report.html), list it in
    OUT/manifest.jsonl, and write the sortable gallery OUT/index.html. Each method's
    settings are flags, as in `facexplain explain`."""
    from facexplain import validate
    from facexplain.api import plan_explanation
    from facexplain.batch.jobs import batch_explain
    from facexplain.batch.pairs import read_batch_pairs
    from facexplain.batch.worker import BatchJob
    from facexplain.method_info import ExplainOptions
    from facexplain.scoring import get_calibration
    from facexplain.types import VerdictOptions

    options = ExplainOptions(values=method_options)
    verdict = VerdictOptions(max_error, population, prior_odds_of(prior_odds, prior))
    plan_explanation(methods, backbone, options, verdict)  # one-line errors before Ray starts
    get_calibration(backbone)
    todo = read_batch_pairs(pairs, images, limit)
    validate.output_dir(out)
    job = BatchJob(out=out, backbone=backbone, methods=methods, options=options,
                   threads=_threads(threads, workers), verdict=verdict)
    stats = batch_explain(job, todo, workers=workers, address=address, retry_failed=retry_failed)
    typer.echo(_summary(stats))
    typer.echo(f"gallery: {(out / 'index.html').resolve()}")


@app.command("verify")
def verify_command(
    pairs: PairsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file, or .jsonl for JSON lines "
                                      "(appended; resumes).")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    workers: Workers = 2,
    threads: Threads = None,
    address: Address = None,
    images: Images = LFW_IMAGES,
    limit: Limit = None,
    max_error: MaxErrorOpt = None,
    population: PopulationOpt = None,
    prior_odds: PriorOddsOpt = None,
    prior: PriorOpt = None,
) -> None:
    """Verdicts of every pair as rows of a CSV (or .jsonl) file: every field of
    `facexplain verify --json`, from the same library call."""
    from facexplain import validate
    from facexplain.backbones.registry import get_spec
    from facexplain.batch.jobs import batch_verify
    from facexplain.batch.pairs import read_batch_pairs
    from facexplain.batch.worker import BatchJob
    from facexplain.scoring import get_calibration
    from facexplain.types import VerdictOptions

    get_spec(backbone)
    verdict = VerdictOptions(max_error, population, prior_odds_of(prior_odds, prior)).check()
    get_calibration(backbone)
    todo = read_batch_pairs(pairs, images, limit)
    validate.output_dir(out.parent if str(out.parent) else Path("."), what=f"folder of {out}")
    job = BatchJob(out=out.parent, backbone=backbone, threads=_threads(threads, workers),
                   verdict=verdict)
    stats = batch_verify(job, todo, out, workers=workers, address=address)
    typer.echo(_summary(stats))
    typer.echo(f"verdicts: {out.resolve()}")
