"""Per-face occlusion: the patch hidden in one face at a time, a map per face."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._options import FILL, PATCH, STRIDE
from facexplain.methods.occlusion import check
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.per_face_occlusion import PerFaceOcclusion

    explainer = PerFaceOcclusion.for_backbone(scorer, scorer.require_spec().name,
                                              options.get(PATCH), options.get(STRIDE),
                                              options.get(FILL), options.batch_size,
                                              options.progress, options.incremental)
    explainer.theta = None  # Θ is calibrated for the pairwise map only
    return explainer


def note(result: ExplanationMaps) -> str:
    """Which face carries more of the difference, in numbers."""
    diff = result.maps["difference"]
    share_a, share_b = (float(diff[i].sum()) for i in (0, 1))
    total = share_a + share_b
    if total <= 0:
        return " Hiding no region in either face made the pair look more alike."
    return (f" Of the summed difference, face A carries {100 * share_a / total:.0f}% and face B "
            f"{100 * share_b / total:.0f}% (max Δ {float(result.maps['delta'].max()):.4f}).")


INFO = register_method(MethodInfo(
    name="occlusion-per-face",
    title="Per-face occlusion",
    family="black-box",
    description="The patch is hidden in face A only, then in face B only, and the similarity "
    "recomputed: a map per face. Bright where hiding that part of that face makes the pair look "
    "more alike (the faces differ there); the similarity map shows where they match.",
    maps=(
        delta_map("signed change of the similarity when the region of this face is hidden"),
        MapSpec("difference", "difference map per face (Δ>0: this face differs here)",
                reading="one map per photo: bright in a photo where hiding that region of "
                "that photo alone makes the pair look more alike. Compare the two maps to see "
                "which photo carries a difference (glasses, expression, lighting)."),
        MapSpec("similarity", "similarity map per face (−Δ>0: this face matches here)",
                reading="bright where hiding that region of that photo alone makes the pair "
                "look less alike: what each photo contributes to the match."),
    ),
    build=build,
    check=check,
    options=(PATCH, STRIDE, FILL),
    note=note,
    names_face=True,
))
