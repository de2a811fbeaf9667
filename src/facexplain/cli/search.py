"""`facexplain gallery build DIR --out G` and `facexplain search PHOTO --gallery G`: thin over
``facexplain.search.gallery`` (ranking) and ``facexplain.api.explain_pair`` (--explain)."""

from __future__ import annotations

import json
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
from facexplain.methods.registry import method_names

gallery_app = typer.Typer(help="Galleries of known faces for 1:N search.",
                          no_args_is_help=True)


@gallery_app.command("build")
def build_command(
    folder: Annotated[Path, typer.Argument(help="Folder of photos, one sub-folder per person "
                                                "(the folder name is the identity).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Gallery file to write (.npz).")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    code: Annotated[str, typer.Option(
        help="Binary code for the short list: sign, median, rotation-BITS or itq-BITS "
             "(fitted on the gallery itself).")] = "rotation-256",
) -> None:
    """Embed every photo's largest face and store embeddings, codes and identities."""
    from facexplain import settings, validate
    from facexplain.backbones.registry import get_spec
    from facexplain.cache import DiskCache
    from facexplain.errors import InputNotFound
    from facexplain.pipeline import FacePipeline
    from facexplain.search.codes import parse_recipe
    from facexplain.search.gallery import build_gallery, gallery_photos

    get_spec(backbone)
    recipe = parse_recipe(code)
    if not folder.is_dir():
        raise InputNotFound(f"gallery folder {folder}: no such directory")
    gallery_photos(folder)  # refuses a folder without photos before models load
    validate.output_dir(out.parent if str(out.parent) else Path("."), what="folder of --out")
    gallery = build_gallery(folder, FacePipeline(backbone), recipe,
                            DiskCache(settings.current().cache), progress=True,
                            warn=lambda m: typer.echo(f"warning: {m}", err=True))
    gallery.save(out)
    typer.echo(f"gallery: {len(gallery)} photos of {len(set(gallery.identities))} identities, "
               f"{backbone}, {gallery.encoder.method}-{gallery.codes.n_bits} codes -> {out}")


@with_method_options
def search_command(
    photo: Annotated[Path, typer.Argument(help="Probe photo (its largest face is used).")],
    gallery: Annotated[Path, typer.Option("--gallery", "-g", help="Gallery file.")],
    top: Annotated[int, typer.Option("--top", "-k", help="Identities to list.")] = 5,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Write the explained report of the probe vs the best match.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder for --explain.")]
    = Path("out/search"),
    method: Annotated[str, typer.Option(
        "--method", "-m", help=f"For --explain: {', '.join(method_names())}, a comma list, "
        "or all.")] = "occlusion",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    max_error: MaxErrorOpt = None,
    population: PopulationOpt = None,
    prior_odds: PriorOddsOpt = None,
    prior: PriorOpt = None,
    method_options: dict[str, object] | None = None,  # for --explain: each method's flags
) -> None:
    """Who is this? The gallery's closest identities with similarities and calibrated
    verdicts; with --explain, why the best match matched (each method's settings as in
    `facexplain explain`)."""
    from facexplain import validate
    from facexplain.api import plan_explanation, search_gallery
    from facexplain.errors import InvalidArgument
    from facexplain.method_info import ExplainOptions
    from facexplain.report.html import confidence_text, write_explanation
    from facexplain.search.gallery import load_gallery
    from facexplain.types import VerdictOptions

    if top < 1:
        raise InvalidArgument(f"--top must be >= 1, got {top}")
    verdict = VerdictOptions(max_error, population, prior_odds_of(prior_odds, prior)).check()
    validate.readable_file(photo)
    plan = None
    if explain:  # checked before any model loads
        backbone = load_gallery(gallery).backbone
        plan = plan_explanation(method, backbone, ExplainOptions(progress=True,
                                                                 values=method_options),
                                verdict)
        validate.output_dir(out)
    result = search_gallery(photo, gallery, top, verdict, plan)
    doc = result.to_dict()
    if result.explanation is not None:
        for w in result.explanation.verdict.warnings:
            typer.echo(f"warning: {w}", err=True)
        doc["report"] = str(write_explanation(result.explanation, out).resolve())
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"{result.photos} photos searched ({result.backbone}, threshold "
               f"{result.threshold:.4f})")
    for c in result.candidates:
        word = {"same": "SAME", "different": "different", "not sure": "NOT SURE"}[
            c.decision.answer]
        lr = "" if c.decision.log10_lr is None else f", log10 LR {c.decision.log10_lr:+.2f}"
        typer.echo(f"{c.rank:>3}. {c.identity}: similarity {c.similarity:.4f}, {word} "
                   f"({confidence_text(c.confidence)}{lr}), photo {c.photo}")
    if "report" in doc:
        typer.echo(f"report: {doc['report']}")
