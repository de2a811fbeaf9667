"""xSSAB (Huber et al., WACV 2024): the arguments for and against the match, backpropagated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._newer import decision_threshold, threshold_note
from facexplain.methods._options import THRESHOLD
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.xssab import XSSAB

    threshold, source = decision_threshold(scorer, options)
    return XSSAB(scorer, threshold, source)


def note(result: ExplanationMaps) -> str:
    from facexplain.explain.xssab import XSSABDetails

    d = result.meta
    assert isinstance(d, XSSABDetails)
    return (threshold_note(result) + f" {d.dims_for} of {d.dims} embedding dimensions argue "
            f"for the match (their products sum to {d.score_for:+.4f}), the others against "
            f"({d.score_against:+.4f}).")


INFO = register_method(MethodInfo(
    name="xssab",
    title="xSSAB (similarity score argument backpropagation)",
    family="black-box",
    description="The cosine similarity is split into the embedding dimensions that argue for "
    "the match (their product reaches the threshold's even share) and those against it; each "
    "part is backpropagated to each photo separately (the two add up to the plain gradient).",
    maps=(
        delta_map("arguments against − arguments for (mean |gradient| over colour)"),
        MapSpec("difference", "where the arguments against the match dominate",
                reading="bright where the gradient of the dimensions that argue against the "
                "match outweighs that of those for it: the photos disagree there. A gradient "
                "picture: read where bright areas gather, not single dots."),
        MapSpec("similarity", "where the arguments for the match dominate",
                reading="bright where the dimensions that argue for the match weigh most."),
        MapSpec("arguments_for", "positive-argument map: |gradient| of the supporting part",
                cmap="Greens", reading="how strongly each pixel moves the part of the "
                "similarity that supports the match."),
        MapSpec("arguments_against", "negative-argument map: |gradient| of the opposing part",
                cmap="Reds", reading="how strongly each pixel moves the part of the "
                "similarity that opposes the match."),
    ),
    build=build,
    options=(THRESHOLD,),
    note=note,
))
