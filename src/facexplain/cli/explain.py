"""`facexplain explain` and `facexplain methods`: thin over ``facexplain.api.explain_pair``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.method_options import with_method_options
from facexplain.cli.options import (
    BackboneOpt,
    MaxErrorOpt,
    PopulationOpt,
    PriorOddsOpt,
    PriorOpt,
    prior_odds_of,
)
from facexplain.methods.registry import all_methods, method_names

# What a report leads with (the component findings, DESIGN.md) and the map beneath them; the
# component comparison costs 0.22-0.37 of the occlusion at (16, 8) (issue 37).
DEFAULT_METHODS = "components,occlusion"


@with_method_options
def explain_command(
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "out/explain"
    ),
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    method: Annotated[str, typer.Option(
        "--method", "-m",
        help=f"{', '.join(method_names())}, a comma list, or all (default: the facial "
        "components, which lead the report, and pairwise occlusion, the evidence beneath).",
    )] = DEFAULT_METHODS,
    max_error: MaxErrorOpt = None,
    population: PopulationOpt = None,
    prior_odds: PriorOddsOpt = None,
    prior: PriorOpt = None,
    method_options: dict[str, object] | None = None,  # one flag per method option
) -> None:
    """Verify a pair and explain it: maps (.npy), overlays (PNG), explanation.json and
    report.html in --out. Each method's own settings are flags (`facexplain methods` lists
    which method reads which)."""
    from facexplain import validate
    from facexplain.api import explain_pair, plan_explanation
    from facexplain.method_info import ExplainOptions
    from facexplain.report.html import write_explanation
    from facexplain.types import VerdictOptions

    # Everything a person can get wrong is checked before a model file is opened, once.
    plan = plan_explanation(method, backbone, ExplainOptions(progress=True,
                                                             values=method_options),
                            VerdictOptions(max_error, population, prior_odds_of(prior_odds, prior)))
    for name, why in plan.skipped:
        typer.echo(f"note: --method all leaves out {name}: {why}", err=True)
    validate.readable_file(photo_a)
    validate.readable_file(photo_b)
    made = [d for d in (out.absolute(), *out.absolute().parents) if not d.exists()]
    validate.output_dir(out)
    try:
        result = explain_pair(photo_a, photo_b, plan=plan, log=lambda m: typer.echo(m, err=True))
    except BaseException:
        for folder in made:  # a failed run leaves no empty folder behind (deepest first)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    for w in result.verdict.warnings:
        typer.echo(f"warning: {w}", err=True)
    report = write_explanation(result, out)
    verdict = result.verdict
    word = {"same": "same person", "different": "different people",
            "not sure": "not sure"}[verdict.answer]
    typer.echo(f"{word}: similarity {verdict.similarity:.4f} (threshold {verdict.threshold:.4f})")
    if verdict.rule:
        typer.echo(f"  rule: {verdict.rule}")
    typer.echo(f"report: {report.resolve()}")


def methods_command() -> None:
    """List the registered explanation methods, their family and maps."""
    for info in all_methods().values():
        maps = ", ".join(m.name for m in info.maps)
        slow = "" if info.in_all else " (slow: not in --method all)"
        flags = ", ".join(o.flag for o in info.options)
        flags = f"; options: {flags}" if flags else ""
        typer.echo(f"{info.name} ({info.family}): {info.title}; maps: {maps}{flags}{slow}")
