"""CorrRISE (Lu, Xu & Ebrahimi, WACV 2024): correlation of random masks with the similarity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._newer import SLOW, black_fill, sampling_note
from facexplain.methods._options import SAMPLES, SAMPLING, SEED
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.rise import CorrRise

    return CorrRise(scorer, max_samples=options.get(SAMPLES) or 500, fill=black_fill(options),
                    template=scorer.require_spec().template, seed=options.get(SEED))


def note(result: ExplanationMaps) -> str:
    return sampling_note(result) + SLOW


INFO = register_method(MethodInfo(
    name="corrrise",
    title="CorrRISE",
    family="black-box",
    description="500 random masks, each hiding 3 squares (30 px on a 112 px crop), are laid on "
    "face A while face B stays clean, then on face B; per pixel, the correlation between "
    "keeping it and the similarity. Bright where keeping that part of that photo goes with a "
    "lower similarity (difference) or a higher one (similarity).",
    maps=(
        delta_map("−correlation of keeping the pixel with the similarity"),
        MapSpec("difference", "dissimilarity map (keeping the pixel lowers the similarity)",
                reading="bright where the masks that kept this part of this photo scored the "
                "pair lower: the photos disagree there. A correlation, from -1 to 1: compare "
                "regions, not values across pairs."),
        MapSpec("similarity", "similarity map (keeping the pixel raises the similarity)",
                reading="bright where the masks that kept this part of this photo scored the "
                "pair higher: what this photo contributes to the match."),
    ),
    build=build,
    options=SAMPLING,
    note=note,
    in_all=False,
))
