"""`facexplain explain`: verdict plus pictures, written as an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.verify import BackboneOpt


def explain_command(
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "out/explain"
    ),
    backbone: BackboneOpt = DEFAULT_BACKBONE,
) -> None:
    """Verify a pair and write report.html with the aligned faces and the verdict."""
    from facexplain.api import verdict_for_pair
    from facexplain.pipeline import FacePipeline
    from facexplain.report.html import write_report
    from facexplain.scoring import get_calibration

    pipe = FacePipeline(backbone)
    pair = pipe.pair(photo_a, photo_b)
    verdict = verdict_for_pair(pipe, pair, str(photo_a), str(photo_b))
    for w in verdict.warnings:
        typer.echo(f"warning: {w}", err=True)
    report = write_report(out, pair, verdict, get_calibration(backbone), pipe.spec.template)
    word = "same person" if verdict.same else "different people"
    typer.echo(f"{word}: similarity {verdict.similarity:.4f} (threshold {verdict.threshold:.4f})")
    typer.echo(f"report: {report.resolve()}")
