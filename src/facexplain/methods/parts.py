"""Part filters: the head's cosine distance split exactly over filters tied to face parts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.backbones.builtin import builtin_specs
from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, RankedMap
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    import torch

    from facexplain.backbones.spec import BackboneSpec
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.parts import PartsDetails
    from facexplain.explain.scorer import PairScorer
    from facexplain.results import Figure

def _has_nodes(spec: BackboneSpec) -> bool:
    """The head needs three named maps (early, middle, late): the row's ``part_layers``."""
    return len(spec.part_layers) == 3


FIGURE_FILTERS = 6
NOTE_FILTERS = 5


def check(options: ExplainOptions, spec: BackboneSpec) -> None:
    """Fail fast, before any model loads, on a backbone the head has no nodes for."""
    del options
    if not _has_nodes(spec):
        known = ", ".join(name for name, row in builtin_specs().items() if _has_nodes(row))
        raise InvalidArgument(f"the part-filter method has no head layout for backbone "
                              f"'{spec.name}'; it works with: {known}")


def prepare(backbone: str, progress: bool) -> None:
    """Make the default head when none is stored, as xCos does: a quick one, trained once."""
    from facexplain.train.parts import ensure_default_head

    ensure_default_head(backbone, progress=progress)


def missing(backbone: str) -> str | None:
    """What ``prepare`` would train, named without training it (None: a head is stored)."""
    from facexplain.heads.parts import PARTS_HEADS
    from facexplain.train.first_use import head_missing

    return head_missing(PARTS_HEADS, backbone)


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.parts import load_parts

    del options
    return load_parts(scorer.require_spec().name, model=scorer.model)


def _details(result: ExplanationMaps) -> PartsDetails:
    from facexplain.explain.parts import PartsDetails

    d = result.meta
    assert isinstance(d, PartsDetails)
    return d


def figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    """The top filters' responses on both faces, each with its part and share."""
    from facexplain.analysis.filter_plots import plot_pair_filters
    from facexplain.results import Figure

    d = _details(result)
    k = min(FIGURE_FILTERS, len(d.top))
    captions = [f"filter {i}\n{d.part(i)}\n{100 * float(d.shares[i]):.1f}% of distance"
                for i in d.top[:k]]
    p = plot_pair_filters(faces[0], faces[1], d.responses[:, :k], captions, out / "parts.png",
                          title=f"part filters: cos {result.score:.4f} (1 - cos = "
                          f"{1 - result.score:.4f})")
    head = f"; head {d.head}" if d.head else ""
    return [Figure(p.name, f"Top {k} part filters by share of the distance (head cosine "
                   f"{result.score:.4f}; the backbone's cosine {d.cosine:.4f}{head})", READING)]


def note(result: ExplanationMaps) -> str:
    """The top filters with their share of the distance and their part."""
    d = _details(result)
    items = [f"filter {i} ({d.part(i)}) {100 * float(d.shares[i]):.1f}%"
             for i in d.top[:NOTE_FILTERS]]
    return (f" The head's cosine distance 1 - cos = {1 - result.score:.4f} splits over its "
            f"{d.shares.numel()} filters; the largest shares: {', '.join(items)}.")


READING = ("each column is one filter of the interpretable head, tied to one face part by "
           "where it usually responds (red: positive response, blue: negative). The pair's "
           "distance 1 - cos is exactly the sum of one term per filter; the share says how "
           "much of it comes from that filter, so the first columns show which parts differ.")


INFO = register_method(MethodInfo(
    name="parts",
    title="Part filters: which face parts differ",
    family="layer",
    description="An interpretable head whose every feature is a filter tied to one face part; "
    "the cosine distance of the pair is split exactly over the filters, and the map shows "
    "where the filters with the largest shares respond on each face.",
    maps=(
        MapSpec("difference", "where the filters that separate the pair respond, weighted by "
                "their share of the distance", frame="grid",
                reading="bright where the part filters carrying most of the pair's distance "
                "respond on that face: the parts that make the two faces differ."),
    ),
    build=build,
    check=check,
    rankings=(RankedMap("difference", "difference"),),
    figures=figures,
    note=note,
    prepare=prepare,
    missing=missing,
    supports=_has_nodes,
))
