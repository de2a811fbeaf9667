"""`facexplain explain`: verdict plus explanation maps, written as .npy, PNG and report.html."""

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
    method: Annotated[str, typer.Option(
        "--method", "-m",
        help="occlusion, saliency, deconv, guided, ig, gradcam, xcos, a comma list, or all.",
    )] = "occlusion",
    patch: Annotated[int, typer.Option("--patch", help="Occlusion patch size k (px).")] = 16,
    stride: Annotated[int, typer.Option("--stride", help="Occlusion stride s (px).")] = 8,
    fill: Annotated[str, typer.Option(
        "--fill", help="Occlusion fill: mean-face, channel-mean, zero, blur.")] = "mean-face",
) -> None:
    """Verify a pair and explain it: maps (.npy), overlays (PNG) and report.html in --out."""
    from facexplain.api import verdict_for_pair
    from facexplain.explain.methods import (
        ExplainOptions,
        build_explainer,
        parse_methods,
        xcos_available,
    )
    from facexplain.pipeline import FacePipeline
    from facexplain.report.html import write_report
    from facexplain.report.sections import render_section
    from facexplain.scoring import get_calibration

    methods = parse_methods(method)
    options = ExplainOptions(patch=patch, stride=stride, fill=fill)
    pipe = FacePipeline(backbone)
    if method == "all" and not xcos_available(backbone):
        typer.echo(f"warning: no trained xCos head for {backbone}; skipping xcos "
                   f"(train one with `facexplain train xcos --backbone {backbone}`)", err=True)
        methods = tuple(m for m in methods if m != "xcos")
    explainers = [build_explainer(m, pipe, options) for m in methods]  # fail fast on options
    pair = pipe.pair(photo_a, photo_b)
    verdict = verdict_for_pair(pipe, pair, str(photo_a), str(photo_b))
    for w in verdict.warnings:
        typer.echo(f"warning: {w}", err=True)
    faces = pair.tensor
    sections = []
    for explainer in explainers:
        typer.echo(f"explaining with {explainer.name} ...", err=True)
        sections.append(render_section(explainer.explain(faces), faces, out))
    report = write_report(out, pair, verdict, get_calibration(backbone), pipe.spec.template,
                          tuple(sections))
    word = "same person" if verdict.same else "different people"
    typer.echo(f"{word}: similarity {verdict.similarity:.4f} (threshold {verdict.threshold:.4f})")
    typer.echo(f"report: {report.resolve()}")
