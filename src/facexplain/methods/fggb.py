"""FGGB (Lu, Xu & Ebrahimi, 2024): per-channel gradients weighted by each channel's share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._newer import (
    SLOW,
    decision_threshold,
    threshold_note,
)
from facexplain.methods._options import THRESHOLD
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.fggb import FGGB

    threshold, source = decision_threshold(scorer, options)
    return FGGB(scorer, threshold, source, batch_size=options.batch_size)


def note(result: ExplanationMaps) -> str:
    from facexplain.explain.fggb import FGGBDetails

    d = result.meta
    assert isinstance(d, FGGBDetails)
    return (threshold_note(result) + f" {d.channels} channel gradients per photo "
            f"({d.n_forward} face forward and backward passes).{SLOW}")


INFO = register_method(MethodInfo(
    name="fggb",
    title="FGGB (feature-guided gradient backpropagation)",
    family="black-box",
    description="Each channel of a photo's normalised embedding is backpropagated to the "
    "photo on its own; the normalised gradient maps are summed, weighted by how much each "
    "channel adds to the similarity above an even share of the threshold, and smoothed.",
    maps=(
        delta_map("−Σ_k normalised |∂F_k/∂I| · (w_k − threshold/N)"),
        MapSpec("difference", "dissimilarity map S⁻",
                reading="bright where the pixels drive the embedding channels that pull the "
                "similarity below the threshold's share: the photos disagree there. It "
                "explains a rejection; on a pair well above the threshold it is often empty."),
        MapSpec("similarity", "similarity map S⁺",
                reading="bright where the pixels drive the channels that carry the match. It "
                "explains an acceptance; on a pair well below the threshold it is often "
                "empty (every pixel's weighted sum is negative)."),
    ),
    build=build,
    options=(THRESHOLD,),
    note=note,
    in_all=False,  # 2N forward and backward passes: minutes on a CPU for a 1024-d embedding
))
