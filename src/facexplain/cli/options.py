"""Options and helpers every command shares: declared once, so their names, help and checks
read the same everywhere (``--backbone``, ``--json``, ``--pairs``/``--images``, ``--plot``).

Also the small steps each benchmark command repeats: checking what it reads and writes before
any model loads, recording its own command line in the result, writing the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facexplain import settings, validate
from facexplain.backbones.registry import SPECS

LFW = settings.current().lfw  # a CLI run is one process: its environment decides
LFW_PAIRS = settings.current().lfw_pairs
LFW_IMAGES = settings.current().lfw_images

BackboneOpt = Annotated[
    str, typer.Option("--backbone", "-b",
                      help=f"Face model: {', '.join(SPECS)}, or a user backbone.")
]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here.")]
PairsOpt = Annotated[Path, typer.Option(help="Pair list in pairs.txt format.")]
ImagesOpt = Annotated[Path, typer.Option(help="Image root (Name/Name_0001.jpg).")]
LfwOpt = Annotated[Path, typer.Option(help="LFW root (lfw-deepfunneled/, pairs.txt).")]
SamplesOpt = Annotated[int | None, typer.Option(
    min=8, help="Samples per face of the sampling methods (corrrise, rise, lime); default: "
    "each method's own.")]
# The verdict's options (``types.VerdictOptions``), the same flags on every command that
# gives a verdict: verify, explain, batch verify, search.
MaxErrorOpt = Annotated[float | None, typer.Option(
    "--max-error", help="Answer 'not sure' unless the stored rule for this error rate among "
    "answered pairs (at or below it: 0.05 0.02 0.01 0.005 0.002 0.001) answers.")]
PopulationOpt = Annotated[str | None, typer.Option(
    "--population", help="Population the --max-error rule was calibrated on: lfw or lookalike "
    "(harder: look-alike impostors).")]
PriorOddsOpt = Annotated[float | None, typer.Option(
    "--prior-odds", help="Your odds of 'same person' before looking at the photos (same : "
    "different, e.g. 0.001 for 1 in 1,000): the verdict then gives P(same) from the "
    "likelihood ratio.")]
PriorOpt = Annotated[float | None, typer.Option(
    "--prior", help="The same as a probability: P(same person) before the photos (0-1, "
    "exclusive).")]


def prior_odds_of(prior_odds: float | None, prior: float | None) -> float | None:
    """One prior from --prior-odds or --prior (one line when both or a bad value is given)."""
    from facexplain.errors import InvalidArgument

    if prior is None:
        return prior_odds
    if prior_odds is not None:
        raise InvalidArgument("give --prior-odds or --prior, not both")
    if not 0.0 < prior < 1.0:
        raise InvalidArgument(f"--prior must be strictly between 0 and 1, got {prior:g}")
    return prior / (1.0 - prior)


XfaceStrideOpt = Annotated[int | None, typer.Option(
    "--xface-stride", min=1, help="Stride of x-face occlusion (default: the paper's).")]


def command_line() -> str:
    """This run's command, quoted so it can be pasted back (stored with every result); the one
    implementation is ``benchmarks.registry.command_line``, which ``stamp`` uses."""
    from facexplain.benchmarks.registry import command_line as this_run

    return this_run()


def check_inputs(backbone: str, pairs: Path, images: Path | None, folds: int | None,
                 *outputs: Path | None) -> None:
    """What a benchmark reads and writes, checked before any model loads (fail fast)."""
    from facexplain.backbones.registry import get_spec
    from facexplain.datasets.lfw import check_pairs_file
    from facexplain.errors import InputNotFound

    get_spec(backbone)
    check_pairs_file(pairs, folds=folds)
    if images is not None and not images.is_dir():
        raise InputNotFound(f"image folder {images}: no such directory")
    for out in outputs:
        if out is not None:
            validate.output_dir(out.parent, what=f"folder of {out.name}")


def write_json(doc: object, path: Path | None) -> Path | None:
    """Write ``doc`` as indented JSON at ``path`` (folders made); nothing when ``path`` is None."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def int_list(text: str, flag: str) -> tuple[int, ...]:
    """'1,8' -> (1, 8); a one-line error naming ``flag`` otherwise."""
    from facexplain.errors import InvalidArgument

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidArgument(f"{flag} must be comma-separated integers, got '{text}'") from None
    if not values:
        raise InvalidArgument(f"{flag} is empty")
    return values


def fold_list(text: str) -> tuple[int, ...]:
    """'1-3' or '1,4' -> fold numbers (1-10, at least two); one-line errors otherwise."""
    from facexplain.errors import InvalidArgument

    folds: list[int] = []
    try:
        for part in (t.strip() for t in text.split(",") if t.strip()):
            lo, _, hi = part.partition("-")
            folds += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise InvalidArgument(f"--folds takes 1-3 or 1,4 style fold numbers, got '{text}'"
                              ) from None
    if len(set(folds)) < 2 or not all(1 <= f <= 10 for f in folds):
        raise InvalidArgument(f"--folds needs at least two folds among 1-10, got '{text}'")
    return tuple(sorted(set(folds)))
