"""xCos: patch-wise cosine S and attention W; the score is their inner product."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facexplain.errors import InvalidArgument
from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, MethodOption, RankedMap
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    import torch

    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer
    from facexplain.results import Figure


def _known_attention(kind: str) -> None:
    from facexplain.heads.xcos import ATTENTION_KINDS

    if kind not in ATTENTION_KINDS:
        raise InvalidArgument(f"unknown xCos attention '{kind}'; valid: "
                              f"{', '.join(ATTENTION_KINDS)}")


ATTENTION: MethodOption[str] = MethodOption(
    "attention", str, "L", "xCos attention: U (uniform), P (Pearson prior), L (learned).",
    check=_known_attention)


def prepare(backbone: str, progress: bool) -> None:
    """Train the default head on first use when none is stored (once, cached)."""
    from facexplain.train.xcos import ensure_default_head

    ensure_default_head(backbone, progress=progress)


def missing(backbone: str) -> str | None:
    """What ``prepare`` would train, named without training it (None: a head is stored)."""
    from facexplain.heads.xcos import XCOS_HEADS
    from facexplain.train.first_use import head_missing

    return head_missing(XCOS_HEADS, backbone)


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.xcos import load_xcos

    return load_xcos(scorer.require_spec().name, model=scorer.model,
                     attention=options.get(ATTENTION))


def figures(result: ExplanationMaps, faces: torch.Tensor, out: Path) -> list[Figure]:
    """The paper's Fig. 3 look: S and W grids over both faces, values printed."""
    from facexplain.explain.xcos import XCosDetails
    from facexplain.report.xcos_figures import save_xcos_figure
    from facexplain.results import Figure

    d = result.meta
    assert isinstance(d, XCosDetails)
    p = save_xcos_figure(out / "xcos.png", faces[0], faces[1], d.S, d.W, result.score,
                         title=f"xCos-{d.attention_kind}")
    head = f"; head {d.head}" if d.head else ""
    return [Figure(p.name, f"xCos {result.score:.4f} (the backbone's cosine: {d.cosine:.4f}"
                   f"{head})", READING + (CELL_SPECIFIC if d.cell_specific else ""))]


READING = ("each cell compares the same place in the two faces. In S, red cells are alike and "
           "blue ones unlike; W says how much each cell counts. xCos adds up S x W, so a blue "
           "cell with a large weight is what pulls the pair apart. Near-equal weights mean the "
           "head spreads its attention, and the score reads best from S.")


CELL_SPECIFIC = (" This head projects each cell with its own weights: on sface its W leans on the "
                 "two bottom corner cells, whose S is nearly the same for every pair (mean "
                 "0.67-0.76, spread 0.11-0.17 against 0.30-0.42 elsewhere), an offset that fits "
                 "the score's scale, not attention to the face. A head trained with `facexplain "
                 "train xcos --shared-grid` has a W that follows the cells whose S tracks the "
                 "match (docs/BENCHMARKS.md, Paper 001), at 0.25 points of xCos accuracy.")


INFO = register_method(MethodInfo(
    name="xcos",
    title="xCos: patch similarity and attention",
    family="layer",
    description="S: cosine of the two faces' local features per cell (red: alike, blue: "
    "unlike). W: how much each cell counts. xCos = sum of S x W.",
    maps=(
        MapSpec("similarity", "S: cosine of local features per cell", signed=True,
                vrange=(-1.0, 1.0), cmap="RdBu_r", frame="grid", show=False),
        MapSpec("attention", "W: weight of each cell", frame="grid", show=False),
        MapSpec("contribution", "S x W: what each cell adds to xCos", signed=True,
                vrange=None, cmap="RdBu_r", frame="grid", show=False),
    ),
    build=build,
    options=(ATTENTION,),
    # S and S x W are similarity maps (high = alike), W is unsigned: each ranked as its own row
    rankings=(RankedMap("similarity", "similarity", suffix="S"),
              RankedMap("attention", "magnitude", suffix="W"),
              RankedMap("contribution", "similarity", suffix="SxW")),
    figures=figures,
    prepare=prepare,
    missing=missing,
    supports=lambda spec: bool(spec.feature_nodes),
))
