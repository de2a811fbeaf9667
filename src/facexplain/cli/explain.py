"""`facexplain explain` and `facexplain methods`: thin over ``facexplain.api.explain_pair``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.options import BackboneOpt
from facexplain.methods.registry import all_methods, method_names


def explain_command(
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "out/explain"
    ),
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    method: Annotated[str, typer.Option(
        "--method", "-m",
        help=f"{', '.join(method_names())}, a comma list, or all.",
    )] = "occlusion",
    patch: Annotated[int, typer.Option("--patch", help="Occlusion patch size k (px).")] = 16,
    stride: Annotated[int, typer.Option("--stride", help="Occlusion stride s (px).")] = 8,
    fill: Annotated[str, typer.Option(
        "--fill", help="What removed pixels become (occlusion fill, integrated-gradients "
        "baseline): mean-face, channel-mean, zero, blur.")] = "mean-face",
    attention: Annotated[str, typer.Option(
        "--attention", help="xCos attention: U (uniform), P (Pearson prior), L (learned).")] = "L",
    approx: Annotated[bool, typer.Option(
        "--approx", help="Approximate pairwise occlusion (much faster at small strides; its "
        "measured error is printed in the report).")] = False,
    samples: Annotated[int | None, typer.Option(
        "--samples", help="Samples per face of corrrise, rise and lime (default: each "
        "method's own; rise and lime stop earlier once their map has settled).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampling methods' "
                                      "random masks.")] = 0,
) -> None:
    """Verify a pair and explain it: maps (.npy), overlays (PNG), explanation.json and
    report.html in --out."""
    from facexplain import validate
    from facexplain.api import explain_pair, resolve_methods, skipped_methods
    from facexplain.backbones.registry import get_spec
    from facexplain.method_info import ExplainOptions
    from facexplain.report.html import write_explanation

    # Everything a person can get wrong is checked before a model file is opened.
    options = ExplainOptions(patch=patch, stride=stride, fill=fill, attention=attention,
                             approx=approx, progress=True, samples=samples, seed=seed)
    spec = get_spec(backbone)
    resolve_methods(method, options, spec)
    for name, why in skipped_methods(method, spec):
        typer.echo(f"note: --method all leaves out {name}: {why}", err=True)
    validate.readable_file(photo_a)
    validate.readable_file(photo_b)
    made = [d for d in (out.absolute(), *out.absolute().parents) if not d.exists()]
    validate.output_dir(out)
    try:
        result = explain_pair(photo_a, photo_b, method, backbone, options,
                              log=lambda m: typer.echo(m, err=True))
    except BaseException:
        for folder in made:  # a failed run leaves no empty folder behind (deepest first)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    for w in result.verdict.warnings:
        typer.echo(f"warning: {w}", err=True)
    report = write_explanation(result, out)
    verdict = result.verdict
    word = "same person" if verdict.same else "different people"
    typer.echo(f"{word}: similarity {verdict.similarity:.4f} (threshold {verdict.threshold:.4f})")
    typer.echo(f"report: {report.resolve()}")


def methods_command() -> None:
    """List the registered explanation methods, their family and maps."""
    for info in all_methods().values():
        maps = ", ".join(m.name for m in info.maps)
        slow = "" if info.in_all else " (slow: not in --method all)"
        typer.echo(f"{info.name} ({info.family}): {info.title}; maps: {maps}{slow}")
