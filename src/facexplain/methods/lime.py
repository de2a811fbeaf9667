"""LIME (Ribeiro et al., KDD 2016) for verification: superpixels of one face, a linear fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facexplain.method_info import ExplainOptions, MapSpec, MethodInfo, delta_map
from facexplain.methods._newer import SLOW, sampling_note
from facexplain.methods._options import FILL, SAMPLES, SAMPLING, SEED
from facexplain.methods.registry import register_method

if TYPE_CHECKING:
    from facexplain.explain.base import Explainer, ExplanationMaps
    from facexplain.explain.scorer import PairScorer


def build(scorer: PairScorer, options: ExplainOptions) -> Explainer:
    from facexplain.explain.lime import Lime

    return Lime(scorer, max_samples=options.get(SAMPLES) or 1000, fill=options.get(FILL),
                template=scorer.require_spec().template, seed=options.get(SEED))


def note(result: ExplanationMaps) -> str:
    return sampling_note(result) + SLOW


INFO = register_method(MethodInfo(
    name="lime",
    title="LIME (verification)",
    family="black-box",
    description="Face A is cut into about 50 superpixels (SLIC); random halves of them are "
    "hidden with the --fill (mean face) while face B stays clean, and a weighted ridge fit of "
    "the similarity on the kept superpixels gives each one a weight; then face B. Sampling "
    "stops once the map stops changing (at most 1,000 samples per face).",
    maps=(
        delta_map("−(fitted weight of the superpixel)"),
        MapSpec("difference", "superpixels whose presence lowers the similarity",
                reading="bright on superpixels of this photo whose presence, in the linear "
                "fit, lowers the similarity: the photos disagree there."),
        MapSpec("similarity", "superpixels whose presence raises the similarity",
                reading="bright on superpixels of this photo the fitted match leans on. The "
                "fit is linear: a region that matters only together with another is missed."),
    ),
    build=build,
    options=(*SAMPLING, FILL),
    note=note,
    in_all=False,
))
