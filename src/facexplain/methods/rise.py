"""RISE (Petsiuk et al., BMVC 2018) for a pair: similarity-weighted random masks on one face."""

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
    from facexplain.explain.rise import Rise

    return Rise(scorer, max_samples=options.get(SAMPLES) or 1000, fill=black_fill(options),
                template=scorer.require_spec().template, seed=options.get(SEED))


def note(result: ExplanationMaps) -> str:
    return sampling_note(result) + SLOW


INFO = register_method(MethodInfo(
    name="rise",
    title="RISE (pair)",
    family="black-box",
    description="Random smooth masks (a 7x7 grid, half kept, upsampled with a random shift) "
    "dim face A while face B stays clean, then face B; a pixel's value is the mean similarity "
    "of the masks that kept it. Sampling stops once the map stops changing (at most 1,000 "
    "masks per face).",
    maps=(
        delta_map("−(mean similarity when the pixel is kept − mean similarity)"),
        MapSpec("difference", "where keeping the pixel goes with a lower similarity",
                reading="bright where the masks that kept this part of this photo scored the "
                "pair below average: the photos disagree there."),
        MapSpec("similarity", "where keeping the pixel goes with a higher similarity",
                reading="bright where the masks that kept this part of this photo scored the "
                "pair above average: what the match leans on."),
        MapSpec("saliency", "RISE's saliency: mean similarity when the pixel is kept",
                show=False),
    ),
    build=build,
    options=SAMPLING,
    note=note,
    in_all=False,
))
