"""Per-face substitution: each patch of one face replaced by the same patch of the other face."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._options import PATCH, STRIDE
from facexplain.methods.occlusion import check
from facexplain.methods.occlusion_per_face import note
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.per_face_occlusion import PerFaceSubstitution

    explainer = PerFaceSubstitution.for_backbone(
        scorer, scorer.require_spec().name, options.get(PATCH), options.get(STRIDE), "zero",
        options.batch_size, options.progress, options.incremental)
    explainer.theta = None
    explainer.fill = "other-face"  # what the details say; fill_for returns the other face
    return explainer


INFO = register_method(MethodInfo(
    name="substitution-per-face",
    title="Per-face substitution",
    family="black-box",
    description="Each patch of one face is replaced by the same patch of the other face and the "
    "similarity recomputed: a map per face. Bright where putting the other photo's pixels there "
    "makes the pair look more alike (the faces disagree there).",
    maps=(
        delta_map("signed change of the similarity when this face's region becomes the other's"),
        MapSpec("difference", "difference map per face (Δ>0: the faces disagree here)",
                reading="bright in a photo where giving it the other photo's pixels makes the "
                "pair look more alike: the two photos disagree there."),
        MapSpec("similarity", "similarity map per face (−Δ>0)",
                reading="bright where the other photo's pixels make the pair look less alike "
                "(an unlikely mix of two photos there)."),
    ),
    build=build,
    check=check,
    options=(PATCH, STRIDE),
    note=note,
    names_face=True,
))
